"""Syncing users from the accounts API: HTTP stubbed, database in memory."""

from __future__ import annotations

import sqlite3
from typing import Any

import requests
import responses
from celery import Celery
from pytest_celerybase import HookRecorder, assert_hooks_called
from pytest_celerybase.bases import MemorySink
from pytest_mock import MockerFixture
from sqlalchemy import Engine, text

from shop.tasks import sync_users

USERS_URL = "https://accounts.example.com/api/users?page=1"
SUCCESS = ["before_start", "on_success", "after_return"]
RETRY = ["before_start", "on_retry"]
FAILURE = ["before_start", "on_failure", "after_return"]
BOBBY = "Robert'); DROP TABLE users;--"


def page(*users: tuple[int, str, str]) -> dict[str, Any]:
    return {"users": [{"id": i, "email": e, "name": n} for i, e, n in users]}


def names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT name FROM users ORDER BY id")).scalars())


def test_sync_inserts_and_updates_users(
    eager_app: Celery,
    shop_db: Engine,
    http_stub: responses.RequestsMock,
    metrics_sink: MemorySink,
) -> None:
    http_stub.get(
        USERS_URL,
        json=page(
            (1, "ada@example.com", "Ada Lovelace"), (2, "bob@example.com", BOBBY)
        ),
    )

    assert sync_users.delay().get() == 2

    assert_hooks_called(sync_users, SUCCESS)
    # Updated by email, and a hostile name is data, not SQL.
    assert names(shop_db) == ["Ada Lovelace", BOBBY]
    assert metrics_sink.values("shop_users_synced_total", task=sync_users.name) == [2.0]
    assert metrics_sink.values("celery_task_executions_total", status="SUCCESS") == [
        1.0
    ]


def test_transient_api_errors_are_retried_by_the_session(
    eager_app: Celery,
    shop_db: Engine,
    http_stub: responses.RequestsMock,
    hook_recorder: HookRecorder,
) -> None:
    http_stub.get(USERS_URL, status=503)
    http_stub.get(USERS_URL, status=502)
    http_stub.get(USERS_URL, json=page((3, "cy@example.com", "Cy")))

    assert sync_users.delay().get() == 1

    # urllib3 retried inside one execution (no real sleeping under http_stub) ...
    assert len(http_stub.calls) == 3
    assert_hooks_called(sync_users, SUCCESS)
    # ... so Celery saw a single, successful run.
    assert [c.status for c in hook_recorder.calls if c.hook == "after_return"] == [
        "SUCCESS"
    ]


def test_connection_errors_are_retried_by_celery(
    eager_app: Celery,
    shop_db: Engine,
    http_stub: responses.RequestsMock,
    metrics_sink: MemorySink,
) -> None:
    http_stub.get(USERS_URL, body=requests.ConnectionError("connection reset by peer"))
    http_stub.get(USERS_URL, json=page((4, "di@example.com", "Di")))

    assert sync_users.delay().get() == 1

    assert_hooks_called(sync_users, RETRY + SUCCESS)
    outcomes = metrics_sink.filter("celery_task_executions_total")
    assert [m.labels["status"] for m in outcomes] == ["RETRY", "SUCCESS"]


def test_a_dropped_database_connection_is_retried(
    eager_app: Celery,
    shop_db: Engine,
    http_stub: responses.RequestsMock,
    mocker: MockerFixture,
) -> None:
    http_stub.get(USERS_URL, json=page((5, "ed@example.com", "Ed")))
    http_stub.get(USERS_URL, json=page((5, "ed@example.com", "Ed")))
    real_execute = shop_db.dialect.do_execute
    attempts: list[int] = []

    def drop_first(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("server closed the connection unexpectedly")
        return real_execute(*args, **kwargs)

    mocker.patch.object(shop_db.dialect, "do_execute", side_effect=drop_first)

    assert sync_users.delay().get() == 1

    assert_hooks_called(sync_users, RETRY + SUCCESS)
    mocker.stopall()
    assert names(shop_db) == ["Ada", "Ed"]


def test_the_api_being_down_fails_the_task(
    eager_app: Celery,
    shop_db: Engine,
    http_stub: responses.RequestsMock,
    metrics_sink: MemorySink,
) -> None:
    http_stub.get(USERS_URL, status=503)

    result = sync_users.delay()

    assert result.failed()
    assert isinstance(result.result, requests.HTTPError)
    assert_hooks_called(sync_users, FAILURE)  # HTTPError is not in autoretry_for
    assert metrics_sink.values("celery_task_executions_total", status="FAILURE") == [
        1.0
    ]
    assert names(shop_db) == ["Ada"]
