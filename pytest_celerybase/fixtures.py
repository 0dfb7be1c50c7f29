"""Every public fixture of pytest-celerybase (imported by name into the plugin).

Celery, SQLAlchemy, responses and fakeredis are imported inside the fixtures, so importing
this module (and the plugin) stays cheap.  Configuration is read through
:mod:`pytest_celerybase._settings`, so every fixture reports a mistake the same way.

How the resource fixtures reach the reference bases: ``sqlite_engine``, ``fake_redis`` and
``metrics_sink`` bind their double (:mod:`pytest_celerybase.resources.bindings`) for the test, so
``DatabaseTask``, ``CachedTask`` and ``MetricsTask`` use it; ``http_stub`` patches
``requests`` itself, so every session (``APIClientTask``'s included) goes through it;
``sql_queries`` listens to ``sqlite_engine``.  Bindings are process-wide: tasks run by a
``live_worker`` thread see them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_celerybase._settings import (
    database_urls,
    eager_app_setup,
    fail_on_bad_config,
    http_stub_options,
    live_worker_setup,
    prometheus_registries,
)

if TYPE_CHECKING:
    import fakeredis
    import responses
    from celery import Celery
    from sqlalchemy.engine import Engine

    from pytest_celerybase.apps.class_state import ClassState
    from pytest_celerybase.apps.isolated import AppCache
    from pytest_celerybase.bases.sinks import MemorySink
    from pytest_celerybase.recorder.hook_recorder import HookRecorder
    from pytest_celerybase.resources.database import TestDatabase
    from pytest_celerybase.resources.redirect import DatabaseRedirect
    from pytest_celerybase.resources.sql_capture import SQLQueries
    from pytest_celerybase.sent_tasks.collection import SentTasks
    from pytest_celerybase.worker.live import LiveWorker

__all__ = [
    "DATABASE_URLS_KEY",
    "RECORDER_KEY",
    "celerybase_config",
    "eager_app",
    "fake_redis",
    "hook_recorder",
    "http_stub",
    "live_worker",
    "metrics_sink",
    "sent_tasks",
    "sql_queries",
    "sqlite_engine",
]

# Fixtures running a worker in the test process: with one, sent_tasks delivers.
_WORKER_FIXTURES = frozenset({"live_worker", "celery_worker", "celery_session_worker"})

#: Where the plugin keeps the recorder of the test being run (``item.stash``).
RECORDER_KEY = pytest.StashKey["HookRecorder"]()
_APP_CACHE_KEY = pytest.StashKey["AppCache"]()
# Rollbacks of eager_app's app that wait until every fixture of the test was torn down.
_DEFERRED_KEY = pytest.StashKey[list[Callable[[], None]]]()
_CLASS_STATE_KEY = pytest.StashKey["ClassState"]()
#: The ``celerybase_database_urls`` ini globs, read once at start-up (``config.stash``).
DATABASE_URLS_KEY = pytest.StashKey[tuple[str, ...]]()
# The database redirect of the test being run (item.stash), when it names URLs.
_REDIRECT_KEY: pytest.StashKey[DatabaseRedirect] = pytest.StashKey()
# What each wider-scoped fixture changed in users' classes when it was set up.
_FIXTURE_CHANGES_KEY = pytest.StashKey[dict[int, dict[int, list[str]]]]()


@pytest.fixture
def hook_recorder(request: pytest.FixtureRequest) -> HookRecorder:
    """The :class:`~pytest_celerybase.HookRecorder` of this test (``.calls``, ``.clear()``)."""
    try:
        recorder: HookRecorder = request.node.stash[RECORDER_KEY]
    except KeyError:  # pragma: no cover - only without the plugin's runtest hook
        raise RuntimeError("hook_recorder is only available inside a test") from None
    return recorder


@pytest.fixture
def celerybase_config() -> dict[str, Any]:
    """Celery settings applied over the eager/worker defaults; override it to change them."""
    return {}


@pytest.fixture
def eager_app(
    request: pytest.FixtureRequest, celerybase_config: dict[str, Any]
) -> Iterator[Celery]:
    """A Celery app that runs tasks synchronously, current and default for the test.

    In-memory broker and result backend, ``task_always_eager=True``,
    ``task_eager_propagates=False``; the ``celerybase_app`` ini key selects a project
    app instead of the plugin's own.  The plugin's app is built once per distinct
    settings per session; after each test everything is restored: configuration, task
    registry, every task's attributes, cached backend and pools, current/default app.
    """
    from pytest_celerybase.apps.isolated import isolated_app

    settings, app = eager_app_setup(request, celerybase_config)
    cache = None if app is not None else _app_cache(request.config)
    defer = request.config.stash.setdefault(_DEFERRED_KEY, []).append
    with isolated_app(app, settings, cache=cache, defer=defer) as configured:
        yield configured


def run_deferred_restores(config: pytest.Config) -> None:
    """Restore the apps whose rollback waited for the test's whole teardown (newest first).

    The plugin calls it after each test's teardown (and at session end, for a test whose
    teardown was deferred there by an interruption).
    """
    pending = config.stash.get(_DEFERRED_KEY, None)
    while pending:
        pending.pop()()


def follow_task_classes(config: pytest.Config) -> ClassState:
    """The session's :class:`~pytest_celerybase.apps.class_state.ClassState`, made on
    first use (the plugin makes it once collection is over), closed at exit."""
    state = config.stash.get(_CLASS_STATE_KEY, None)
    if state is None:
        from pytest_celerybase.apps.class_state import ClassState
        from pytest_celerybase.recorder.instrument import BEFORE_INSTRUMENT

        state = config.stash[_CLASS_STATE_KEY] = ClassState()
        config.add_cleanup(state.close)
        # A task registered during a test on an app no AppState restores is followed
        # from just before it first runs: the state to restore is the one it had then.
        see = state.see
        BEFORE_INSTRUMENT.append(see)
        config.add_cleanup(lambda: BEFORE_INSTRUMENT.remove(see))
    return state


def begin_test(item: pytest.Item) -> None:
    """What the plugin starts as a test's setup starts, before any fixture: following
    users' task classes, and redirecting ``create_engine`` for ``celerybase_database_urls``.

    A ``celerybase_keep`` that is not a tuple of names, or a marker's
    ``celerybase_database_urls`` that is not a list of URL globs, fails the test's setup.
    """
    with fail_on_bad_config("celerybase_keep"):
        follow_task_classes(item.config).begin()
    globs = database_urls(item, item.config.stash.get(DATABASE_URLS_KEY, ()))
    if globs:
        from pytest_celerybase.resources.database import TestDatabase
        from pytest_celerybase.resources.redirect import DatabaseRedirect

        redirect = item.stash[_REDIRECT_KEY] = DatabaseRedirect(globs, TestDatabase())
        redirect.start()


def end_test(item: pytest.Item) -> list[str]:
    """Undo :func:`begin_test` once the test's teardown is over (the plugin calls it):
    users' classes are restored (what the test left on them closed), then the redirect
    stops and the test's database is closed.  One line per resource that failed to close.
    """
    state = item.config.stash.get(_CLASS_STATE_KEY, None)
    try:
        return [] if state is None else state.end()
    finally:
        redirect = item.stash.get(_REDIRECT_KEY, None)
        if redirect is not None:
            del item.stash[_REDIRECT_KEY]
            redirect.stop()
            redirect.database.close()


def _test_database(request: pytest.FixtureRequest) -> TestDatabase | None:
    """The database ``create_engine()`` is redirected to in this test, if any."""
    redirect = request.node.stash.get(_REDIRECT_KEY, None)
    return None if redirect is None else redirect.database


def wider_fixture_set_up(config: pytest.Config, fixturedef: pytest.FixtureDef[Any]) -> None:
    """A module/class/package/session-scoped fixture was set up: what it changed in users'
    classes is not the test's and stays (until its own teardown)."""
    state = config.stash.get(_CLASS_STATE_KEY, None)
    if state is not None:
        changes = state.changes()
        if changes:
            state.accept(changes)
            config.stash.setdefault(_FIXTURE_CHANGES_KEY, {})[id(fixturedef)] = changes


