"""One short use of each fixture, shown under it on the fixtures reference page."""

import pytest
import requests
from pytest_celerybase import assert_hooks_called, assert_task_sent
from pytest_celerybase.bases import CachedTask, MetricsTask
from sqlalchemy import text


def test_eager_app(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y

    assert add.delay(2, 3).get() == 5


class TestCelerybaseConfig:
    @pytest.fixture
    def celerybase_config(self):
        return {"task_default_queue": "billing"}

    def test_queue(self, eager_app):
        assert eager_app.conf.task_default_queue == "billing"


def test_hook_recorder(eager_app, hook_recorder):
    @eager_app.task
    def ping():
        return "pong"

    ping.delay()
    hooks = [call.hook for call in hook_recorder.calls]
    assert hooks == ["before_start", "on_success", "after_return"]
    hook_recorder.clear()
    assert hook_recorder.calls == []


def test_live_worker(live_worker):
    @live_worker.app.task
    def add(x, y):
        return x + y

    result = add.delay(2, 3)
    assert result.get(timeout=10) == 5
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])


def test_sent_tasks(eager_app, sent_tasks):
    @eager_app.task
    def welcome(user_id):
        return f"mailed {user_id}"

    welcome.apply_async((7,), countdown=60)
    assert_task_sent(welcome, (7,), countdown=60)
    [result] = sent_tasks.run()
    assert result.get() == "mailed 7"


def test_sqlite_engine(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar_one() == 1


def test_sql_queries(sqlite_engine, sql_queries):
    with sql_queries.assert_num_queries(1), sqlite_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert sql_queries.statements == ["SELECT 1"]


def test_http_stub(http_stub):
    http_stub.get("https://api.example.com/users", json={"users": []})
    assert requests.get("https://api.example.com/users").json() == {"users": []}


def test_fake_redis(eager_app, fake_redis):
    @eager_app.task(base=CachedTask, cache_ttl=60)
    def square(x):
        return x * x

    assert square.delay(4).get() == 16
    assert len(fake_redis.keys("*")) == 1  # the cached result


def test_metrics_sink(eager_app, metrics_sink):
    @eager_app.task(base=MetricsTask)
    def work():
        return "done"

    work.delay()
    assert metrics_sink.total("celery_task_executions_total", status="SUCCESS") == 1
