"""pytest hooks of pytest-celerybase: ini keys, markers, and recording around every test.

Loaded as ``pytest -p celerybase`` or through the ``pytest11`` entry point.  The public
fixtures live in :mod:`pytest_celerybase.fixtures` and are imported here by name, so
pytest registers them with the plugin.  Importing this module must stay cheap: Celery
and friends are imported inside fixtures and hooks.
"""

from __future__ import annotations

import json
import sys
import threading
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_celerybase import _patching
from pytest_celerybase._settings import (
    CELERYBASE_MARKER,
    DATABASE_URLS,
    HTTP_STUB_MARKER,
    PROMETHEUS_REGISTRIES,
    check_project_app,
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
    from pytest_celerybase.apps.request_stacks import RequestStacks
    from pytest_celerybase.coverage import TestTally
    from pytest_celerybase.recorder.hook_recorder import HookRecorder

# The recorder and the report are imported in the hooks that use them, not at start-up:
# they cost ~3 ms to import, and `pytest --collect-only` runs no test.

# Seconds the timeline section waits for a live worker to finish its tasks.
_REPORT_WAIT = 2.0
# Threads started by fixtures broader than a test (a session's worker): they serve every
# test, so what they record counts for the test running then.
_SHARED_THREADS_KEY = pytest.StashKey[set[threading.Thread]]()
# Shared tasks declared by fixtures broader than a test: they stay declared after it.
_SHARED_DECLARATIONS_KEY = pytest.StashKey[set[Any]]()
_REQUESTS_KEY = pytest.StashKey["RequestStacks"]()
# recording()'s keyword arguments, read once at configure
_RECORDING_KEY = pytest.StashKey[dict[str, Any]]()
_TALLY_KEY = pytest.StashKey["TestTally"]()
# What an xdist worker sends its controller under config.workeroutput.
_WORKER_OUTPUT = "celerybase_lifecycle_coverage"
_COVERAGE_OPTIONS = ("celerybase_coverage", "celerybase_coverage_json", "celerybase_coverage_fail")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("celerybase", "Celery custom task classes (pytest-celerybase)")
    group.addoption(
        "--celerybase-timeline",
        action="store_true",
        default=False,
        help="add the 'celerybase timeline' section (hooks and signals per execution) to "
        "the report of passing tests too (shown with -rA/-rP); failing tests always get it.",
    )
    group.addoption(
        "--celerybase-coverage",
        action="store_true",
        default=False,
        help="add the 'celerybase lifecycle coverage' section to the end of the session: "
        "per task class, each hook override (and a base class's __call__/run) with the "
        "executions that ran it by mode, the overrides no execution ran first.",
    )
    group.addoption(
        "--celerybase-coverage-json",
        metavar="PATH",
        default=None,
        help='write the lifecycle coverage to PATH as JSON: {"classes": {"module.Class": '
        '{"hook": count, ...}, ...}, ...}, one key per override, 0 included.',
    )
    group.addoption(
        "--celerybase-coverage-fail",
        action="store_true",
        default=False,
        help="exit with status 1 when an override of a task class never ran, even if every "
        "test passed; implies --celerybase-coverage.",
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
    coverage = any(config.getoption(name) for name in _COVERAGE_OPTIONS)
    # Read (and checked) once: a wrong value is a usage error before any test runs.
    config.stash[_RECORDING_KEY] = {
        "wait_timeout": wait_timeout(config),
        "watch_overrides": coverage,
    }
    config.stash[DATABASE_URLS_KEY] = ini_database_urls(config)
    config.addinivalue_line("markers", CELERYBASE_MARKER)
    config.addinivalue_line("markers", HTTP_STUB_MARKER)
    if coverage and not config.getoption("collectonly"):
        # Registered only when asked for: without the option no test pays for it.
        config.pluginmanager.register(_LifecycleCoverageHooks(config), "celerybase-coverage")


def pytest_collection_finish(session: pytest.Session) -> None:
    # After collection: the project's modules are importable then, as in its tests.
    if any(
        {"eager_app", "live_worker"}.intersection(getattr(item, "fixturenames", ()))
        for item in session.items
    ):
        check_project_app(session.config)


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
        try:
            text = _timeline_section(recorder)
        except Exception as exc:  # a report hook must never end the session
            text = f"(the timeline could not be shown: {exc!r})"
        if text:
            report.sections.append(("celerybase timeline", text))
    return report


def _timeline_section(recorder: HookRecorder) -> str:
    from pytest_celerybase.recorder.report import format_timeline

    # A live worker stores a result before the hooks after it ran: let it finish what it
    # is running (briefly: a stuck task must not hold the report up).
    recorder.wait_idle(timeout=min(recorder.wait_timeout, _REPORT_WAIT))
    return format_timeline(recorder)




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
    # A request a fixture or a test pushes on a task (task.push_request) and leaves there
    # is popped once that test is torn down.  Saved once, before the first test: each
    # teardown puts this thread's stacks back to it.
    if _REQUESTS_KEY not in item.config.stash:
        from pytest_celerybase.apps.request_stacks import RequestStacks

        item.config.stash[_REQUESTS_KEY] = RequestStacks.save()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Iterator[Any]:
    if fixturedef.scope == "function":
        return (yield)
    # What a fixture broader than a test starts or declares serves every test: its
    # threads' records count for the running test, its shared tasks stay declared, its
    # changes to users' classes stay until its own teardown.
    celery_state = sys.modules.get("celery._state")
    before = set(threading.enumerate())
    declared = set(celery_state._on_app_finalizers) if celery_state else set()
    try:
        return (yield)
    finally:
        shared = request.config.stash.setdefault(_SHARED_THREADS_KEY, set())
        shared.update(t for t in threading.enumerate() if t not in before)
        celery_state = sys.modules.get("celery._state")
        if celery_state is not None:
            kept = request.config.stash.setdefault(_SHARED_DECLARATIONS_KEY, set())
            kept.update(set(celery_state._on_app_finalizers) - declared)
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
            # Likewise for our patches: one the test had monkeypatched over (Celery.send_task
            # under sent_tasks) stayed pending; that monkeypatch's undo has now put our value
            # back, so it can be undone at last.
            _patching.settle()
            requests: RequestStacks | None = item.config.stash.get(_REQUESTS_KEY, None)
            if requests is not None:
                requests.restore()
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
        _patching.settle()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    from pytest_celerybase.apps.celery_globals import SharedTasks
    from pytest_celerybase.recorder.activation import recording
    from pytest_celerybase.recorder.threads import LEFT_RUNNING

    # Around setup, call and teardown: tasks run by fixtures are recorded too, and the
    # recorder is only undone after every fixture of the test has been torn down.
    for thread in [t for t in LEFT_RUNNING if not t.is_alive()]:
        del LEFT_RUNNING[thread]
    shared = item.config.stash.get(_SHARED_THREADS_KEY, None)
    if shared:
        shared.difference_update([t for t in shared if not t.is_alive()])
    # Threads started in the test's setup, call or teardown and still running after it
    # were left running: what they record later is not the next test's.
    before = set(threading.enumerate())
    # Tasks the test (its function-scoped fixtures included) declares with @shared_task
    # are gone after it, as eager_app's are; what a module first imported in the test
    # declares stays, as the module stays imported.
    declared = SharedTasks.save()
    with recording(**item.config.stash[_RECORDING_KEY]) as recorder:
        item.stash[RECORDER_KEY] = recorder
        try:
            return (yield)
        finally:
            del item.stash[RECORDER_KEY]
            kept: set[Any] = item.config.stash.get(_SHARED_DECLARATIONS_KEY, set())
            declared.restore(keep=kept)
            shared = item.config.stash.get(_SHARED_THREADS_KEY, set())
            for thread in threading.enumerate():
                if thread not in before and thread not in shared:
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


class _LifecycleCoverageHooks:
    """The hooks of ``--celerybase-coverage`` and its ``-json``/``-fail`` forms (the logic
    is :mod:`pytest_celerybase.coverage`); on an xdist worker they send the counts to the
    controller, which reports them."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_celerybase.coverage import LifecycleCoverage

        self.coverage = LifecycleCoverage()
        self.fail = bool(config.getoption("celerybase_coverage_fail"))
        self.show = self.fail or bool(config.getoption("celerybase_coverage"))
        self.json_path: str | None = config.getoption("celerybase_coverage_json")
        self.worker = hasattr(config, "workerinput")
        self.failing = False
        self.written: Path | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        recorder = item.stash.get(RECORDER_KEY, None)
        if recorder is not None:
            # A test's clear() drops its records: they are counted first.
            tally = item.stash[_TALLY_KEY] = self._tally(threading.current_thread())
            recorder.before_clear.append(tally.read_before_clear)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        try:
            return (yield)
        finally:
            # After every fixture's teardown (a live worker finishes its tasks), while the
            # test's recorder still knows the classes of the tasks it instrumented.
            recorder = item.stash.get(RECORDER_KEY, None)
            if recorder is not None:
                try:
                    tally = item.stash.get(_TALLY_KEY, None) or self._tally(None)
                    tally.read(recorder)
                    classes = {str(task.name): cls for task, cls, _ in
                               list(recorder.instrumented.values())}  # fmt: skip
                    self.coverage.add_test(tally, classes)
                except Exception as exc:  # never the session's end: the report says it
                    self.coverage.problems.append(f"{item.nodeid}: not counted: {exc!r}")

    @staticmethod
    def _tally(test_thread: threading.Thread | None) -> TestTally:
        from pytest_celerybase.coverage import TestTally

        return TestTally(test_thread)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[Any]:
        try:
            return (yield)
        finally:
            try:
                self._finish(session)
            except Exception as exc:  # never an INTERNALERROR: the report says it
                self.coverage.problems.append(f"lifecycle coverage failed: {exc!r}")
            if self.fail and not self.worker:
                self.failing = bool(self.coverage.never_ran() or self.coverage.problems)
                # exit status 1 (TESTS_FAILED), as for a failed test
                session.testsfailed += self.failing

    def _finish(self, session: pytest.Session) -> None:
        config = session.config
        path = config.getini("celerybase_app")
        if path:  # each process, after its tests: what they imported is registered too
            self.coverage.add_project_app(path)
        if self.worker:
            config.workeroutput[_WORKER_OUTPUT] = self.coverage.to_data()  # type: ignore[attr-defined]
            return
        if self.json_path:
            from pytest_celerybase.coverage import document

            target = Path(config.invocation_params.dir, self.json_path)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                text = json.dumps(document(self.coverage), indent=2) + "\n"
                target.write_text(text, encoding="utf-8")
                self.written = target
            except OSError as exc:
                self.coverage.problems.append(f"cannot write {self.json_path}: {exc}")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
        if data is None:
            name = getattr(getattr(node, "gateway", None), "id", "?")
            self.coverage.problems.append(f"xdist worker {name} sent no lifecycle coverage")
        else:
            self.coverage.merge(data)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.worker:
            return
        from pytest_celerybase.coverage import SECTION, render

        stats = terminalreporter.stats
        failed = len(stats.get("failed", ())) + len(stats.get("error", ()))
        lines = render(self.coverage, failing=self.failing, tests_failed=failed,
                       summary_only=not self.show)  # fmt: skip
        if self.written is not None:
            lines += ["", f"JSON written to {self.json_path}"] if self.show else [
                f"JSON written to {self.json_path}"]
        terminalreporter.write_sep("=", SECTION)
        for line in lines:
            terminalreporter.write_line(line)
