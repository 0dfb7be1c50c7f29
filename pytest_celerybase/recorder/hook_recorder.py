"""The hook records of a test and their queries, and which recorder is active (no pytest).

While a :class:`HookRecorder` is active (the plugin activates one per test; outside pytest
use ``with recording():``), every lifecycle hook call of every Celery task in the process
is recorded into it; :mod:`pytest_celerybase.recorder.instrument` does the Celery side.  Recorders
nest (an in-process ``pytester`` session inside a test): records always go to the
innermost active recorder, and deactivating one restores everything done under it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from pytest_celerybase.recorder.inflight import DEFAULT_WAIT_TIMEOUT, InFlight
from pytest_celerybase.recorder.records import (
    COOPERATION,
    HOOK_PARAMS,
    HOOKS,
    RAN,
    RECORD_SIZE,
    SIGNALS,
    HookCall,
    LifecycleEvent,
    causal_order,
    hook_call,
    lifecycle_event,
)
from pytest_celerybase.recorder.threads import LEFT_RUNNING, counts_for

__all__ = [
    "BEFORE_READ",
    "ExecutionInfo",
    "HookRecorder",
    "Publication",
    "RecordWriter",
    "scheduled_for_later",
]

_LIFECYCLE = frozenset(HOOKS) | frozenset(SIGNALS)


#: Called before a wait reads the records: records other processes wrote come in first.
#: A prefork worker's channel registers its flush here (it imports this module; the
#: recorder knows nothing of workers).
BEFORE_READ: list[Callable[[], None]] = []


@dataclass(slots=True)
class ExecutionInfo:
    """How one task id was executed in this test.

    Noted for worker executions and for eager ones that propagate exceptions (what
    assertions wait for or explain); a plain eager run has none.
    """

    #: The task id (retries and redeliveries reuse it).
    task_id: str
    #: The registered task name.
    task_name: str
    #: ``True`` when ``Task.apply`` ran it in the calling thread, ``False`` when a worker
    #: did.
    eager: bool
    #: ``True`` when the eager run raised out of the call (``task_eager_propagates=True``
    #: or ``apply(throw=True)``), skipping ``on_failure``/``on_retry``/``after_return``
    #: (celery#5666).
    propagate: bool
    #: How many times the tracer ran this task id (each retry or redelivery adds one).
    runs: int = 0


@dataclass(slots=True)
class Publication:
    """A task message sent to a broker during the recording."""

    task_id: str
    task_name: str
    #: When a worker runs it, if that was ahead when it was sent (countdown/eta).
    eta: datetime | None = None


def scheduled_for_later(eta: Any) -> datetime | None:
    """The message's ETA (an ISO string or datetime) if it is ahead of now, else ``None``.

    A worker keeps such a message on its timer: assertions do not wait for it.  A naive
    ETA is taken as UTC (what Celery sends since 4.0 is aware).
    """
    if isinstance(eta, str):
        try:
            eta = datetime.fromisoformat(eta)
        except ValueError:
            return None
    if not isinstance(eta, datetime):
        return None
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=timezone.utc)
    return eta if eta > datetime.now(timezone.utc) else None


class RecordWriter(Protocol):
    """What writes records: the instrumentation, the signal receivers, a worker channel.

    :class:`HookRecorder` implements it; a prefork worker's child replaces it with a
    recorder forwarding every write to the test process.
    """

    #: The raw record log: RECORD_SIZE items per event, extended atomically (hot path).
    raw: list[Any]
    #: id(task) -> (task, original class, saved ``__trace__``) instrumented meanwhile.
    instrumented: dict[int, tuple[Any, type, Any]]

    def add(self, event: tuple[Any, ...]) -> bool: ...
    def add_hook(self, hook: str, task_name: str, args: tuple[Any, ...], kwargs: Any) -> None: ...
    def add_signal(self, signal: str, task_name: str, task_id: str | None, named: Any) -> bool: ...
    def stray(self, thread: threading.Thread, task: Any) -> None: ...
    def execution_started(self, task_id: str, name: str, eager: bool, propagate: bool) -> None: ...
    def execution_finished(self, task_id: str) -> None: ...
    def execution_escaped(self, task_id: str, name: str, exc: BaseException) -> None: ...
    def before_publish(self, task_id: str, name: str, eta: Any = None) -> None: ...
    def after_publish(self, task_id: str, name: str) -> None: ...
    def discarded(self, task_id: str) -> None: ...


class HookRecorder:
    """The hook calls and task signals of one test (or one ``with recording():`` block).

    An event is stored as it happened (its raw arguments, in one list that threads extend
    atomically, so the events of one thread stay in order) and turned into a
    :class:`HookCall` or :class:`LifecycleEvent` when the records are read.
    """

    def __init__(
        self, *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT, watch_overrides: bool = False
    ) -> None:
        #: Whether base classes' ``__call__``/``run`` overrides record when they run (for
        #: lifecycle coverage; hook calls are recorded anyway).
        self.watch_overrides = watch_overrides
        #: Called with the recorder before :meth:`clear` forgets the records (lifecycle
        #: coverage counts them first).
        self.before_clear: list[Callable[[HookRecorder], None]] = []
        #: Executions seen by the tracer, keyed by task id.
        self.executions: dict[str, ExecutionInfo] = {}
        #: Tasks sent to a broker during the recording (name and id), in order.
        self.published: list[Publication] = []
        #: Seconds an assertion waits for a live worker to finish a task.
        self.wait_timeout = wait_timeout
        #: Tasks queued for or running on an in-process worker.
        self.inflight = InFlight()
        #: ``time.perf_counter()`` when the recording began (``LifecycleEvent.time`` is
        #: relative to it) and the process it records in.
        self.started = time.perf_counter()
        self.pid = os.getpid()
        self._lock = threading.Lock()
        # Raw events, appended from any thread as RECORD_SIZE consecutive items (one flat
        # list: no object per event for the garbage collector to track, and
        # list.extend(tuple) is atomic): hook calls (hook, task name, args, kwargs, time,
        # thread), signals as sent (signal, sender task, task id, state, time, thread) or
        # resolved (signal, task name, task id, detail dict, time, thread); an event from
        # another process has (thread name, pid) as its thread.  _calls holds the
        # HookCall objects of the first _built events.
        self.raw: list[Any] = []
        self._calls: list[HookCall] = []
        self._built = 0
        # The first _resolved events, tracer signals resolved, and per thread the
        # executions started (task_prerun) and not yet ended (task_postrun) at that point.
        self._resolved_events: list[tuple[Any, ...]] = []
        self._resolved = 0
        self._running: dict[Any, list[tuple[str, Any]]] = {}
        #: Records dropped because they came from a thread an earlier test left running:
        #: (thread name, that test's id) -> how many.
        self.strays: dict[tuple[str, str], int] = {}
        #: The same, per task name: (thread name, that test's id) -> how many.  An
        #: assertion about one of these tasks refuses to judge it.
        self.stray_tasks: dict[str, dict[tuple[str, str], int]] = {}
        # id(task) -> (task, original class, saved __trace__) of the tasks instrumented
        # while this recorder was the innermost one; undone when it is deactivated.
        self.instrumented: dict[int, tuple[Any, type, Any]] = {}
        #: Worker executions that raised a ``BaseException`` that is not an ``Exception``
        #: (``SystemExit``...) out of Celery: (task name, task id, exception).
        self.escapes: list[tuple[str, str, BaseException]] = []
        # task id -> ETA of the message being sent, when it is due later
        self._scheduled: dict[str, datetime] = {}

    # -- recording (called by the instrumentation, from any thread) ------------------------
    def add_hook(self, hook: str, task_name: str, args: tuple[Any, ...], kwargs: Any) -> None:
        """Record one call of ``hook`` with the arguments Celery passed to it."""
        self.add((hook, task_name, args, kwargs))

    def add_signal(self, signal: str, task_name: str, task_id: str | None, named: Any) -> bool:
        """Record one Celery signal sent for a task, with the keyword arguments it carried;
        ``False`` when it was not recorded (see :meth:`add`)."""
        return self.add((signal, task_name, task_id, named))

    def add(self, event: tuple[Any, ...]) -> bool:
        """Record a raw event (name, task name, ...) made now in this thread.

        ``False`` when the thread was left running by an earlier test: the event is
        nobody's, only counted (:attr:`strays`).
        """
        thread = threading.current_thread()
        if LEFT_RUNNING and not counts_for(self, thread):
            self.stray(thread, event[1])
            return False
        self.raw.extend((*event, time.perf_counter(), thread))
        return True

    def stray(self, thread: threading.Thread, task: Any) -> None:
        """Count a record of ``task`` (its name, or the task) dropped because ``thread``
        was left running by an earlier test."""
        key = (thread.name, LEFT_RUNNING.get(thread, "?"))
        name = task if isinstance(task, str) else str(getattr(task, "name", None) or "")
        with self._lock:
            self.strays[key] = self.strays.get(key, 0) + 1
            per_task = self.stray_tasks.setdefault(name, {})
            per_task[key] = per_task.get(key, 0) + 1

    def add_remote(self, event: tuple[Any, ...]) -> None:
        """Record an event made in another process (a prefork worker's child), as sent:
        ``(name, task name, a, b, time, (thread name, pid))``."""
        self.raw.extend(event)

    def _events_from(self, start: int) -> list[tuple[Any, ...]]:
        """The raw events from the ``start``-th on, as tuples."""
        log = self.raw[start * RECORD_SIZE :]
        end = len(log) - len(log) % RECORD_SIZE  # (extend is atomic: never needed)
        return [tuple(log[i : i + RECORD_SIZE]) for i in range(0, end, RECORD_SIZE)]

    def note_execution(self, task_id: str, name: str, eager: bool, propagate: bool) -> None:
        info = self.executions.get(task_id)
        if info is None:
            self.executions[task_id] = info = ExecutionInfo(task_id, name, eager, propagate)
        info.runs += 1
        info.eager, info.propagate = eager, propagate

    def execution_started(self, task_id: str, name: str, eager: bool, propagate: bool) -> None:
        self.note_execution(task_id, name, eager, propagate)
        if not eager:
            self.inflight.started(task_id, name)

    def execution_finished(self, task_id: str) -> None:
        self.inflight.finished(task_id)

    def execution_escaped(self, task_id: str, name: str, exc: BaseException) -> None:
        """A worker execution raised an exception that is not an ``Exception``."""
        with self._lock:
            self.escapes.append((name, task_id, exc))

    def before_publish(self, task_id: str, name: str, eta: Any = None) -> None:
        """A message is being sent; one due later is not counted as in flight."""
        if not self.schedule(task_id, eta):
            self.inflight.publishing(task_id, name)

    def after_publish(self, task_id: str, name: str) -> None:
        """The message went out (a worker may have run it already)."""
        eta = self.unschedule(task_id)
        self.published.append(Publication(task_id, name, eta))
        if eta is None:
            self.inflight.published(task_id, name)

    def schedule(self, task_id: str, eta: Any) -> bool:
        """Note the ETA of a message being sent; whether it is due later (not now)."""
        due = scheduled_for_later(eta)
        if due is None:
            self._scheduled.pop(task_id, None)
            return False
        self._scheduled[task_id] = due
        return True

    def unschedule(self, task_id: str) -> datetime | None:
        """The ETA :meth:`schedule` noted for ``task_id`` (forgotten now), if any."""
        return self._scheduled.pop(task_id, None)

    def discarded(self, task_id: str) -> None:
        """A worker dropped a message without running it (revoked, expired, rejected,
        unregistered): nothing more will come of it."""
        self.inflight.finished(task_id)

    # -- queries ---------------------------------------------------------------------
    @property
    def calls(self) -> list[HookCall]:
        """Every hook call, in call order."""
        if self._built * RECORD_SIZE < len(self.raw):
            with self._lock:
                events = self._events_from(self._built)
                self._calls.extend(hook_call(e, self.pid) for e in events if e[0] in HOOK_PARAMS)
                self._built += len(events)
        return self._calls

    def _resolved_list(self) -> list[tuple[Any, ...]]:
        """Every event, signals stored as sent given their task name and id."""
        if self._resolved * RECORD_SIZE < len(self.raw):
            with self._lock:
                events = self._events_from(self._resolved)
                self._resolved_events.extend(map(self.resolve_signal, events))
                self._resolved += len(events)
        return self._resolved_events

    def resolve_signal(self, event: tuple[Any, ...]) -> tuple[Any, ...]:
        if isinstance(event[1], str) or event[0] in HOOK_PARAMS:
            return event
        # a tracer signal as sent: the sending task in place of its name
        name, sender, task_id, state, when, thread = event
        task_name = str(getattr(sender, "name", None) or "")
        running = self._running.setdefault(thread, [])
        if name == "task_prerun":
            running.append((task_name, task_id))
        elif name == "task_postrun":
            for i in range(len(running) - 1, -1, -1):
                if running[i] == (task_name, task_id):
                    del running[i]
                    break
        elif running and running[-1][0] == task_name:  # task_success: the innermost run
            task_id = running[-1][1]
        named = {} if state is None else {"state": state}
        return (name, task_name, None if task_id is None else str(task_id), named, when, thread)

    def events_for(
        self, task_name: str | None = None, task_id: str | None = None
    ) -> list[LifecycleEvent]:
        """The hook and signal events of a task name and/or task id (all with neither)."""
        events = [
            lifecycle_event(e, self.started, self.pid)
            for e in list(self._resolved_list())
            if (task_name is None or e[1] == task_name) and e[0] in _LIFECYCLE
        ]
        # A worker child's events arrive when the parent reads them: order by time.
        events.sort(key=lambda e: e.time)
        return [e for e in causal_order(events) if task_id is None or e.task_id == task_id]

    def calls_for(self, task_name: str | None = None, task_id: str | None = None) -> list[HookCall]:
        """The hook calls of one task name and/or one task id (all calls with neither)."""
        return [
            c
            for c in list(self.calls)
            if (task_name is None or c.task_name == task_name)
            and (task_id is None or c.task_id == task_id)
        ]

    def hooks_for(self, task_name: str | None = None, task_id: str | None = None) -> list[str]:
        """Hook names recorded for a task name and/or task id, in call order."""
        return [c.hook for c in self.calls_for(task_name, task_id)]

    def clear(self) -> None:
        """Forget every record made so far (executions and publications too)."""
        for read in list(self.before_clear):
            read(self)
        with self._lock:
            self.raw.clear()
            self._calls.clear()
            self._built = 0
            self._resolved_events.clear()
            self._resolved = 0
            self._running.clear()
            self.executions.clear()
            self.published.clear()

    def cooperation_for(
        self, task_name: str | None, task_id: str | None = None
    ) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """Per hook call of a composed task class: (hook, names of the overriding classes,
        names of those that ran)."""
        return [
            e[3]
            for e in self._events_from(0)
            if e[0] == COOPERATION
            and (task_name is None or e[1] == task_name)
            and (task_id is None or e[2] == task_id)
        ]

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"<HookRecorder calls={len(self)} tasks={len(self.task_names())}>"

    def task_ids(self) -> set[str]:
        """Every task id sent, run or scheduled during the recording."""
        ids = {p.task_id for p in list(self.published)}
        ids.update(self.executions)
        ids.update(c.task_id for c in list(self.calls) if c.task_id is not None)
        ids.update(
            e[2]
            for e in list(self._resolved_list())
            if e[0] not in HOOK_PARAMS and isinstance(e[2], str)  # a signal's task id
        )
        return ids

    def task_names(self) -> list[str]:
        """Names of the tasks with hook calls or executions recorded, first seen first."""
        seen = dict.fromkeys(c.task_name for c in list(self.calls))
        seen.update(dict.fromkeys(e.task_name for e in list(self.executions.values())))
        # tasks that got this far without a hook (e.g. lost or rejected on a worker)
        resolved = list(self._resolved_list())
        seen.update(dict.fromkeys(e[1] for e in resolved if e[1] and e[0] in RAN))
        return list(seen)

    # -- live worker support ---------------------------------------------------------
    def watch_worker_tasks(self, names: Callable[[], Collection[str]] | None) -> None:
        """Treat tasks named in ``names()`` as consumed by an in-process worker.

        Publications of those tasks count as in flight until an execution finishes, so
        :meth:`wait_idle` can wait for the worker instead of the test sleeping.  ``None``
        stops watching.
        """
        self.inflight.watch(names)

    def wait_idle(
        self, task_name: str | None = None, task_id: str | None = None, timeout: float | None = None
    ) -> bool:
        """Wait until no execution of the task (or task id) is queued or running.

        Returns ``False`` if ``timeout`` (default :attr:`wait_timeout`) ran out first.
        """
        for read_in in BEFORE_READ:  # e.g. what a prefork worker's children wrote
            read_in()
        wait = self.wait_timeout if timeout is None else timeout
        return self.inflight.wait_idle(task_name, task_id, wait)
