"""The hook records of a test and their queries, and which recorder is active (no pytest).

While a :class:`HookRecorder` is active (the plugin activates one per test; outside pytest
use ``with recording():``), every lifecycle hook call of every Celery task in the process
is recorded into it; :mod:`pytest_celerybase._instrument` does the Celery side.  Recorders
nest (an in-process ``pytester`` session inside a test): records always go to the
innermost active recorder, and deactivating one restores everything done under it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_celerybase._inflight import InFlight

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "HOOKS",
    "ExecutionInfo",
    "HookCall",
    "HookRecorder",
    "NoActiveRecorderError",
    "Publication",
    "activate",
    "current_recorder",
    "deactivate",
    "recording",
]

#: The lifecycle hooks of :class:`celery.Task`, in the order Celery documents them.
HOOKS: tuple[str, ...] = ("before_start", "on_success", "on_failure", "on_retry", "after_return")

#: Seconds a hook assertion waits for a live worker to finish a task, unless configured.
DEFAULT_WAIT_TIMEOUT = 10.0

# Positional parameter names of each hook (after ``self``), as Celery calls them.
HOOK_PARAMS: dict[str, tuple[str, ...]] = {
    "before_start": ("task_id", "args", "kwargs"),
    "on_success": ("retval", "task_id", "args", "kwargs"),
    "on_failure": ("exc", "task_id", "args", "kwargs", "einfo"),
    "on_retry": ("exc", "task_id", "args", "kwargs", "einfo"),
    "after_return": ("status", "retval", "task_id", "args", "kwargs", "einfo"),
}


class NoActiveRecorderError(RuntimeError):
    """Raised when hook records are asked for outside a recording test."""


@dataclass(slots=True)
class HookCall:
    """One call of a lifecycle hook.

    ``retval`` is set for ``on_success`` and ``after_return``, ``exc`` and ``einfo`` for
    ``on_failure`` and ``on_retry``, ``status`` (the Celery state) for ``after_return``.
    """

    hook: str
    task_name: str
    task_id: str | None
    args: Any = None
    kwargs: Any = None
    retval: Any = None
    exc: BaseException | None = None
    status: str | None = None
    einfo: Any = field(default=None, repr=False, compare=False)
    thread: str = field(default="", repr=False, compare=False)
    #: The process that ran the hook (a prefork worker's child, or the test process).
    pid: int = field(default=0, repr=False, compare=False)

    def describe(self) -> str:
        """Short human form used in failure messages, e.g. ``on_failure(ValueError('x'))``."""
        if self.hook in ("on_failure", "on_retry") and self.exc is not None:
            return f"{self.hook}({self.exc!r})"
        if self.hook == "after_return" and self.status is not None:
            return f"{self.hook}({self.status})"
        return self.hook


@dataclass(slots=True)
class ExecutionInfo:
    """How one task id was executed in this test (eager or worker, propagating or not)."""

    task_id: str
    task_name: str
    eager: bool
    propagate: bool
    runs: int = 0


@dataclass(slots=True)
class Publication:
    """A task message sent to a broker during the recording."""

    task_id: str
    task_name: str


_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def hook_call(event: tuple[Any, ...] | HookCall) -> HookCall:
    """Build the :class:`HookCall` of a raw hook event (see :meth:`HookRecorder.add_hook`).

    Raw events are built in the process that recorded them, so ``pid`` is this one's; a
    call that came from a worker child (:meth:`HookRecorder.add_call`) is kept as it is.
    """
    if isinstance(event, HookCall):
        return event
    hook, task_name, args, kwargs, _, thread = event
    values = dict(zip(HOOK_PARAMS[hook], args, strict=False))
    if kwargs:
        values.update(kwargs)
    task_id = values.get("task_id")
    return HookCall(
        hook,
        task_name,
        None if task_id is None else str(task_id),
        values.get("args"),
        values.get("kwargs"),
        values.get("retval"),
        values.get("exc"),
        values.get("status"),
        values.get("einfo"),
        thread.name,
        _pid,
    )


class HookRecorder:
    """The hook calls of one test (or one ``with recording():`` block).

    A hook call is stored as it happened (its raw arguments; ``list.append`` is atomic, so
    the calls of one task id, which all happen in the thread executing it, stay in order)
    and turned into a :class:`HookCall` when :attr:`calls` is read.
    """

    def __init__(self, *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> None:
        #: Executions seen by the tracer, keyed by task id.
        self.executions: dict[str, ExecutionInfo] = {}
        #: Tasks sent to a broker during the recording (name and id), in order.
        self.published: list[Publication] = []
        #: Seconds an assertion waits for a live worker to finish a task.
        self.wait_timeout = wait_timeout
        #: Tasks queued for or running on an in-process worker.
        self.inflight = InFlight()
        self._lock = threading.Lock()
        # Raw hook calls (hook, task name, args, kwargs, time, thread), appended from any
        # thread by the instrumented hooks; _calls holds the first _built of them as
        # HookCall objects.
        self._events: list[tuple[Any, ...] | HookCall] = []
        self._calls: list[HookCall] = []
        self._built = 0
        # id(task) -> (task, original class, saved __trace__) of the tasks instrumented
        # while this recorder was the innermost one; undone when it is deactivated.
        self._instrumented: dict[int, tuple[Any, type, Any]] = {}

    # -- recording (called by the instrumentation, from any thread) ------------------------
    def add_hook(self, hook: str, task_name: str, args: tuple[Any, ...], kwargs: Any) -> None:
        """Record one call of ``hook`` with the arguments Celery passed to it."""
        self._events.append((hook, task_name, args, kwargs, time.perf_counter(),
                             threading.current_thread()))  # fmt: skip

    def add_call(self, call: HookCall) -> None:
        """Record a hook call made elsewhere (a prefork worker's child), as it is."""
        self._events.append(call)

    def _note_execution(self, task_id: str, name: str, eager: bool, propagate: bool) -> None:
        info = self.executions.get(task_id)
        if info is None:
            self.executions[task_id] = info = ExecutionInfo(task_id, name, eager, propagate)
        info.runs += 1
        info.eager, info.propagate = eager, propagate

    def _execution_started(self, task_id: str, name: str, eager: bool, propagate: bool) -> None:
        self._note_execution(task_id, name, eager, propagate)
        if not eager:
            self.inflight.started(task_id, name)

    def _execution_finished(self, task_id: str) -> None:
        self.inflight.finished(task_id)

    def _before_publish(self, task_id: str, name: str) -> None:
        self.inflight.publishing(task_id, name)

    def _after_publish(self, task_id: str, name: str) -> None:
        self.published.append(Publication(task_id, name))
        self.inflight.published(task_id, name)

    # -- queries ---------------------------------------------------------------------
    @property
    def calls(self) -> list[HookCall]:
        """Every hook call, in call order."""
        if self._built < len(self._events):
            with self._lock:
                events = self._events[self._built :]
                self._calls.extend(hook_call(e) for e in events)
                self._built += len(events)
        return self._calls

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
        with self._lock:
            self._events.clear()
            self._calls.clear()
            self._built = 0
            self.executions.clear()
            self.published.clear()

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"<HookRecorder calls={len(self)} tasks={len(self.task_names())}>"

    def task_names(self) -> list[str]:
        """Names of the tasks with hook calls or executions recorded, first seen first."""
        seen = dict.fromkeys(c.task_name for c in list(self.calls))
        seen.update(dict.fromkeys(e.task_name for e in list(self.executions.values())))
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
        from pytest_celerybase import _children

        # What a prefork worker's children wrote before their results were stored.
        _children.flush()
        wait = self.wait_timeout if timeout is None else timeout
        return self.inflight.wait_idle(task_name, task_id, wait)


# -- which recorder is active ------------------------------------------------------------
#: Active recorders, innermost last.  Read without a lock on the hot path (a list read
#: is atomic); changed under _lock.
STACK: list[HookRecorder] = []
_lock = threading.RLock()


def current_recorder() -> HookRecorder:
    """The innermost active recorder (the current test's).

    Raises :class:`NoActiveRecorderError` when nothing is recording.
    """
    if not STACK:
        raise NoActiveRecorderError(
            "no hook recorder is active: hook assertions work inside a test run with the "
            "celerybase plugin (pytest -p celerybase) or inside "
            "`with pytest_celerybase.recording():`"
        )
    return STACK[-1]


def activate(recorder: HookRecorder) -> None:
    """Push ``recorder``: from now on hook calls are recorded into it."""
    from pytest_celerybase import _instrument

    with _lock:
        if not STACK:
            _instrument.install()
        STACK.append(recorder)


def deactivate(recorder: HookRecorder) -> None:
    """Pop ``recorder`` and undo everything done while it was the innermost one."""
    from pytest_celerybase import _instrument

    with _lock:
        if recorder in STACK:
            STACK.remove(recorder)
        _instrument.restore_tasks(recorder)
        if not STACK:
            _instrument.uninstall()


@contextlib.contextmanager
def recording(*, wait_timeout: float = DEFAULT_WAIT_TIMEOUT) -> Iterator[HookRecorder]:
    """Record hook calls inside the block; everything is restored on exit.

    The plugin wraps every test in this; use it directly outside pytest.
    """
    recorder = HookRecorder(wait_timeout=wait_timeout)
    activate(recorder)
    try:
        yield recorder
    finally:
        deactivate(recorder)
