"""Metric records and the sinks :class:`~pytest_celerybase.bases.MetricsTask` sends them to.

* :class:`LoggingSink` - the default: one log line per metric, no dependency.
* :class:`MemorySink` - keeps records in memory with query helpers (the
  ``metrics_sink`` fixture is one).
* :class:`PrometheusSink` - exports to ``prometheus_client`` (optional extra
  ``pytest-celerybase[prometheus]``; imported only when the sink is created).

Any object with an ``emit(metric)`` method is a sink (:class:`MetricsSink`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "DURATION",
    "EXECUTIONS",
    "LoggingSink",
    "MemorySink",
    "Metric",
    "MetricKind",
    "MetricsSink",
    "PrometheusSink",
]

MetricKind = Literal["counter", "histogram", "gauge"]

DURATION = "celery_task_duration_seconds"
"""Histogram: wall time of one execution (``before_start`` to its outcome hook)."""
EXECUTIONS = "celery_task_executions_total"
"""Counter: one per execution outcome (SUCCESS, FAILURE or RETRY)."""

_DESCRIPTIONS = {
    DURATION: "Duration of Celery task executions in seconds, by task and outcome.",
    EXECUTIONS: "Celery task executions, by task and outcome.",
}


@dataclass(frozen=True)
class Metric:
    """One measurement: from the bases, ``labels`` always holds ``task`` (outcomes also
    ``status``); a Prometheus sample recorded by the ``metrics_sink`` fixture has its own.

    ``task_id`` names the execution (not a label: one series per task id would
    explode a Prometheus server); ``timestamp`` is timezone-aware UTC.
    """

    name: str
    value: float
    labels: dict[str, str]
    kind: MetricKind = "counter"
    task_id: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@runtime_checkable
class MetricsSink(Protocol):
    """Where metrics go.  ``emit`` may be called from many threads at once."""

    def emit(self, metric: Metric) -> None:
        """Record or forward ``metric``."""


class LoggingSink:
    """Log each metric as one line (the default sink: works everywhere, no setup)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("pytest_celerybase.metrics")
        self.level = level

    def emit(self, metric: Metric) -> None:
        """Log ``metric`` with its labels; structured fields go in ``extra``."""
        labels = " ".join(f"{key}={value}" for key, value in sorted(metric.labels.items()))
        self.logger.log(
            self.level,
            "metric %s=%g %s task_id=%s",
            metric.name,
            metric.value,
            labels,
            metric.task_id,
            extra={"metric": metric},
        )


class MemorySink:
    """Keep every metric in memory, thread-safe, with small query helpers.

    >>> sink.values("celery_task_duration_seconds", task="shop.sync", status="SUCCESS")
    [0.0123]
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Metric] = []

    def emit(self, metric: Metric) -> None:
        """Store ``metric``."""
        with self._lock:
            self._records.append(metric)

    @property
    def records(self) -> list[Metric]:
        """A copy of every record, oldest first."""
        with self._lock:
            return list(self._records)

    def filter(self, name: str | None = None, /, **labels: str) -> list[Metric]:
        """Records named ``name`` (any name if ``None``) whose labels include ``labels``."""
        return [
            record
            for record in self.records
            if (name is None or record.name == name)
            and all(record.labels.get(key) == value for key, value in labels.items())
        ]

    def values(self, name: str, /, **labels: str) -> list[float]:
        """The values of :meth:`filter` (``name``, ``labels``), oldest first."""
        return [record.value for record in self.filter(name, **labels)]

    def total(self, name: str, /, **labels: str) -> float:
        """The sum of :meth:`values` (e.g. a counter's total for one task and status)."""
        return sum(self.values(name, **labels))

    def last(self, name: str, /, **labels: str) -> Metric:
        """The newest matching record; ``LookupError`` listing what exists if none."""
        matches = self.filter(name, **labels)
        if not matches:
            seen = sorted({(r.name, tuple(sorted(r.labels.items()))) for r in self.records})
            shown = "\n".join(f"  - {n} {dict(lbl)}" for n, lbl in seen) or "  (none)"
            raise LookupError(f"no metric {name!r} with labels {labels!r}; recorded:\n{shown}")
        return matches[-1]

    def names(self) -> list[str]:
        """The distinct metric names recorded, in first-seen order."""
        return list(dict.fromkeys(record.name for record in self.records))

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.records)

    def __repr__(self) -> str:
        return f"<MemorySink {len(self)} records: {self.names()}>"


class PrometheusSink:
    """Export metrics to ``prometheus_client`` (install ``pytest-celerybase[prometheus]``).

    Counters are incremented, histograms observed, gauges set.  A metric's label names
    are fixed by its first emission, as Prometheus requires.  ``registry`` defaults to
    ``prometheus_client.REGISTRY``; pass a ``CollectorRegistry`` to isolate (tests).
    """

    def __init__(
        self,
        registry: Any | None = None,
        *,
        buckets: Sequence[float] | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        try:
            import prometheus_client
        except ImportError as exc:  # the extra is optional: say how to get it
            raise ImportError(
                "PrometheusSink needs prometheus-client: "
                "pip install 'pytest-celerybase[prometheus]'"
            ) from exc
        self._prometheus = prometheus_client
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self._buckets = tuple(buckets) if buckets is not None else None
        self._descriptions = {**_DESCRIPTIONS, **(descriptions or {})}
        self._lock = threading.Lock()
        self._collectors: dict[str, tuple[Any, tuple[str, ...]]] = {}

    def emit(self, metric: Metric) -> None:
        """Update the Prometheus collector for ``metric`` (created on first use)."""
        collector = self._collector(metric).labels(**metric.labels)
        if metric.kind == "counter":
            collector.inc(metric.value)
        elif metric.kind == "histogram":
            collector.observe(metric.value)
        else:
            collector.set(metric.value)

    def _collector(self, metric: Metric) -> Any:
        labelnames = tuple(sorted(metric.labels))
        with self._lock:
            known = self._collectors.get(metric.name)
            if known is None:
                known = (self._create(metric, labelnames), labelnames)
                self._collectors[metric.name] = known
        collector, expected = known
        if expected != labelnames:
            raise ValueError(
                f"metric {metric.name!r} was first emitted with labels {list(expected)}, "
                f"now with {list(labelnames)}; Prometheus needs a fixed label set"
            )
        return collector

    def _create(self, metric: Metric, labelnames: tuple[str, ...]) -> Any:
        doc = self._descriptions.get(metric.name, metric.name)
        options: dict[str, Any] = {"labelnames": labelnames, "registry": self.registry}
        if metric.kind == "counter":
            return self._prometheus.Counter(metric.name, doc, **options)
        if metric.kind == "histogram":
            if self._buckets is not None:
                options["buckets"] = self._buckets
            return self._prometheus.Histogram(metric.name, doc, **options)
        return self._prometheus.Gauge(metric.name, doc, **options)
