"""MetricsTask: per-task-id timing, status labels, pluggable sinks."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timezone
from typing import Any

import pytest

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import MemorySink, Metric, MetricsTask, PrometheusSink
from pytest_celerybase.bases.sinks import DURATION, EXECUTIONS
from pytest_celerybase.resources import bindings


@pytest.fixture
def work(eager_app: Any) -> Any:
    @eager_app.task(base=MetricsTask, bind=True, max_retries=3)
    def work(self: Any, mode: str = "ok") -> str:
        if mode == "fail":
            raise ValueError("bad input")
        if mode == "retry" and self.request.retries < 2:
            raise self.retry(exc=TimeoutError("slow upstream"), countdown=0)
        return mode

    return work


def test_success_emits_count_and_duration(work: Any, metrics_sink: MemorySink) -> None:
    result = work.delay()

    assert result.get() == "ok"
    assert_hooks_called(work, ["before_start", "on_success", "after_return"])
    labels = {"task": work.name, "status": "SUCCESS"}
    assert metrics_sink.values(EXECUTIONS, **labels) == [1.0]
    [duration] = metrics_sink.filter(DURATION, **labels)
    assert duration.kind == "histogram"
    assert duration.labels == labels
    assert duration.task_id == result.id
    assert 0 <= duration.value < 1


def test_failure_is_labelled_failure(work: Any, metrics_sink: MemorySink) -> None:
    assert work.delay("fail").failed()

    assert_hooks_called(work, ["before_start", "on_failure", "after_return"])
    assert metrics_sink.total(EXECUTIONS, task=work.name, status="FAILURE") == 1
    assert metrics_sink.values(EXECUTIONS, status="SUCCESS") == []


def test_each_retried_attempt_is_one_retry_execution(work: Any, metrics_sink: MemorySink) -> None:
    result = work.delay("retry")

    assert result.get() == "retry"
    assert_hooks_called(
        work,
        ["before_start", "on_retry"] * 2 + ["before_start", "on_success", "after_return"],
    )
    assert [r.labels["status"] for r in metrics_sink.filter(EXECUTIONS)] == [
        "RETRY",
        "RETRY",
        "SUCCESS",
    ]
    # Eager retries reuse the task id: every attempt is timed on its own.
    assert len(metrics_sink.values(DURATION)) == 3
    assert {r.task_id for r in metrics_sink.records} == {result.id}


def test_twenty_concurrent_executions_get_their_own_duration(
    eager_app: Any, metrics_sink: MemorySink
) -> None:
    # The executions start one after another, then all run at once and end at different
    # times.  A start time kept on the shared task instance (the guide's
    # self.start_time) would time every execution from the last start.
    count = 20
    arrived = threading.Semaphore(0)
    go = threading.Event()
    body: dict[int, tuple[float, float]] = {}

    @eager_app.task(base=MetricsTask)
    def hold(ms: int) -> int:
        entered = time.perf_counter()
        arrived.release()
        go.wait(10)
        time.sleep(ms / 1000)
        body[ms] = (entered, time.perf_counter())
        return ms

    windows: dict[str, tuple[int, float]] = {}
    lock = threading.Lock()

    def run(ms: int) -> None:
        began = time.perf_counter()
        result = hold.apply(args=(ms,))
        with lock:
            windows[result.id] = (ms, time.perf_counter() - began)

    # Celery builds @app.task tasks lazily, and not thread-safely: finish that first.
    eager_app.finalize()
    threads = [threading.Thread(target=run, args=(i + 1,)) for i in range(count)]
    for thread in threads:
        thread.start()
        assert arrived.acquire(timeout=10)
        time.sleep(0.001)  # space the starts out
    go.set()
    for thread in threads:
        thread.join(10)

    durations = {r.task_id: r.value for r in metrics_sink.filter(DURATION, status="SUCCESS")}
    assert len(durations) == count == len(windows)
    assert len(set(durations.values())) == count
    for task_id, (ms, window) in windows.items():
        entered, left = body[ms]
        # At least its own body's run time, at most the time its caller waited for it.
        assert left - entered <= durations[task_id] <= window


def test_timestamps_are_timezone_aware_utc(work: Any, metrics_sink: MemorySink) -> None:
    work.delay()
    assert metrics_sink.records
    assert all(r.timestamp.tzinfo is timezone.utc for r in metrics_sink.records)


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_no_deprecated_utcnow(work: Any, metrics_sink: MemorySink) -> None:
    assert work.delay("fail").failed()
    assert work.delay().get() == "ok"


def test_custom_metric_gets_task_label_and_id(eager_app: Any, metrics_sink: MemorySink) -> None:
    @eager_app.task(base=MetricsTask, bind=True)
    def ship(self: Any, items: int) -> int:
        self.emit_metric("shop_items_shipped_total", items, warehouse="north")
        return items

    result = ship.delay(3)
    record = metrics_sink.last("shop_items_shipped_total", warehouse="north")
    assert record.value == 3
    assert record.labels == {"task": ship.name, "warehouse": "north"}
    assert record.task_id == result.id


def test_default_sink_logs(work: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pytest_celerybase.metrics"):
        work.delay()
    assert f"metric celery_task_executions_total=1 status=SUCCESS task={work.name}" in caplog.text
    assert "metric celery_task_duration_seconds=" in caplog.text


def test_task_attribute_sink_and_binding_precedence(eager_app: Any) -> None:
    own = MemorySink()

    @eager_app.task(base=MetricsTask, metrics_sink=own)
    def job() -> None:
        return None

    job.delay()
    assert own.values(EXECUTIONS, status="SUCCESS") == [1.0]

    bound = MemorySink()
    with bindings.bind(bindings.METRICS_SINK, bound):
        job.delay()
    assert len(own.values(EXECUTIONS)) == 1  # the bound (test) sink wins
    assert bound.values(EXECUTIONS) == [1.0]


@pytest.mark.celerybase(celerybase_metrics_sink=MemorySink())
def test_app_config_sink(eager_app: Any) -> None:
    @eager_app.task(base=MetricsTask)
    def job() -> None:
        return None

    job.delay()
    assert eager_app.conf.celerybase_metrics_sink.values(EXECUTIONS) == [1.0]


def test_broken_sink_never_fails_the_task(
    work: Any, mocker: Any, caplog: pytest.LogCaptureFixture, metrics_sink: MemorySink
) -> None:
    mocker.patch.object(metrics_sink, "emit", side_effect=OSError("statsd unreachable"))

    with caplog.at_level(logging.WARNING, logger="pytest_celerybase.bases.metrics"):
        assert work.delay().get() == "ok"

    assert_hooks_called(work, ["before_start", "on_success", "after_return"])
    assert "metrics sink failed to emit celery_task_executions_total" in caplog.text


def test_memory_sink_helpers() -> None:
    sink = MemorySink()
    sink.emit(Metric("a_total", 1, {"task": "t", "status": "SUCCESS"}))
    sink.emit(Metric("a_total", 2, {"task": "t", "status": "FAILURE"}))
    sink.emit(Metric("b", 5, {"task": "u"}, kind="gauge"))

    assert sink.values("a_total") == [1, 2]
    assert sink.total("a_total", task="t") == 3
    assert [r.value for r in sink.filter(task="u")] == [5]
    assert sink.names() == ["a_total", "b"]
    assert len(sink) == 3 and [r.name for r in sink] == ["a_total", "a_total", "b"]
    with pytest.raises(LookupError, match=r"no metric 'a_total' with labels \{'task': 'x'\}"):
        sink.last("a_total", task="x")
    sink.clear()
    assert sink.records == []


def test_prometheus_sink(eager_app: Any) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    sink = PrometheusSink(registry)

    @eager_app.task(base=MetricsTask, metrics_sink=sink)
    def job(fail: bool) -> None:
        if fail:
            raise RuntimeError("nope")

    job.delay(False)
    job.delay(False)
    job.delay(True)

    def sample(name: str, status: str) -> float | None:
        value: float | None = registry.get_sample_value(name, {"task": job.name, "status": status})
        return value

    assert sample("celery_task_executions_total", "SUCCESS") == 2
    assert sample("celery_task_executions_total", "FAILURE") == 1
    assert sample("celery_task_duration_seconds_count", "SUCCESS") == 2

    with pytest.raises(ValueError, match="fixed label set"):
        sink.emit(Metric(EXECUTIONS, 1, {"task": "x"}))