def wider_fixture_torn_down(config: pytest.Config, fixturedef: pytest.FixtureDef[Any]) -> None:
    """That fixture was torn down: the attributes it had set are restored to what its
    teardown left (usually what was there before it)."""
    state = config.stash.get(_CLASS_STATE_KEY, None)
    changes = config.stash.get(_FIXTURE_CHANGES_KEY, {}).pop(id(fixturedef), None)
    if state is not None and changes:
        state.accept(changes)


def _app_cache(config: pytest.Config) -> AppCache:
    """The session's apps for ``eager_app`` (one per distinct settings), closed at exit."""
    cache = config.stash.get(_APP_CACHE_KEY, None)
    if cache is None:
        from pytest_celerybase.apps.isolated import AppCache

        cache = config.stash[_APP_CACHE_KEY] = AppCache()
        config.add_cleanup(cache.close)
    return cache


@pytest.fixture
def live_worker(
    request: pytest.FixtureRequest,
    celerybase_config: dict[str, Any],
    hook_recorder: HookRecorder,
) -> Iterator[LiveWorker]:
    """A real Celery worker running in a thread of the test process, for this test.

    ``live_worker.app`` is its app (current and default during the test): in-memory
    broker and result backend, not eager, solo pool unless ``worker_pool`` says
    ``"threads"`` or ``"prefork"`` (child processes, as in production).
    ``task.delay(...).get(timeout=...)`` goes through the worker's consume -> trace -> ack
    path; hooks are recorded and hook assertions wait for the worker to finish the task.
    Settings come from
    ``celerybase_config`` and ``@pytest.mark.celerybase(...)`` (e.g.
    ``worker_pool="threads", worker_concurrency=4``); ``CELERYBASE_BROKER_URL`` /
    ``CELERYBASE_RESULT_BACKEND`` select a real broker.  The worker is stopped after the
    test, and no thread of it is left behind.
    """
    from pytest_celerybase.apps.isolated import isolated_app
    from pytest_celerybase.worker.live import LiveWorker, worker_death
    from pytest_celerybase.worker.options import live_defaults

    settings, options, app = live_worker_setup(request, celerybase_config)
    for first in ("sent_tasks", "metrics_sink"):
        if first in request.fixturenames:
            # Capturing before the worker starts: prefork children forked now inherit it.
            request.getfixturevalue(first)
    database = _test_database(request)
    with isolated_app(app, settings, defaults=live_defaults()) as configured:
        # prefork: the redirected database moves to a file the children can open.
        on_fork_dir = database.use_directory if database is not None else None
        worker = LiveWorker.from_options(configured, options, prefork_dir=on_fork_dir)
        # Publications of the worker's tasks count as in flight until it has run them,
        # so hook assertions right after result.get() wait for on_success/after_return.
        hook_recorder.watch_worker_tasks(lambda: configured.tasks)
        try:
            with worker:
                yield worker
        finally:
            hook_recorder.watch_worker_tasks(None)
    death = worker_death(worker, hook_recorder.escapes)
    if death:
        pytest.fail(f"live_worker: {death}", pytrace=False)


