"""The ``metrics_sink`` fixture's value: what the bases emit and what Prometheus counted.

:class:`CapturedMetrics` is a :class:`~pytest_celerybase.bases.MemorySink` (the sink
:class:`~pytest_celerybase.bases.MetricsTask` emits to while the fixture binds it) whose
records also hold what ``prometheus_client`` counted during the test, as deltas
(:mod:`.prometheus`): users' own bases that count with Prometheus are read the same way,
``metrics_sink.total("runs_total", task="shop.sync", status="SUCCESS")``.

Reading waits, like a hook assertion, until a live worker has finished the tasks it is
running (their ``after_return`` counts too).  In a prefork worker's children, what the
bases emit and what Prometheus counts is sent to the test process after each task
(:mod:`pytest_celerybase.worker.channel`), so it is included as well.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pytest_celerybase.bases.sinks import MemorySink, Metric
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.resources.prometheus import Key, PrometheusCapture
from pytest_celerybase.worker import channel

__all__ = ["CapturedMetrics"]

_ACTIVE: list[CapturedMetrics] = []  # the capturing sinks of the running test, innermost last
_CHILD_UID = "pytest_celerybase.resources.metrics.child"


class CapturedMetrics(MemorySink):
    """A :class:`MemorySink` whose :attr:`records` include Prometheus deltas.

    ``registries`` are the ``prometheus_client`` registries read (none: Prometheus is not
    read).  :meth:`start` begins counting, :meth:`stop` ends; :meth:`clear` forgets the
    records and counts Prometheus from then on.
    """

    def __init__(self, registries: Sequence[Any] = ()) -> None:
        super().__init__()
        self.prometheus = PrometheusCapture(registries) if registries else None

    def start(self) -> None:
        """Take the Prometheus baseline; children forked from now on forward to this."""
        if self.prometheus is not None:
            self.prometheus.start()
        _ACTIVE.append(self)

    def stop(self) -> None:
        """Stop receiving what children send (idempotent)."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def emit(self, metric: Metric) -> None:
        """Store ``metric`` (in a prefork child: send it to the test process)."""
        if not channel.send("metric", metric):
            super().emit(metric)

    @property
    def records(self) -> list[Metric]:
        """Every record, oldest first: those emitted, then Prometheus' deltas."""
        if STACK:
            # A live worker stores a result before after_return runs: let it finish.
            STACK[-1].wait_idle()
        records = super().records
        if self.prometheus is not None:
            records += [
                Metric(name, value, labels, kind)  # type: ignore[arg-type]
                for name, labels, value, kind in self.prometheus.changes()
            ]
        return records

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        """Forget every record; Prometheus is counted from now on."""
        super().clear()
        if self.prometheus is not None:
            self.prometheus.start()


# -- prefork children ----------------------------------------------------------------------
def _start_in_child() -> None:
    """In a new worker child: forward what Prometheus counts after each task."""
    if not _ACTIVE or _ACTIVE[-1].prometheus is None:
        return
    from celery import signals

    capture = _ACTIVE[-1].prometheus
    lock = threading.Lock()
    state = {"seen": capture.read()}  # the values the child was forked with

    def forward(**_: Any) -> None:
        with lock:
            grown, state["seen"] = capture.delta_since(state["seen"])
        if grown:
            channel.send("prometheus", grown)

    # After after_return and before the pool hands the result back: the test process
    # reads it in before it learns the task is over.
    signals.task_postrun.connect(forward, weak=False, dispatch_uid=_CHILD_UID)


def _ingest_metric(_: Any, metric: Metric) -> None:
    if _ACTIVE:
        MemorySink.emit(_ACTIVE[-1], metric)


def _ingest_prometheus(_: Any, grown: list[tuple[Key, float, str]]) -> None:
    if _ACTIVE and _ACTIVE[-1].prometheus is not None:
        _ACTIVE[-1].prometheus.add(grown)


channel.CHILD_STARTS.append(_start_in_child)
channel.INGESTERS["metric"] = _ingest_metric
channel.INGESTERS["prometheus"] = _ingest_prometheus
