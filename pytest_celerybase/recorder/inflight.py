"""Which tasks an in-process worker still has to run, so assertions can wait for them.

A worker stores a task's result before ``on_success``/``after_return`` run, so a test can
see ``result.get()`` return before the hooks it wants to assert on.  :class:`InFlight`
counts, per task id, the executions that were sent to (or started on) a watched worker and
have not finished; :meth:`InFlight.wait_idle` blocks until the count drops to zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

__all__ = ["DEFAULT_WAIT_TIMEOUT", "InFlight"]

#: Seconds a hook assertion waits for a live worker to finish a task, unless configured.
#: (Defined here, not in the recorder, because the plugin reads it at start-up and this
#: module is cheap to import; the recorder re-exports it.)
DEFAULT_WAIT_TIMEOUT = 10.0


class InFlight:
    """Per task id: executions queued for or running on a watched worker (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # task id -> executions counted (messages on their way + executions running), and
        # how many of those are running: a second delivery of a message (redelivered after
        # its first child died) can start before the first one's end is reported.
        self._counts: dict[str, int] = {}
        self._running: dict[str, int] = {}
        self._names: dict[str, str] = {}
        # thread -> task ids counted when their publication began and not yet confirmed
        # sent: counting at the start matters because a worker can run and finish the
        # task before the publishing thread hears that its message went out.
        self._unconfirmed: dict[int, list[str]] = {}
        self._worker_tasks: Callable[[], Collection[str]] | None = None

    def watch(self, names: Callable[[], Collection[str]] | None) -> None:
        """Count tasks named in ``names()`` as consumed by a worker (``None``: stop)."""
        self._worker_tasks = names

    def is_worker_task(self, name: str) -> bool:
        """Whether a watched worker consumes tasks named ``name``."""
        source = self._worker_tasks
        if source is None:
            return False
        try:
            return name in source()
        except Exception:  # a torn-down app must not break publishing
            return False

    def busy(self, task_name: str | None = None, task_id: str | None = None) -> list[str]:
        """Task ids with executions still queued or running (filtered by name/id)."""
        with self._cond:
            self._drop_unconfirmed()
            return self._busy(task_name, task_id)

    def name_of(self, task_id: str) -> str | None:
        """The task name counted for ``task_id`` (``None``: never counted)."""
        with self._cond:
            return self._names.get(task_id)

    def _busy(self, task_name: str | None, task_id: str | None) -> list[str]:
        return [
            tid
            for tid, n in self._counts.items()
            if n > 0
            and (task_id is None or tid == task_id)
            and (task_name is None or self._names.get(tid) == task_name)
        ]

    def wait_idle(
        self, task_name: str | None = None, task_id: str | None = None, timeout: float = 0.0
    ) -> bool:
        """Wait up to ``timeout`` s until nothing matching is busy; ``False`` on time-out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._drop_unconfirmed()
            while self._busy(task_name, task_id):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # -- events, in the order Celery produces them ----------------------------------------
    def publishing(self, task_id: str, name: str, *, confirm: bool = True) -> None:
        """``before_task_publish``: count a message about to go to a watched worker.

        ``confirm=False``: the publication happened in a worker child, which reports only
        messages it sent (nothing to confirm in this process).
        """
        with self._cond:
            self._drop_unconfirmed()
            if self.is_worker_task(name):
                self._add(task_id, name)
                if confirm:
                    self._unconfirmed.setdefault(threading.get_ident(), []).append(task_id)

    def published(self, task_id: str, name: str) -> None:
        """``after_task_publish``: confirm the message (count it if it was not yet)."""
        with self._cond:
            pending = self._unconfirmed.get(threading.get_ident())
            if pending and task_id in pending:
                pending.remove(task_id)
            elif self.is_worker_task(name):
                self._add(task_id, name)

    def started(self, task_id: str, name: str) -> None:
        """A worker started an execution: it takes over a message counted on its way, or
        is counted itself (a message sent before the test began, a redelivery).  Every
        publication that led to it must have been counted by then (a prefork worker reads
        its children's reports first)."""
        with self._cond:
            running = self._running.get(task_id, 0)
            if self._counts.get(task_id, 0) <= running:
                self._add(task_id, name)
            self._running[task_id] = running + 1

    def finished(self, task_id: str) -> None:
        """A worker finished one execution of ``task_id`` (hooks included), or dropped
        its message without running it."""
        with self._cond:
            running = self._running.get(task_id, 0)
            if running > 1:
                self._running[task_id] = running - 1
            else:
                self._running.pop(task_id, None)
            self._remove(task_id)

    def _add(self, task_id: str, name: str) -> None:
        self._counts[task_id] = self._counts.get(task_id, 0) + 1
        self._names[task_id] = name

    def _remove(self, task_id: str) -> None:
        n = self._counts.get(task_id, 0) - 1
        if n <= 0:
            self._counts.pop(task_id, None)
        else:
            self._counts[task_id] = n
        self._cond.notify_all()

    def _drop_unconfirmed(self) -> None:
        # A thread publishes one message at a time: this thread's publications still
        # unconfirmed failed (e.g. EncodeError).  Called with the condition held.
        for task_id in self._unconfirmed.pop(threading.get_ident(), []):
            self._remove(task_id)