_UNREQUESTED_DOCS = "https://pytest-celerybase.readthedocs.io/en/latest/how-to/http.html#unrequested"


@pytest.fixture
def sent_tasks(request: pytest.FixtureRequest) -> Iterator[SentTasks]:
    """Every task message sent during the test, held instead of delivered or run.

    ``delay``, ``apply_async``, ``send_task``, signatures and canvas, from any app in the
    process (``eager_app``'s publishes instead of running eagerly while this is active);
    each message is built for real, so what a worker could not receive fails at send
    time.  A sequence of ``SentTask`` (``name``, ``args``, ``kwargs``, ``options``,
    ``eta``, ``queue``...) with ``.assert_task_sent(...)``, ``.assert_task_not_sent(...)``,
    ``.filter(...)``, ``.pending``, ``.clear()`` and ``.run()``, which runs the held
    messages the way a worker would.  With an in-process worker in the test
    (``live_worker``, or Celery's ``celery_worker``/``celery_session_worker``) the
    messages are recorded and delivered to it instead.
    """
    from pytest_celerybase.sent_tasks.collection import capture_sent_tasks

    delivering = _WORKER_FIXTURES.intersection(request.fixturenames)
    with capture_sent_tasks(hold=not delivering) as sent:
        yield sent


@pytest.fixture
def sqlite_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A SQLAlchemy ``Engine`` on a private in-memory SQLite database, shared by threads.

    ``sqlite://`` with a ``StaticPool`` and ``check_same_thread=False``: every thread
    (a live worker's included) uses the one connection, so all see the same data.
    The pool lends it to one thread at a time (re-entrant within a thread), so
    concurrent tasks don't interleave inside one transaction; a thread waiting more
    than 10 s gets a ``TimeoutError`` naming the usual deadlock.  Every
    ``DatabaseTask`` uses this engine while the test runs, and so does every engine
    ``create_engine()`` returns for a URL of ``celerybase_database_urls`` (same data);
    the database is gone after the test.
    """
    from pytest_celerybase.resources import bindings
    from pytest_celerybase.resources.database import TestDatabase

    shared = _test_database(request)
    database = shared if shared is not None else TestDatabase()
    engine = database.engine()
    try:
        with bindings.bind(bindings.ENGINE, engine):
            yield engine
    finally:
        engine.dispose()
        if shared is None:
            database.close()  # else the plugin closes it once the test is over


@pytest.fixture
def sql_queries(request: pytest.FixtureRequest, sqlite_engine: Engine) -> Iterator[SQLQueries]:
    """The SQL executed on ``sqlite_engine`` during the test, à la pytest-django.

    Also what runs on the engines ``create_engine()`` returns for the URLs of
    ``celerybase_database_urls`` (they share its database).

    ``.statements``/``.queries`` list what ran; ``with sql_queries.assert_num_queries(2):``
    fails unless the block ran exactly two, listing the statements it did run
    (``assert_max_num_queries(n)`` for an upper bound); ``.clear()`` starts over.
    """
    from pytest_celerybase.resources.sql_capture import SQLQueries

    queries = SQLQueries(sqlite_engine)
    database = _test_database(request)
    stop = database.subscribe(queries.watch) if database is not None else None
    try:
        yield queries
    finally:
        if stop is not None:
            stop()
        queries.close()


@pytest.fixture
def http_stub(request: pytest.FixtureRequest) -> Iterator[responses.RequestsMock]:
    """A ``responses.RequestsMock`` active for the test: no request reaches the network.

    Every ``requests`` session goes through it, including ``APIClientTask``'s retrying
    one (responses drives urllib3's ``Retry`` without sleeping; each attempt is in
    ``http_stub.calls``).  A request nothing matches raises ``ConnectionError``.

    Responses registered but never requested fail the test at teardown, unless the
    test already failed, ``@pytest.mark.http_stub(assert_all_requests_are_fired=False)``
    is set, or the test sets ``http_stub.assert_all_requests_are_fired = False``.
    """
    import responses

    options = http_stub_options(request.node)
    mock = responses.RequestsMock(
        assert_all_requests_are_fired=options.assert_all_requests_are_fired
    )
    # A failure of the test itself increments testsfailed before teardown; a missing
    # request is then a consequence, not news (responses' own context manager also
    # skips the check when the block raised).
    failed_before = request.session.testsfailed
    mock.start()
    unfired: list[str] = []
    try:
        yield mock
    finally:
        try:
            mock.stop(allow_assert=False)
            if mock.assert_all_requests_are_fired and request.session.testsfailed == failed_before:
                unfired = [
                    f"- {response.method} {response.url}"
                    for response in mock.registered()
                    if response.call_count == 0
                ]
        finally:
            mock.reset()
    if unfired:
        what = "response was" if len(unfired) == 1 else "responses were"
        lines = [f"http_stub: {len(unfired)} registered {what} never requested:", *unfired]
        lines.append(
            "Remove them, or allow this with "
            "@pytest.mark.http_stub(assert_all_requests_are_fired=False) "
            f"(see {_UNREQUESTED_DOCS})."
        )
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    """A ``fakeredis.FakeRedis`` on a server private to this test.

    ``CachedTask`` caches in it while the test runs.  TTLs are real: ``ttl(key)``
    shows them, and keys expire on the wall clock.
    """
    import fakeredis

    from pytest_celerybase.resources import bindings

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    try:
        with bindings.bind(bindings.REDIS, client):
            yield client
    finally:
        client.close()


@pytest.fixture
def metrics_sink(request: pytest.FixtureRequest) -> Iterator[MemorySink]:
    """Every metric ``MetricsTask``/``ProductionTask`` emits during the test, and what
    ``prometheus_client`` counted during it.

    ``.records`` holds ``Metric(name, value, labels, kind, task_id, timestamp)``: those
    emitted, with ``labels["task"]`` and, for outcomes, ``labels["status"]`` (SUCCESS,
    FAILURE, RETRY); then one per Prometheus sample that changed during the test, named
    as exposed (``runs_total``, ``latency_seconds_count``, ``latency_seconds_sum``), with
    its labels and its increase (a gauge: its value).  The default registry is read, and
    those the ``celerybase_prometheus_registries`` ini key names.  Query with
    ``.values(name, **labels)``, ``.filter(...)``, ``.total(...)``, ``.last(...)``;
    ``.clear()`` empties it.  Reading waits for a live worker's running tasks; on the
    prefork pool, what the children emit and count is included.
    """
    from pytest_celerybase.resources import bindings
    from pytest_celerybase.resources.metrics import CapturedMetrics

    sink = CapturedMetrics(prometheus_registries(request.config))
    sink.start()
    try:
        with bindings.bind(bindings.METRICS_SINK, sink):
            yield sink
    finally:
        sink.stop()
