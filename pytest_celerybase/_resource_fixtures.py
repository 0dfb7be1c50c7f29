"""Resource fixtures: ``sqlite_engine``, ``sql_queries``, ``http_stub``, ``fake_redis``,
``metrics_sink``.

Re-exported by :mod:`pytest_celerybase.plugin`.  Each fixture binds its in-memory
double in :mod:`pytest_celerybase._bindings` so the reference bases use it while the
test runs, and unbinds it in ``finally``, also when the test fails.  SQLAlchemy,
responses, fakeredis and Celery are imported inside the fixtures: importing this
module (and so the plugin) stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from pytest_celerybase import _bindings
from pytest_celerybase._markers import marker_kwargs

if TYPE_CHECKING:
    import fakeredis
    import responses
    from sqlalchemy.engine import Engine

    from pytest_celerybase._sql_capture import SQLQueries
    from pytest_celerybase.bases.sinks import MemorySink

__all__ = ["fake_redis", "http_stub", "metrics_sink", "sql_queries", "sqlite_engine"]

HTTP_STUB_MARKER = (
    "http_stub(*, assert_all_requests_are_fired=True): options of the http_stub fixture; "
    "assert_all_requests_are_fired=False lets registered responses go unrequested."
)
"""The marker line ``pytest_configure`` registers (``config.addinivalue_line``)."""


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    """A SQLAlchemy ``Engine`` on a private in-memory SQLite database, shared by threads.

    ``sqlite://`` with a ``StaticPool`` and ``check_same_thread=False``: every thread
    (a live worker's included) uses the one connection, so all see the same data.
    The pool lends it to one thread at a time (re-entrant within a thread), so
    concurrent tasks don't interleave inside one transaction; a thread waiting more
    than 10 s gets a ``TimeoutError`` naming the usual deadlock.  Every
    ``DatabaseTask`` uses this engine while the test runs; the database is gone after.
    """
    from pytest_celerybase._sqlite import create_memory_engine

    engine = create_memory_engine()
    token = _bindings.push(_bindings.ENGINE, engine)
    try:
        yield engine
    finally:
        _bindings.unbind(token)
        engine.dispose()


@pytest.fixture
def sql_queries(sqlite_engine: Engine) -> Iterator[SQLQueries]:
    """The SQL executed on ``sqlite_engine`` during the test, à la pytest-django.

    ``.statements``/``.queries`` list what ran; ``with sql_queries.assert_num_queries(2):``
    fails unless the block ran exactly two, listing the statements it did run
    (``assert_max_num_queries(n)`` for an upper bound); ``.clear()`` starts over.
    """
    from pytest_celerybase._sql_capture import SQLQueries

    queries = SQLQueries(sqlite_engine)
    try:
        yield queries
    finally:
        queries.close()


@dataclass(frozen=True, kw_only=True)
class _HttpStubOptions:
    assert_all_requests_are_fired: bool = True


def _http_stub_options(node: pytest.Item) -> _HttpStubOptions:
    __tracebackhide__ = True
    kwargs = marker_kwargs(
        node,
        "http_stub",
        "@pytest.mark.http_stub takes keyword arguments only, e.g. "
        "@pytest.mark.http_stub(assert_all_requests_are_fired=False); got {args!r}",
    )
    try:
        return _HttpStubOptions(**kwargs)
    except TypeError:
        valid = ", ".join(_HttpStubOptions.__dataclass_fields__)
        raise TypeError(
            f"@pytest.mark.http_stub got {sorted(kwargs)}; valid keyword arguments: {valid}"
        ) from None


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

    try:
        options = _http_stub_options(request.node)
    except TypeError as exc:
        problem = str(exc)  # fail outside the handler: no chained traceback
    else:
        problem = ""
    if problem:
        pytest.fail(f"http_stub: {problem}", pytrace=False)
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
            "(see the README, section 'http_stub')."
        )
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    """A ``fakeredis.FakeRedis`` on a server private to this test.

    ``CachedTask`` caches in it while the test runs.  TTLs are real: ``ttl(key)``
    shows them, and keys expire on the wall clock.
    """
    import fakeredis

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    token = _bindings.push(_bindings.REDIS, client)
    try:
        yield client
    finally:
        _bindings.unbind(token)
        client.close()


@pytest.fixture
def metrics_sink() -> Iterator[MemorySink]:
    """Every metric ``MetricsTask``/``ProductionTask`` emits during the test.

    ``.records`` holds ``Metric(name, value, labels, kind, task_id, timestamp)`` with
    ``labels["task"]`` and, for outcomes, ``labels["status"]`` (SUCCESS, FAILURE,
    RETRY).  Query with ``.values(name, **labels)``, ``.filter(...)``, ``.total(...)``,
    ``.last(...)``; ``.clear()`` empties it.
    """
    from pytest_celerybase.bases.sinks import MemorySink

    sink = MemorySink()
    token = _bindings.push(_bindings.METRICS_SINK, sink)
    try:
        yield sink
    finally:
        _bindings.unbind(token)
