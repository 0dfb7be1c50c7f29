"""CachedTask: Redis with a TTL, stable sha256 keys, never fails a task for the cache."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import redis

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import CachedTask, cache_key
from pytest_celerybase.bases.cache import UncacheableArguments

SUCCESS_HOOKS = ["before_start", "on_success", "after_return"]


@pytest.fixture
def runs() -> list[Any]:
    return []


@pytest.fixture
def price(eager_app: Any, runs: list[Any]) -> Any:
    # The decorator replaces ``run``: the guide's run()-override cache never runs here.
    @eager_app.task(base=CachedTask, bind=True)
    def price(self: Any, sku: str, qty: int = 1, *, currency: str = "EUR") -> dict[str, Any]:
        runs.append((sku, qty, currency))
        return {"sku": sku, "total": qty * 2.5, "currency": currency}

    return price


def test_miss_then_hit(price: Any, runs: list[Any], fake_redis: Any) -> None:
    first = price.delay("apple", 4)
    second = price.delay("apple", 4)

    assert first.get() == second.get() == {"sku": "apple", "total": 10.0, "currency": "EUR"}
    assert runs == [("apple", 4, "EUR")]
    # A hit is still a successful execution: every hook fires, only the body is skipped.
    assert_hooks_called(price, SUCCESS_HOOKS * 2)
    assert fake_redis.get(cache_key(price.name, ("apple", 4), {})) is not None


def test_other_arguments_miss(price: Any, runs: list[Any], fake_redis: Any) -> None:
    price.delay("apple", 4)
    price.delay("apple", 5)
    price.delay("apple", 4, currency="USD")

    assert len(runs) == 3
    assert len(fake_redis.keys("celerybase:cache:*")) == 3


def test_keyword_order_does_not_matter(price: Any, runs: list[Any], fake_redis: Any) -> None:
    price.apply(args=("apple",), kwargs={"qty": 2, "currency": "EUR"})
    price.apply(args=("apple",), kwargs={"currency": "EUR", "qty": 2})
    assert len(runs) == 1


def test_key_is_a_stable_sha256_of_task_and_canonical_json() -> None:
    key = cache_key("shop.price", ("apple", 4), {"b": 1, "a": [1, 2]})

    # Fixed value: the same call maps to the same key in every process and version.
    assert key == cache_key("shop.price", ["apple", 4], {"a": (1, 2), "b": 1})
    assert key.startswith("celerybase:cache:shop.price:")
    assert len(key.rsplit(":", 1)[1]) == 64  # sha256, not md5
    assert key != cache_key("shop.other", ("apple", 4), {"b": 1, "a": [1, 2]})
    # sha256 of {"args":["apple",4],"kwargs":{"a":[1,2],"b":1},"task":"shop.price"}
    assert key == (
        "celerybase:cache:shop.price:"
        "6435b002f4f1192a97b28059e650d564516761269d0481b315e271b05c2203e9"
    )


@pytest.mark.parametrize(
    "args",
    [({1, 2},), ({1: "a"},), (float("nan"),), (object(),), (b"raw",)],
    ids=["set", "int-keys", "nan", "object", "bytes"],
)
def test_arguments_without_canonical_json_are_rejected(args: tuple[Any, ...]) -> None:
    with pytest.raises(UncacheableArguments):
        cache_key("t", args, {})


def test_default_ttl_is_300_seconds(price: Any, fake_redis: Any) -> None:
    price.delay("apple", 1)
    assert 299 <= fake_redis.ttl(cache_key(price.name, ("apple", 1), {})) <= 300


def test_cache_ttl_is_a_task_option(eager_app: Any, fake_redis: Any) -> None:
    @eager_app.task(base=CachedTask, cache_ttl=60)
    def quick(x: int) -> int:
        return x

    quick.delay(1)
    assert 59 <= fake_redis.ttl(cache_key(quick.name, (1,), {})) <= 60


def test_entry_expires_after_ttl(price: Any, runs: list[Any], fake_redis: Any) -> None:
    price.delay("apple", 1)
    # Shrink the remaining TTL instead of waiting 300 s; fakeredis expires on the clock.
    fake_redis.pexpire(cache_key(price.name, ("apple", 1), {}), 1)
    time.sleep(0.005)
    price.delay("apple", 1)
    assert len(runs) == 2


def test_unserialisable_arguments_run_uncached_with_warning(
    eager_app: Any, runs: list[Any], fake_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @eager_app.task(base=CachedTask)
    def count(items: Any) -> int:
        runs.append(items)
        return len(items)

    with caplog.at_level(logging.WARNING, logger="pytest_celerybase.bases.cache"):
        results = [count.apply(args=({"apple", "pear"},)).get() for _ in range(2)]

    assert results == [2, 2]
    assert len(runs) == 2
    assert fake_redis.keys("*") == []
    assert f"running {count.name} uncached: args[0] is a set" in caplog.text


def test_datetimes_round_trip_like_celery_results(eager_app: Any, fake_redis: Any) -> None:
    @eager_app.task(base=CachedTask)
    def stamp(day: int) -> dict[str, Any]:
        return {"at": datetime(2025, 1, day, tzinfo=timezone.utc), "price": Decimal("9.99")}

    fresh = stamp.delay(2).get()
    cached = stamp.delay(2).get()
    expected = {"at": datetime(2025, 1, 2, tzinfo=timezone.utc), "price": Decimal("9.99")}
    assert cached == fresh == expected


def test_unserialisable_result_is_returned_not_cached(
    eager_app: Any, fake_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # ignore_result: the result backend would reject a set too; the cache must not.
    @eager_app.task(base=CachedTask, ignore_result=True)
    def make_set() -> set[int]:
        return {1, 2}

    with caplog.at_level(logging.WARNING, logger="pytest_celerybase.bases.cache"):
        # ignore_result repeated per call: Celery 5.6's eager apply() stores the result
        # of an ignore_result=True task unless the call says so too (5.5 and 5.7 don't).
        assert make_set.apply(ignore_result=True).get() == {1, 2}
    assert fake_redis.keys("*") == []
    assert f"not caching the result of {make_set.name}" in caplog.text


def test_redis_down_runs_the_task_with_a_warning(
    price: Any,
    runs: list[Any],
    fake_redis: Any,
    mocker: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")
    mocker.patch.object(fake_redis, "get", side_effect=down)
    mocker.patch.object(fake_redis, "set", side_effect=down)

    with caplog.at_level(logging.WARNING, logger="pytest_celerybase.bases.cache"):
        results = [price.delay("apple", 2).get() for _ in range(2)]

    assert results == [{"sku": "apple", "total": 5.0, "currency": "EUR"}] * 2
    assert len(runs) == 2
    assert_hooks_called(price, SUCCESS_HOOKS * 2)
    assert "cache unavailable" in caplog.text and "Connection refused" in caplog.text


def test_unreachable_real_redis_runs_the_task(eager_app: Any, runs: list[Any]) -> None:
    # No fake bound: the base builds a real client; port 1 on localhost refuses at once.
    @eager_app.task(base=CachedTask, cache_redis_url="redis://127.0.0.1:1/0")
    def double(x: int) -> int:
        runs.append(x)
        return 2 * x

    assert double.delay(21).get() == 42
    assert runs == [21]


def test_corrupt_entry_is_ignored(price: Any, runs: list[Any], fake_redis: Any) -> None:
    fake_redis.set(cache_key(price.name, ("apple", 1), {}), b"\xff not json")
    assert price.delay("apple", 1).get()["total"] == 2.5
    assert len(runs) == 1


def test_failure_is_not_cached(eager_app: Any, fake_redis: Any, runs: list[Any]) -> None:
    @eager_app.task(base=CachedTask)
    def fragile(x: int) -> int:
        runs.append(x)
        raise ValueError("boom")

    assert fragile.delay(1).failed()
    assert fragile.delay(1).failed()
    assert runs == [1, 1]
    assert fake_redis.keys("*") == []
    assert_hooks_called(fragile, ["before_start", "on_failure", "after_return"] * 2)


def test_retry_caches_only_the_final_result(
    eager_app: Any, fake_redis: Any, runs: list[Any]
) -> None:
    @eager_app.task(base=CachedTask, bind=True, max_retries=2)
    def flaky(self: Any, x: int) -> int:
        runs.append(x)
        if len(runs) < 2:
            raise self.retry(exc=ConnectionError("upstream"), countdown=0)
        return x * 10

    assert flaky.delay(3).get() == 30
    assert flaky.delay(3).get() == 30  # served from the cache
    assert runs == [3, 3]
    assert_hooks_called(
        flaky,
        ["before_start", "on_retry", "before_start", "on_success", "after_return", *SUCCESS_HOOKS],
    )


def test_class_based_task_is_cached(eager_app: Any, fake_redis: Any, runs: list[Any]) -> None:
    class Square(CachedTask):
        name = "tests.square"

        def run(self, x: int) -> int:
            runs.append(x)
            return x * x

    square = eager_app.register_task(Square())
    assert [square.delay(4).get() for _ in range(3)] == [16, 16, 16]
    assert runs == [4]


def test_uses_the_bound_client_only_while_bound(price: Any, fake_redis: Any) -> None:
    assert price.cache is fake_redis
