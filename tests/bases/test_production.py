"""ProductionTask: cooperative composition; each hook body once; Celery retry options."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import (
    APIClientTask,
    CachedTask,
    DatabaseTask,
    LoggingTask,
    MemorySink,
    MetricsTask,
    ProductionTask,
    ResourcePoolTask,
)
from pytest_celerybase.bases.sinks import DURATION, EXECUTIONS

SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]
RETRY = ["before_start", "on_retry"]
HOOKS = ("before_start", "on_success", "on_failure", "on_retry", "after_return")
BASES = (LoggingTask, MetricsTask, DatabaseTask)


@pytest.fixture
def orders(sqlite_engine: Engine) -> Engine:
    with sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, ref TEXT UNIQUE)"))
    return sqlite_engine


@pytest.fixture
def record_order(eager_app: Any, orders: Engine) -> Any:
    @eager_app.task(
        base=ProductionTask,
        bind=True,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        max_retries=2,
    )
    def record_order(self: Any, ref: str) -> int:
        if not ref:
            raise ValueError("an order needs a reference")
        with self.session_scope() as session:
            session.execute(text("INSERT INTO orders (ref) VALUES (:ref)"), {"ref": ref})
            total: int = session.execute(text("SELECT count(*) FROM orders")).scalar_one()
        return total

    return record_order


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """LoggingTask's messages (durations cut), read from its own logger."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage().split(" in ")[0].rstrip(")") + ")")

    handler, logger = Collect(), LoggingTask.task_logger
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def spies(mocker: Any) -> dict[tuple[str, str], Any]:
    """A spy on every hook body each base defines."""
    return {
        (base.__name__, hook): mocker.spy(base, hook)
        for base in BASES
        for hook in HOOKS
        if hook in vars(base)
    }


def _calls(spies: dict[tuple[str, str], Any]) -> dict[tuple[str, str], int]:
    return {key: spy.call_count for key, spy in spies.items() if spy.call_count}


def _fail_statements(mocker: Any, engine: Engine, times: int) -> None:
    real = engine.dialect.do_execute
    left = [times]

    def do_execute(*args: Any, **kwargs: Any) -> Any:
        if left[0]:
            left[0] -= 1
            raise sqlite3.OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    mocker.patch.object(engine.dialect, "do_execute", side_effect=do_execute)


def test_composition_order() -> None:
    assert ProductionTask.__mro__[1:4] == BASES


def test_success(
    record_order: Any,
    metrics_sink: MemorySink,
    spies: dict[tuple[str, str], Any],
    log_lines: list[str],
) -> None:
    assert record_order.delay("A-1").get() == 1

    assert_hooks_called(record_order, SUCCESS)
    assert metrics_sink.values(EXECUTIONS, task=record_order.name, status="SUCCESS") == [1.0]
    assert len(metrics_sink.values(DURATION, status="SUCCESS")) == 1
    assert [line.split("] ", 1)[1] for line in log_lines] == [
        "started (status=STARTED)",
        "succeeded (status=SUCCESS)",
        "returned (status=SUCCESS)",
    ]
    # Each base's hook body ran exactly once: no double logging or double metrics.
    assert _calls(spies) == {
        ("LoggingTask", "before_start"): 1,
        ("MetricsTask", "before_start"): 1,
        ("LoggingTask", "on_success"): 1,
        ("MetricsTask", "on_success"): 1,
        ("LoggingTask", "after_return"): 1,
    }


def test_failure(
    record_order: Any, metrics_sink: MemorySink, spies: dict[tuple[str, str], Any]
) -> None:
    result = record_order.delay("")

    assert result.failed() and isinstance(result.result, ValueError)
    assert_hooks_called(record_order, FAILURE)
    assert metrics_sink.values(EXECUTIONS, status="FAILURE") == [1.0]
    assert _calls(spies) == {
        ("LoggingTask", "before_start"): 1,
        ("MetricsTask", "before_start"): 1,
        ("LoggingTask", "on_failure"): 1,
        ("MetricsTask", "on_failure"): 1,
        ("DatabaseTask", "on_failure"): 1,
        ("LoggingTask", "after_return"): 1,
    }


def test_retry_on_dropped_connection_then_success(
    record_order: Any,
    orders: Engine,
    metrics_sink: MemorySink,
    spies: dict[tuple[str, str], Any],
    mocker: Any,
) -> None:
    _fail_statements(mocker, orders, times=2)

    assert record_order.delay("A-2").get() == 1

    assert_hooks_called(record_order, RETRY * 2 + SUCCESS)
    statuses = [r.labels["status"] for r in metrics_sink.filter(EXECUTIONS)]
    assert statuses == ["RETRY", "RETRY", "SUCCESS"]
    assert _calls(spies) == {
        ("LoggingTask", "before_start"): 3,
        ("MetricsTask", "before_start"): 3,
        ("LoggingTask", "on_retry"): 2,
        ("MetricsTask", "on_retry"): 2,
        ("DatabaseTask", "on_retry"): 2,
        ("LoggingTask", "on_success"): 1,
        ("MetricsTask", "on_success"): 1,
        ("LoggingTask", "after_return"): 1,
    }


def test_max_retries_exceeded_fails(
    record_order: Any, orders: Engine, metrics_sink: MemorySink, mocker: Any
) -> None:
    _fail_statements(mocker, orders, times=99)

    result = record_order.delay("A-3")

    assert result.failed() and isinstance(result.result, OperationalError)
    assert_hooks_called(record_order, RETRY * 2 + FAILURE)
    statuses = [r.labels["status"] for r in metrics_sink.filter(EXECUTIONS)]
    assert statuses == ["RETRY", "RETRY", "FAILURE"]


def test_business_errors_are_not_autoretried(record_order: Any) -> None:
    record_order.delay("dup").get()
    result = record_order.delay("dup")  # UNIQUE violation: IntegrityError, not retried

    assert result.failed()
    assert_hooks_called(record_order, SUCCESS + FAILURE)


class ShopTask(ProductionTask, CachedTask, APIClientTask, ResourcePoolTask):
    """Every base at once, as the manual shows."""

    pool_size = 2

    def create_resource(self) -> dict[str, int]:
        return {"conn": 1}


def test_mixing_in_every_base(
    eager_app: Any,
    orders: Engine,
    fake_redis: Any,
    http_stub: Any,
    metrics_sink: MemorySink,
) -> None:
    runs: list[str] = []

    @eager_app.task(base=ShopTask, bind=True)
    def quote(self: Any, ref: str) -> dict[str, Any]:
        runs.append(ref)
        with self.acquire_resource() as resource:
            rate = self.make_api_call("https://fx.example.com/eur")["rate"]
        with self.session_scope() as session:
            session.execute(text("INSERT INTO orders (ref) VALUES (:ref)"), {"ref": ref})
        return {"ref": ref, "rate": rate, "conn": resource["conn"]}

    http_stub.get("https://fx.example.com/eur", json={"rate": 1.1})

    first = quote.delay("Q-1").get()
    second = quote.delay("Q-1").get()  # cached: no second insert, no second HTTP call

    assert first == second == {"ref": "Q-1", "rate": 1.1, "conn": 1}
    assert runs == ["Q-1"]
    assert_hooks_called(quote, SUCCESS * 2)
    assert metrics_sink.values(EXECUTIONS, status="SUCCESS") == [1.0, 1.0]
