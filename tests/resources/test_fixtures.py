"""The resource fixtures: sqlite_engine, sql_queries, http_stub, fake_redis, metrics_sink."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import Engine, text
from sqlalchemy.pool import StaticPool

from pytest_celerybase.bases import MemorySink
from pytest_celerybase.resources import bindings

RunPytest = Callable[..., pytest.RunResult]


# -- in-process behaviour ---------------------------------------------------------------
def test_sqlite_engine_is_in_memory_shared_and_bound(sqlite_engine: Engine) -> None:
    assert isinstance(sqlite_engine, Engine)
    assert str(sqlite_engine.url) == "sqlite://"
    assert isinstance(sqlite_engine.pool, StaticPool)
    assert bindings.current(bindings.ENGINE) is sqlite_engine

    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))

    def insert() -> None:
        with sqlite_engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))

    thread = threading.Thread(target=insert)
    thread.start()
    thread.join(5)
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_sqlite_engine_serialises_threads_but_not_one_thread(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        # Re-entrant: the same thread may open another connection (an eager task).
        with sqlite_engine.begin() as nested:
            nested.execute(text("INSERT INTO t VALUES (1)"))

    def writer(i: int) -> None:
        with sqlite_engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
            conn.execute(text("SELECT count(*) FROM t")).scalar_one()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 9


def test_sqlite_engine_reports_a_deadlock_instead_of_hanging() -> None:
    from pytest_celerybase.resources.sqlite import create_memory_engine

    engine = create_memory_engine(checkout_timeout=0.02)
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            engine.connect().close()
        except TimeoutError as exc:
            errors.append(exc)

    try:
        with engine.connect():
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join(5)
        assert len(errors) == 1
        assert "held the shared in-memory connection for 0.02s" in str(errors[0])
        engine.connect().close()  # free again once released
    finally:
        engine.dispose()


def test_sql_queries_capture(sqlite_engine: Engine, sql_queries: Any) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        with sql_queries.assert_num_queries(2) as window:
            conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": 1})
            conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": 2}, {"x": 3}])
        with sql_queries.assert_max_num_queries(5):
            conn.execute(text("SELECT * FROM t"))

    assert window.statements == ["INSERT INTO t VALUES (?)"] * 2
    assert window.queries[1].executemany
    assert sql_queries.statements[0] == "CREATE TABLE t (x INTEGER)"
    assert len(sql_queries) == 4
    sql_queries.clear()
    assert sql_queries.statements == []


def test_sql_queries_failure_message(sqlite_engine: Engine, sql_queries: Any) -> None:
    with pytest.raises(AssertionError) as info, sql_queries.assert_num_queries(0):
        with sqlite_engine.connect() as conn:
            conn.execute(text("SELECT :n"), {"n": 42})
    assert str(info.value) == (
        "Expected to perform 0 queries but 1 was done:\n  1. SELECT ?  -- params: (42,)"
    )

    with pytest.raises(AssertionError, match=r"^Expected to perform at most 0 queries"):
        with sql_queries.assert_max_num_queries(0), sqlite_engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    with pytest.raises(AssertionError, match=r"^Expected to perform 1 query but 0 were done\.$"):
        with sql_queries.assert_num_queries(1):
            pass


def test_http_stub_blocks_unregistered_requests(http_stub: responses.RequestsMock) -> None:
    with pytest.raises(requests.ConnectionError, match="Connection refused by Responses"):
        requests.get("https://example.com/not-registered", timeout=1)


def test_http_stub_answers_a_users_own_retrying_session(
    http_stub: responses.RequestsMock,
) -> None:
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    retry = Retry(total=3, status_forcelist=[503], backoff_factor=0.5)
    session.mount("https://", HTTPAdapter(max_retries=retry))
    url = "https://api.example.com/users/1"
    http_stub.get(url, status=503)
    http_stub.get(url, json={"id": 1})

    assert session.get(url, timeout=5).json() == {"id": 1}
    assert [call.response.status_code for call in http_stub.calls] == [503, 200]

    # Without the adapter's status_forcelist the 503 is the answer: one request.
    http_stub.calls.reset()
    http_stub.get(url, status=503)
    assert requests.get(url, timeout=5).status_code == 503
    assert len(http_stub.calls) == 1


def test_fake_redis_is_private_and_bound(fake_redis: Any) -> None:
    import fakeredis

    assert isinstance(fake_redis, fakeredis.FakeRedis)
    assert bindings.current(bindings.REDIS) is fake_redis
    assert fake_redis.keys("*") == []  # nothing from other tests
    fake_redis.set("k", "v", ex=10)
    assert fake_redis.ttl("k") == 10
    other = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    assert other.get("k") is None


def test_metrics_sink_is_bound(metrics_sink: MemorySink) -> None:
    assert isinstance(metrics_sink, MemorySink)
    assert bindings.current(bindings.METRICS_SINK) is metrics_sink
    assert metrics_sink.records == []


def test_all_fixtures_together_bind_one_each(
    sqlite_engine: Engine, fake_redis: Any, metrics_sink: MemorySink, http_stub: Any
) -> None:
    snapshot = bindings.snapshot()
    assert [len(snapshot[key.name]) for key in bindings.KEYS] == [1, 1, 1, 0]


# -- through pytest (pytester) ------------------------------------------------------------
@pytest.fixture
def inner(pytester: pytest.Pytester, run: RunPytest) -> Callable[[str], pytest.RunResult]:
    def _inner(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(test_inner=source)
        return run("-p", "tests.leak_guard", *args)

    return _inner


UNFIRED = """
import requests

