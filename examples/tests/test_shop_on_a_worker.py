"""The same tasks on a real worker: consume → trace → ack, in a thread of the test."""

from __future__ import annotations

import responses
from fakeredis import FakeRedis
from pytest_celerybase import LiveWorker, assert_hooks_called
from sqlalchemy import Engine

from shop.tasks import price_quote, sync_users

USERS_URL = "https://accounts.example.com/api/users?page=1"
SUCCESS = ["before_start", "on_success", "after_return"]


def test_sync_users_on_a_live_worker(
    live_worker: LiveWorker, shop_db: Engine, http_stub: responses.RequestsMock
) -> None:
    http_stub.get(
        USERS_URL, json={"users": [{"id": 9, "email": "w@example.com", "name": "W"}]}
    )

    result = sync_users.delay()

    assert result.get(timeout=10) == 1
    # No sleep: the assertion waits until the worker ran on_success and after_return.
    assert_hooks_called(result, SUCCESS)


def test_price_quote_is_cached_across_worker_executions(
    live_worker: LiveWorker, shop_db: Engine, fake_redis: FakeRedis
) -> None:
    first = price_quote.delay("mug", 2).get(timeout=10)
    second = price_quote.delay("mug", 2).get(timeout=10)

    assert first == second and first["total_cents"] == 2400
    assert_hooks_called(price_quote, SUCCESS * 2)
    assert len(fake_redis.keys("celerybase:cache:*")) == 1
