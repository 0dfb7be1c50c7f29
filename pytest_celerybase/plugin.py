"""pytest hooks of pytest-celerybase: ini keys, markers, and recording around every test.

Loaded as ``pytest -p celerybase`` or through the ``pytest11`` entry point.  The public
fixtures live in :mod:`pytest_celerybase.fixtures` and are imported here by name, so
pytest registers them with the plugin.  Importing this module must stay cheap: Celery
and friends are imported inside fixtures and hooks.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_celerybase._settings import (
    CELERYBASE_MARKER,
    DATABASE_URLS,
    HTTP_STUB_MARKER,
    PROMETHEUS_REGISTRIES,
    ini_database_urls,
    wait_timeout,
)
from pytest_celerybase.fixtures import (  # noqa: F401 - registered as this plugin's fixtures
    DATABASE_URLS_KEY,
    RECORDER_KEY,
    begin_test,
    celerybase_config,
    eager_app,
    end_test,
    fake_redis,
    follow_task_classes,
    hook_recorder,
    http_stub,
    live_worker,
    metrics_sink,
    run_deferred_restores,
    sent_tasks,
    sql_queries,
    sqlite_engine,
    wider_fixture_set_up,
    wider_fixture_torn_down,
)
from pytest_celerybase.recorder.inflight import DEFAULT_WAIT_TIMEOUT

if TYPE_CHECKING:
    from pytest_celerybase.recorder.hook_recorder import HookRecorder

# The recorder and the report are imported in the hooks that use them, not at start-up:
# they cost ~3 ms to import, and `pytest --collect-only` runs no test.

# Seconds the timeline section waits for a live worker to finish its tasks.
_REPORT_WAIT = 2.0
_STARTED_KEY = pytest.StashKey[list[threading.Thread]]()
_WAIT_TIMEOUT_KEY = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("celerybase", "Celery custom task classes (pytest-celerybase)")
    group.addoption(
        "--celerybase-timeline",
        action="store_true",
        default=False,
        help="add the 'celerybase timeline' section (hooks and signals per execution) to "
        "the report of passing tests too (shown with -rA/-rP); failing tests always get it.",
    )
    parser.addini(
        "celerybase_app",
        "Celery app used by eager_app/live_worker instead of a fresh one, as "
        "'package.module:attr'; it is reconfigured for each test and restored after.",
        default="",
    )
    parser.addini(
        DATABASE_URLS,
        "URL globs, one per line (e.g. ``postgresql://*``): during a test, create_engine() "
        "for a matching URL returns an engine on the test's SQLite database (the one "
        "sqlite_engine gives); the marker key of the same name overrides it per test.",
        type="linelist",
        default=[],
    )
    parser.addini(
        PROMETHEUS_REGISTRIES,
        "prometheus_client registries metrics_sink reads besides the default one, one "
        "``package.module:NAME`` per line; what they count during a test is recorded as "
        "deltas.",
        type="linelist",
        default=[],
    )
    parser.addini(
        "celerybase_wait_timeout",
        "Seconds a hook assertion waits for a live worker to finish the task "
        f"(default {DEFAULT_WAIT_TIMEOUT:g}).",
        default=str(DEFAULT_WAIT_TIMEOUT),
    )


def pytest_configure(config: pytest.Config) -> None:
    # Read (and checked) once: a wrong value is a usage error before any test runs.
    config.stash[_WAIT_TIMEOUT_KEY] = wait_timeout(config)
    config.stash[DATABASE_URLS_KEY] = ini_database_urls(config)
    config.addinivalue_line("markers", CELERYBASE_MARKER)
    config.addinivalue_line("markers", HTTP_STUB_MARKER)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    recorder = item.stash.get(RECORDER_KEY, None)
    wanted = report.failed or (
        report.when == "call" and item.config.getoption("celerybase_timeline")
    )
    if recorder is not None and wanted:
        from pytest_celerybase.recorder.report import format_timeline

        # A live worker stores a result before the hooks after it ran: let it finish
        # what it is running (briefly: a stuck task must not hold the report up).
        recorder.wait_idle(timeout=min(recorder.wait_timeout, _REPORT_WAIT))
        text = format_timeline(recorder)
        if text:
            report.sections.append(("celerybase timeline", text))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    # Threads the test body starts; those still running after teardown were left running.
    before = set(threading.enumerate())
    try:
        return (yield)
    finally:
        item.stash[_STARTED_KEY] = [t for t in threading.enumerate() if t not in before]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # Users' task classes are followed from their creation on: start listening before the
    # first test (collection imported them) when Celery is in use and tests will run
    # (not for --collect-only: that would import the recorder for nothing).
    if "celery" in sys.modules and not session.config.option.collectonly:
        follow_task_classes(session.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # Before any fixture: what fixtures of the test change in users' classes is undone.
    begin_test(item)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Iterator[Any]:
    try:
        return (yield)
    finally:
        if fixturedef.scope != "function":
            wider_fixture_set_up(request.config, fixturedef)


def pytest_fixture_post_finalizer(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    if fixturedef.scope != "function":
        wider_fixture_torn_down(request.config, fixturedef)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        try:
            # eager_app's app is rolled back once every fixture of the test has been torn
            # down: a fixture set up before it (monkeypatch) undoes its change after it.
            run_deferred_restores(item.config)
        finally:
            try:
                # Then users' classes, which the worker and fixtures were still using.
                _warn(item, end_test(item), "could not close a resource the test left on a "
                      "task or its class")
            finally:
                recorder = item.stash.get(RECORDER_KEY, None)
                if recorder is not None:
                    _warn_about_strays(item, recorder)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    # An interrupted session tears its last test's fixtures down here.
    try:
        return (yield)
    finally:
        run_deferred_restores(session.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    from pytest_celerybase.recorder.activation import recording
    from pytest_celerybase.recorder.threads import LEFT_RUNNING

    # Around setup, call and teardown: tasks run by fixtures are recorded too, and the
    # recorder is only undone after every fixture of the test has been torn down.
    for thread in [t for t in LEFT_RUNNING if not t.is_alive()]:
        del LEFT_RUNNING[thread]
    with recording(wait_timeout=item.config.stash[_WAIT_TIMEOUT_KEY]) as recorder:
        item.stash[RECORDER_KEY] = recorder
        try:
            return (yield)
        finally:
            del item.stash[RECORDER_KEY]
            for thread in item.stash.get(_STARTED_KEY, ()):
                if thread.is_alive():
                    LEFT_RUNNING[thread] = item.nodeid


def _warn(item: pytest.Item, problems: list[str], what: str) -> None:
    from pytest_celerybase.errors import CelerybaseWarning

    path, lineno, _ = item.location
    for problem in problems:
        warnings.warn_explicit(
            f"{what}: {problem}",
            CelerybaseWarning,
            filename=str(item.config.rootpath / path),
            lineno=(lineno or 0) + 1,
        )


def _warn_about_strays(item: pytest.Item, recorder: HookRecorder) -> None:
    from pytest_celerybase.errors import CelerybaseWarning

    path, lineno, _ = item.location
    for (thread, test), count in recorder.strays.items():
        warnings.warn_explicit(
            f"{count} hook/signal record(s) came from thread {thread!r}, which {test} "
            "started and left running; they were not recorded for this test. Join the "
            "threads a test starts before it ends.",
            CelerybaseWarning,
            filename=str(item.config.rootpath / path),
            lineno=(lineno or 0) + 1,
        )
