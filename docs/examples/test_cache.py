import logging

import redis
from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import CachedTask, cache_key

SUCCESS = ["before_start", "on_success", "after_return"]


def test_the_second_call_comes_from_the_cache(eager_app, fake_redis):
    runs = []

    @eager_app.task(base=CachedTask, cache_ttl=600)
    def price_quote(sku, qty):
        runs.append(sku)
        return {"sku": sku, "total_cents": 1200 * qty}

    first = price_quote.delay("mug", 2).get()
    second = price_quote.delay("mug", 2).get()

    assert first == second == {"sku": "mug", "total_cents": 2400}
    assert runs == ["mug"]
    assert_hooks_called(price_quote, SUCCESS * 2)  # both executions ran their hooks
    key = cache_key(price_quote.name, ("mug", 2), {})
    assert 599 <= fake_redis.ttl(key) <= 600


def test_redis_down_runs_the_task_uncached(eager_app, fake_redis, mocker, caplog):
    mocker.patch.object(fake_redis, "get", side_effect=redis.ConnectionError("refused"))
    mocker.patch.object(fake_redis, "set", side_effect=redis.ConnectionError("refused"))

    @eager_app.task(base=CachedTask)
    def price_quote(sku, qty):
        return 1200 * qty

    with caplog.at_level(logging.WARNING):
        assert price_quote.delay("mug", 2).get() == 2400

    assert "cache unavailable" in caplog.text
