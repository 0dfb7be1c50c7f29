"""DatabaseTask: bound parameters, session_scope, per-process engine, reset on disconnect."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import DatabaseNotConfigured, DatabaseTask, dispose_engines
from pytest_celerybase.bases import database as database_module
from pytest_celerybase.resources import bindings

SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]
INJECTION = "x'); DROP TABLE users;--"


@pytest.fixture
def users_table(sqlite_engine: Engine) -> Engine:
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"))
    return sqlite_engine


@pytest.fixture
def add_user(eager_app: Any) -> Any:
    @eager_app.task(base=DatabaseTask, bind=True)
    def add_user(self: Any, name: str, fail_after_insert: bool = False) -> int:
        with self.session_scope() as session:
            session.execute(text("INSERT INTO users (name) VALUES (:name)"), {"name": name})
            if fail_after_insert:
                raise RuntimeError("validation failed after the insert")
            count: int = session.execute(text("SELECT count(*) FROM users")).scalar_one()
        return count

    return add_user


@pytest.fixture
def own_engines() -> Iterator[None]:
    """No per-process engine made from a URL (no binding) before the test, none after it:
    the cache is process-wide, so another test (a prefork one, say) may have filled it."""
    dispose_engines()
    yield
    dispose_engines()


def _names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT name FROM users ORDER BY id")).scalars())


def test_insert_commits(add_user: Any, users_table: Engine) -> None:
    assert add_user.delay("ada").get() == 1
    assert_hooks_called(add_user, SUCCESS)
    assert _names(users_table) == ["ada"]


def test_injection_attempt_is_stored_literally(add_user: Any, users_table: Engine) -> None:
    assert add_user.delay(INJECTION).get() == 1
    assert add_user.delay("bob").get() == 2  # the table is still there
    assert _names(users_table) == [INJECTION, "bob"]


def test_only_bound_parameters_reach_the_database(
    add_user: Any, users_table: Engine, sql_queries: Any
) -> None:
    with sql_queries.assert_num_queries(2) as window:
        add_user.delay(INJECTION)
    insert = window.queries[0]
    assert insert.statement == "INSERT INTO users (name) VALUES (?)"
    assert insert.parameters == (INJECTION,)


def test_failure_rolls_back(add_user: Any, users_table: Engine) -> None:
    result = add_user.delay("carol", fail_after_insert=True)

    assert result.failed()
    assert isinstance(result.result, RuntimeError)
    assert_hooks_called(add_user, FAILURE)
    assert _names(users_table) == []


def test_dropped_connection_is_retried(
    eager_app: Any, users_table: Engine, mocker: Any, sql_queries: Any
) -> None:
    @eager_app.task(base=DatabaseTask, bind=True, autoretry_for=(OperationalError,), max_retries=2)
    def add(self: Any, name: str) -> None:
        with self.session_scope() as session:
            session.execute(text("INSERT INTO users (name) VALUES (:name)"), {"name": name})

    # The first statement dies as if the server had dropped the connection.
    dropped = sqlite3.OperationalError("server closed the connection unexpectedly")
    mocker.patch.object(
        users_table.dialect,
        "do_execute",
        side_effect=_once(dropped, users_table.dialect.do_execute),
    )

    assert add.delay("dora").successful()
    assert_hooks_called(
        add, ["before_start", "on_retry", "before_start", "on_success", "after_return"]
    )
    assert _names(users_table) == ["dora"]
    # The bound engine belongs to the fixture: still the one in use, not disposed.
    assert add.db is users_table


def _once(exc: BaseException, then: Any) -> Any:
    calls = []

    def side_effect(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return then(*args, **kwargs)

    return side_effect


def test_retries_exhausted_fail(eager_app: Any, users_table: Engine, mocker: Any) -> None:
    @eager_app.task(base=DatabaseTask, bind=True, autoretry_for=(OperationalError,), max_retries=1)
    def add(self: Any) -> None:
        with self.session_scope() as session:
            session.execute(text("INSERT INTO users (name) VALUES ('x')"))

    mocker.patch.object(
        users_table.dialect, "do_execute", side_effect=sqlite3.OperationalError("disk I/O error")
    )
    result = add.delay()

    assert result.failed() and isinstance(result.result, OperationalError)
    assert_hooks_called(add, ["before_start", "on_retry", *FAILURE])


def test_engine_comes_from_app_config_lazily(
    eager_app: Any, tmp_path: Path, own_engines: None
) -> None:
    eager_app.conf.celerybase_database_url = f"sqlite:///{tmp_path / 'shop.db'}"

    @eager_app.task(base=DatabaseTask, bind=True)
    def count(self: Any) -> int:
        with self.session_scope() as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
            total: int = session.execute(text("SELECT count(*) FROM t")).scalar_one()
        return total

    assert database_module._engines == {} or all(
        slot.peek() is None for slot in database_module._engines.values()
    )  # nothing was created when the task was declared
    assert [count.delay().get() for _ in range(2)] == [1, 2]
    assert count.db is count.db
    assert str(count.db.url).endswith("shop.db")
    assert count.db.pool._pre_ping  # stale pooled connections are replaced, not used


def test_task_attribute_url_wins(eager_app: Any, tmp_path: Path, own_engines: None) -> None:
    eager_app.conf.celerybase_database_url = "sqlite:///ignored.db"

    @eager_app.task(base=DatabaseTask, database_url=f"sqlite:///{tmp_path / 'own.db'}")
    def noop() -> None:
        return None

    assert str(noop.db.url).endswith("own.db")


def test_engine_is_reset_after_a_disconnect(
    eager_app: Any, tmp_path: Path, mocker: Any, own_engines: None
) -> None:
    eager_app.conf.celerybase_database_url = f"sqlite:///{tmp_path / 'shop.db'}"

    @eager_app.task(base=DatabaseTask, bind=True, autoretry_for=(ProgrammingError,), max_retries=1)
    def ping(self: Any) -> int:
        with self.session_scope() as session:
            one: int = session.execute(text("SELECT 1")).scalar_one()
        return one

    first = ping.db
    dispose = mocker.spy(first, "dispose")
    # What pysqlite reports when the connection is gone; SQLAlchemy marks it invalidated.
    mocker.patch.object(
        first.dialect,
        "do_execute",
        side_effect=sqlite3.ProgrammingError("Cannot operate on a closed database."),
    )

    assert ping.delay().get() == 1
    assert_hooks_called(
        ping, ["before_start", "on_retry", "before_start", "on_success", "after_return"]
    )
    dispose.assert_called_once_with()
    assert ping.db is not first  # a fresh engine served the retry


def test_forked_child_gets_its_own_engine(
    eager_app: Any, tmp_path: Path, mocker: Any, own_engines: None
) -> None:
    @eager_app.task(base=DatabaseTask, database_url=f"sqlite:///{tmp_path / 'f.db'}")
    def noop() -> None:
        return None

    parent_engine = noop.db
    dispose = mocker.spy(parent_engine, "dispose")
    mocker.patch("os.getpid", return_value=-1)  # as seen from a forked worker child

    child_engine = noop.db

    assert child_engine is not parent_engine
    # SQLAlchemy's fork recipe: drop the parent's connections without closing them.
    dispose.assert_called_once_with(close=False)


def test_missing_url_is_a_clear_error(eager_app: Any) -> None:
    @eager_app.task(base=DatabaseTask, bind=True)
    def needs_db(self: Any) -> None:
        self.db  # noqa: B018

    result = needs_db.delay()

    assert result.failed()
    assert isinstance(result.result, DatabaseNotConfigured)
    assert "celerybase_database_url" in str(result.result)
    assert_hooks_called(needs_db, FAILURE)


def test_bound_engine_is_used_only_while_bound(eager_app: Any, sqlite_engine: Engine) -> None:
    @eager_app.task(base=DatabaseTask)
    def noop() -> None:
        return None

    assert noop.db is sqlite_engine
    token = bindings.push(bindings.ENGINE, "inner")  # type: ignore[arg-type]
    assert noop.db == "inner"
    bindings.unbind(token)
    assert noop.db is sqlite_engine


def test_engine_is_shared_between_threads(
    eager_app: Any, add_user: Any, users_table: Engine
) -> None:
    # Celery builds @app.task tasks lazily, and not thread-safely: finish that first.
    eager_app.finalize()
    threads = [threading.Thread(target=add_user.apply, args=((f"u{i}",),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(_names(users_table)) == sorted(f"u{i}" for i in range(8))
