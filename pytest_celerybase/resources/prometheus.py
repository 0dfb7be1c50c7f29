"""What ``prometheus_client`` counted during a test, as deltas (no pytest import).

``prometheus_client`` metrics are process-global: a counter carries what earlier tests
counted.  :class:`PrometheusCapture` reads every sample of the registries it is given
when it starts, and reports each sample as what changed since then, under the name the
registry exposes (``runs_total``, ``latency_seconds_count``, ``latency_seconds_sum``,
``latency_seconds_bucket`` with its ``le`` label) and with the sample's labels.

Counters, histograms and summaries (whose samples only grow) report their increase;
gauges and the other kinds report their value when it changed.  ``*_created``
timestamps and the default registry's process, platform and GC collectors are left out.
Samples made elsewhere (a prefork child) are added with :meth:`PrometheusCapture.add`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["PrometheusCapture", "Sample", "load_registry"]

#: ``(sample name, sorted label items)``: one series.
Key = tuple[str, tuple[tuple[str, str], ...]]
#: ``(sample name, labels, value, kind)`` as the sink reports it.
Sample = tuple[str, dict[str, str], float, str]

_GROWING = {"counter": "counter", "histogram": "histogram", "summary": "histogram",
            "gaugehistogram": "histogram"}  # fmt: skip


def load_registry(spec: str) -> Any:
    """The ``CollectorRegistry`` named by ``"module:NAME"`` (``ValueError``/``TypeError``
    naming what was given and what is valid)."""
    from prometheus_client import CollectorRegistry

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"celerybase_prometheus_registries: each line must look like "
            f"'package.module:REGISTRY', got {spec!r}"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"celerybase_prometheus_registries: {spec!r}: cannot import {module_name!r}: {exc}"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(
                f"celerybase_prometheus_registries: {spec!r}: module {module_name!r} has no "
                f"attribute {attr!r}"
            )
        obj = getattr(obj, part)
    if not isinstance(obj, CollectorRegistry):
        raise TypeError(
            f"celerybase_prometheus_registries: {spec!r} names a {type(obj).__name__}, not a "
            "prometheus_client.CollectorRegistry"
        )
    return obj


def _default_collectors() -> list[Any]:
    import prometheus_client

    return [
        getattr(prometheus_client, name, None)
        for name in ("PROCESS_COLLECTOR", "PLATFORM_COLLECTOR", "GC_COLLECTOR")
    ]


def _read(registries: Sequence[Any]) -> dict[Key, tuple[float, str]]:
    """Every sample of ``registries`` now: key -> (value, metric type)."""
    skip = [c for c in _default_collectors() if c is not None]
    values: dict[Key, tuple[float, str]] = {}
    for registry in registries:
        # The registry's collectors, to leave the default ones out (collect() on the
        # registry would mix them in: CPU time and GC counts change in every test).
        collectors = getattr(registry, "_collector_to_names", None)
        sources = [registry] if collectors is None else list(collectors)
        for collector in sources:
            if any(collector is s for s in skip):
                continue
            for family in collector.collect():
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    values[key] = (float(sample.value), family.type)
    return values


class PrometheusCapture:
    """The samples of ``registries`` that changed since :meth:`start` (thread-safe)."""

    def __init__(self, registries: Sequence[Any]) -> None:
        self.registries = list(registries)
        self._lock = threading.Lock()
        self._baseline: dict[Key, tuple[float, str]] = {}
        self._added: dict[Key, tuple[float, str]] = {}

    def start(self) -> None:
        """Count from now: every sample's current value is the baseline."""
        baseline = _read(self.registries)
        with self._lock:
            self._baseline = baseline
            self._added = {}

    def changes(self) -> list[Sample]:
        """Each sample that changed since :meth:`start` (or was added), in a stable order."""
        now = _read(self.registries)
        with self._lock:
            baseline, added = self._baseline, dict(self._added)
        found: list[Sample] = []
        for key in sorted(now.keys() | added.keys()):
            value, kind = now.get(key, (None, None)) if key in now else (None, added[key][1])
            before = baseline.get(key, (0.0, kind))[0]
            extra = added.get(key, (0.0, kind))[0]
            growing = _GROWING.get(str(kind))
            if growing is not None:
                delta = (value - before if value is not None else 0.0) + extra
                if delta:
                    found.append((key[0], dict(key[1]), delta, growing))
            elif value is not None and (key not in baseline or value != before):
                found.append((key[0], dict(key[1]), value, "gauge"))
        return found

    def delta_since(self, previous: dict[Key, tuple[float, str]]) -> tuple[
        list[tuple[Key, float, str]], dict[Key, tuple[float, str]]
    ]:
        """What grew since ``previous`` (a :meth:`read`), and the values now (a child's
        report to the test process)."""
        now = _read(self.registries)
        grown = []
        for key, (value, kind) in now.items():
            if kind in _GROWING:
                delta = value - previous.get(key, (0.0, kind))[0]
                if delta:
                    grown.append((key, delta, kind))
        return grown, now

    def read(self) -> dict[Key, tuple[float, str]]:
        """Every sample now (see :meth:`delta_since`)."""
        return _read(self.registries)

    def add(self, grown: Iterable[tuple[Key, float, str]]) -> None:
        """Count increases made in another process (a prefork child) too."""
        with self._lock:
            for key, delta, kind in grown:
                value = self._added.get(key, (0.0, kind))[0]
                self._added[key] = (value + delta, kind)