def test_unfired(http_stub):
    http_stub.get("https://api.example.com/users", json=[])
    http_stub.post("https://api.example.com/audit", status=201)
    http_stub.get("https://api.example.com/used", json={})
    requests.get("https://api.example.com/used", timeout=1)
"""


def test_unfired_responses_fail_the_test(inner: Callable[..., pytest.RunResult]) -> None:
    result = inner(UNFIRED)

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unfired*",
            "*http_stub: 2 registered responses were never requested:",
            "*- GET https://api.example.com/users",
            "*- POST https://api.example.com/audit",
            "*Remove them, or allow this with "
            "@pytest.mark.http_stub(assert_all_requests_are_fired=False)*",
        ]
    )
    result.stdout.no_fnmatch_line("*- GET https://api.example.com/used*")


def test_marker_opts_out(inner: Callable[..., pytest.RunResult]) -> None:
    result = inner(
        """
import pytest

pytestmark = pytest.mark.http_stub(assert_all_requests_are_fired=False)

def test_module_marker(http_stub):
    http_stub.get("https://api.example.com/maybe")

@pytest.mark.http_stub(assert_all_requests_are_fired=True)
def test_closest_marker_wins(http_stub):
    http_stub.get("https://api.example.com/required")

def test_attribute(http_stub):
    http_stub.assert_all_requests_are_fired = True
    http_stub.get("https://api.example.com/also-required")
"""
    )
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        ["*- GET https://api.example.com/required", "*- GET https://api.example.com/also-required"]
    )
    result.stdout.no_fnmatch_line("*maybe*")


def test_a_failing_test_is_not_also_an_unfired_error(
    inner: Callable[..., pytest.RunResult],
) -> None:
    result = inner(
        """
def test_fails_first(http_stub):
    http_stub.get("https://api.example.com/users", json=[])
    assert 1 == 2
"""
    )
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*never requested*")


def test_bad_marker_arguments(inner: Callable[..., pytest.RunResult]) -> None:
    result = inner(
        """
import pytest

@pytest.mark.http_stub(assert_all_fired=False)
def test_typo(http_stub):
    pass

@pytest.mark.http_stub(False)
def test_positional(http_stub):
    pass
"""
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*http_stub: TypeError: @pytest.mark.http_stub got ?'assert_all_fired'?; "
            "valid keyword arguments: assert_all_requests_are_fired",
            "*http_stub: TypeError: @pytest.mark.http_stub takes keyword arguments only*",
        ]
    )
    result.stdout.no_fnmatch_line("*During handling*")


def test_assert_num_queries_failure_lists_statements(
    inner: Callable[..., pytest.RunResult],
) -> None:
    result = inner(
        """
from sqlalchemy import text

def test_too_many(sqlite_engine, sql_queries):
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (name TEXT)"))
        with sql_queries.assert_num_queries(1):
            conn.execute(text("INSERT INTO users VALUES (:n)"), {"n": "ada"})
            conn.execute(text("SELECT name FROM users"))
"""
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">*with sql_queries.assert_num_queries(1):",
            "E*AssertionError: Expected to perform 1 query but 2 were done:",
            "E*  1. INSERT INTO users VALUES (?)  -- params: ('ada',)",
            "E*  2. SELECT name FROM users  -- params: ()",
            "test_inner.py:*: AssertionError",
        ]
    )
    # The helper's own frames are hidden, as pytest-django's are.
    result.stdout.no_fnmatch_line("*_sql_capture.py*")
    result.stdout.no_fnmatch_line("*contextlib.py*")


def test_fixtures_leave_nothing_bound_even_when_the_test_fails(
    inner: Callable[..., pytest.RunResult],
) -> None:
    result = inner(
        """
import pytest
from celery import Celery
from pytest_celerybase.resources import bindings
from pytest_celerybase.bases import CachedTask, DatabaseNotConfigured, DatabaseTask

def test_uses_everything(sqlite_engine, sql_queries, fake_redis, metrics_sink, http_stub):
    assert all(bindings.bound(key) for key in bindings.KEYS[:3])
    raise RuntimeError("the test fails halfway")

def test_after(eager_app):
    assert all(stack == () for stack in bindings.snapshot().values())

    @eager_app.task(base=DatabaseTask)
    def needs_db():
        return None

    with pytest.raises(DatabaseNotConfigured):
        needs_db.db
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.no_fnmatch_line("*leak*")
