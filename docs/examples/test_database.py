import sqlite3

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import DatabaseTask
from sqlalchemy import text
from sqlalchemy.exc import OperationalError


def add_user_task(app):
    @app.task(
        base=DatabaseTask, bind=True, autoretry_for=(OperationalError,), max_retries=3
    )
    def add_user(self, name):
        with self.session_scope() as session:  # commits, or rolls back and re-raises
            session.execute(
                text("INSERT INTO users (name) VALUES (:name)"), {"name": name}
            )
        return name

    return add_user


def create_users_table(engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (name TEXT NOT NULL)"))


def test_the_task_uses_the_test_database(eager_app, sqlite_engine):
    create_users_table(sqlite_engine)
    add_user = add_user_task(eager_app)

    add_user.delay("ada").get()

    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM users")).scalars().all() == ["ada"]


def test_count_the_queries(eager_app, sqlite_engine, sql_queries):
    create_users_table(sqlite_engine)
    add_user = add_user_task(eager_app)

    with sql_queries.assert_num_queries(1):
        add_user.delay("ada").get()


def test_a_dropped_connection_is_retried(eager_app, sqlite_engine, mocker):
    create_users_table(sqlite_engine)
    add_user = add_user_task(eager_app)
    real_execute = sqlite_engine.dialect.do_execute
    calls = []

    def drop_the_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("server closed the connection unexpectedly")
        return real_execute(*args, **kwargs)

    mocker.patch.object(sqlite_engine.dialect, "do_execute", side_effect=drop_the_first)

    assert add_user.delay("ada").get() == "ada"
    assert_hooks_called(
        add_user,
        ["before_start", "on_retry", "before_start", "on_success", "after_return"],
    )
