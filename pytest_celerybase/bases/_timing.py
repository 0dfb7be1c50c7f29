"""Per-execution timing keyed by task id (never on the shared task instance).

A task class has one instance per app and process, shared by every thread of a
threaded worker; a start time stored on ``self`` is overwritten by whichever
execution started last.  :class:`ExecutionClock` keys start times by task id instead.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

__all__ = ["ExecutionClock", "Started"]


@dataclass(frozen=True)
class Started:
    """When one execution started: a monotonic stamp for durations, UTC for display."""

    monotonic: float
    at: datetime

    def elapsed(self) -> float:
        """Seconds since the start (monotonic, immune to wall-clock changes)."""
        return time.perf_counter() - self.monotonic


class ExecutionClock:
    """Thread-safe start times of running executions, keyed by task id.

    An execution normally ends in ``on_retry`` or ``after_return`` and :meth:`stop`
    forgets it.  Some never get there (``task_eager_propagates=True`` skips the
    failure hooks, ``Ignore``/``Reject`` skip ``after_return``), so the clock keeps
    at most ``max_entries`` and drops the oldest beyond that instead of growing.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._started: OrderedDict[str, Started] = OrderedDict()

    def start(self, task_id: str | None) -> Started:
        """Record that execution ``task_id`` starts now (a retry restarts it)."""
        started = Started(time.perf_counter(), datetime.now(timezone.utc))
        if task_id is None:
            return started
        with self._lock:
            self._started.pop(task_id, None)
            self._started[task_id] = started
            while len(self._started) > self._max_entries:
                self._started.popitem(last=False)
        return started

    def get(self, task_id: str | None) -> Started | None:
        """The start of running execution ``task_id``, or ``None`` if unknown."""
        if task_id is None:
            return None
        with self._lock:
            return self._started.get(task_id)

    def stop(self, task_id: str | None) -> Started | None:
        """Forget execution ``task_id`` and return its start, or ``None`` if unknown."""
        if task_id is None:
            return None
        with self._lock:
            return self._started.pop(task_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._started)
