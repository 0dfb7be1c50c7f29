"""``MetricsTask``: duration and outcome of every execution, sent to a pluggable sink."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, states

from pytest_celerybase.bases._timing import ExecutionClock
from pytest_celerybase.bases.sinks import (
    DURATION,
    EXECUTIONS,
    LoggingSink,
    Metric,
    MetricKind,
    MetricsSink,
)
from pytest_celerybase.resources import bindings

__all__ = ["MetricsTask"]

logger = logging.getLogger(__name__)

_CLOCK = ExecutionClock()
_DEFAULT_SINK = LoggingSink()


class MetricsTask(Task):  # type: ignore[misc]
    """Emit ``celery_task_executions_total`` (counter, 1) and
    ``celery_task_duration_seconds`` (histogram) for every execution outcome.

    Both are labelled ``task`` (the task name) and ``status`` (the Celery state:
    ``SUCCESS``, ``FAILURE`` or ``RETRY``; each retried attempt is one execution).
    Durations are timed per task id from ``before_start`` with a monotonic clock, so
    concurrent executions never share a start time; the records carry timezone-aware
    UTC timestamps.  A failing sink is logged and never fails the task.

    The sink is, first found wins: the one bound by the ``metrics_sink`` fixture, the
    ``metrics_sink`` task attribute
    (``@app.task(base=MetricsTask, metrics_sink=PrometheusSink())``), the
    ``celerybase_metrics_sink`` app setting, then a :class:`LoggingSink`.
    """

    metrics_sink: MetricsSink | None = None

    def get_metrics_sink(self) -> MetricsSink:
        """The sink metrics go to right now (see the class docstring for the order)."""
        bound = bindings.current(bindings.METRICS_SINK)
        if bound is not None:
            return bound
        if self.metrics_sink is not None:
            return self.metrics_sink
        configured: MetricsSink | None = self.app.conf.get("celerybase_metrics_sink")
        return configured if configured is not None else _DEFAULT_SINK

    def emit_metric(
        self,
        name: str,
        value: float = 1.0,
        *,
        kind: MetricKind = "counter",
        task_id: str | None = None,
        **labels: str,
    ) -> None:
        """Send a custom metric; the ``task`` label is added.  Never raises.

        ``task_id`` defaults to the id of the execution running on this thread.
        """
        if task_id is None:
            task_id = self.request.id
        metric = Metric(name, float(value), {"task": self.name, **labels}, kind, task_id)
        try:
            self.get_metrics_sink().emit(metric)
        except Exception:
            # Metrics are observability, not business logic: losing one must not
            # turn a successful task into a failed one.
            logger.warning("metrics sink failed to emit %s", metric.name, exc_info=True)

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Start timing this execution."""
        _CLOCK.start(task_id)
        super().before_start(task_id, args, kwargs)

    def on_success(
        self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Emit the SUCCESS outcome."""
        self._emit_outcome(task_id, states.SUCCESS)
        super().on_success(retval, task_id, args, kwargs)

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Emit the FAILURE outcome."""
        self._emit_outcome(task_id, states.FAILURE)
        super().on_failure(exc, task_id, args, kwargs, einfo)

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Emit the RETRY outcome of this attempt."""
        self._emit_outcome(task_id, states.RETRY)
        super().on_retry(exc, task_id, args, kwargs, einfo)

    def _emit_outcome(self, task_id: str, status: str) -> None:
        started = _CLOCK.stop(task_id)
        self.emit_metric(EXECUTIONS, 1.0, task_id=task_id, status=status)
        # No start means the hook was called outside this process's execution (e.g.
        # the worker's main process reporting a hard time limit): count, don't time.
        if started is not None:
            elapsed = started.elapsed()
            self.emit_metric(DURATION, elapsed, kind="histogram", task_id=task_id, status=status)
