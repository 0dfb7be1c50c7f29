"""Pricing: results cached in Redis (fake), computed from the database (in memory)."""

from __future__ import annotations

import logging

import pytest
import redis
from celery import Celery
from fakeredis import FakeRedis
from pytest_celerybase import SQLQueries, assert_hooks_called
from pytest_celerybase.bases import cache_key
from pytest_mock import MockerFixture
from sqlalchemy import Engine, text

from shop.tasks import price_quote

SUCCESS = ["before_start", "on_success", "after_return"]


@pytest.mark.parametrize(
    ("qty", "percent", "total"), [(1, 0, 1200), (10, 5, 11400), (100, 15, 102000)]
)
def test_quantity_discounts(
    eager_app: Celery,
    shop_db: Engine,
    fake_redis: FakeRedis,
    qty: int,
    percent: int,
    total: int,
) -> None:
    quote = price_quote.delay("mug", qty).get()
    assert (quote["discount_percent"], quote["total_cents"]) == (percent, total)


def test_second_quote_comes_from_the_cache(
    eager_app: Celery, shop_db: Engine, fake_redis: FakeRedis, sql_queries: SQLQueries
) -> None:
    with sql_queries.assert_num_queries(1):
        first = price_quote.delay("tee", 3).get()
    with sql_queries.assert_num_queries(0):
        second = price_quote.delay("tee", 3).get()

    assert (
        first
        == second
        == {
            "sku": "tee",
            "qty": 3,
            "unit_cents": 2500,
            "discount_percent": 0,
            "total_cents": 7500,
        }
    )
    assert_hooks_called(price_quote, SUCCESS * 2)
    assert 599 <= fake_redis.ttl(cache_key(price_quote.name, ("tee", 3), {})) <= 600


def test_a_price_change_shows_once_the_entry_expires(
    eager_app: Celery, shop_db: Engine, fake_redis: FakeRedis
) -> None:
    assert price_quote.delay("mug", 1).get()["total_cents"] == 1200
    with shop_db.begin() as conn:
        conn.execute(text("UPDATE products SET unit_cents = 1500 WHERE sku = 'mug'"))

    assert price_quote.delay("mug", 1).get()["total_cents"] == 1200  # still cached
    fake_redis.delete(
        cache_key(price_quote.name, ("mug", 1), {})
    )  # as if the TTL ran out
    assert price_quote.delay("mug", 1).get()["total_cents"] == 1500


def test_unknown_sku_fails_and_is_not_cached(
    eager_app: Celery, shop_db: Engine, fake_redis: FakeRedis
) -> None:
    result = price_quote.delay("hat", 1)

    assert result.failed() and isinstance(result.result, LookupError)
    assert_hooks_called(price_quote, ["before_start", "on_failure", "after_return"])
    assert fake_redis.keys("*") == []


def test_redis_down_still_prices(
    eager_app: Celery,
    shop_db: Engine,
    fake_redis: FakeRedis,
    sql_queries: SQLQueries,
    mocker: MockerFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mocker.patch.object(fake_redis, "get", side_effect=redis.ConnectionError("refused"))
    mocker.patch.object(fake_redis, "set", side_effect=redis.ConnectionError("refused"))

    with (
        caplog.at_level(logging.WARNING, logger="pytest_celerybase.bases.cache"),
        sql_queries.assert_num_queries(2),
    ):
        quotes = [price_quote.delay("mug", 2).get() for _ in range(2)]

    assert quotes[0] == quotes[1] and quotes[0]["total_cents"] == 2400
    assert_hooks_called(price_quote, SUCCESS * 2)
    assert "cache unavailable" in caplog.text
