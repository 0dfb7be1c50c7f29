"""What a record is: hook calls and signal events, raw and as read (no pytest import).

The instrumentation appends raw tuples to the recorder (cheap, from any thread); this
module turns them into :class:`HookCall` and :class:`LifecycleEvent` objects when a test
reads them, and puts events recorded by different threads in causal order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COOPERATION",
    "HOOKS",
    "HOOK_PARAMS",
    "OVERRIDE_RAN",
    "RECORD_SIZE",
    "SIGNALS",
    "HookCall",
    "LifecycleEvent",
    "causal_order",
    "hook_call",
    "lifecycle_event",
]

#: Celery's task signals recorded with the hooks, in the order they fire on a worker.
SIGNALS: tuple[str, ...] = (
    "before_task_publish",
    "after_task_publish",
    "task_received",
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_failure",
    "task_retry",
    "task_revoked",
    "task_rejected",
    "task_unknown",
    "task_internal_error",
)

#: Name of the event saying which overrides of a composed class's hook ran in one call:
#: (COOPERATION, task name, task id, (hook, chain of classes, classes that ran), ...).
COOPERATION = "cooperation"

#: Name of the event saying a base class's ``__call__`` or ``run`` override ran (noted only
#: for lifecycle coverage): (OVERRIDE_RAN, task name, "module.Class", method, ...).
OVERRIDE_RAN = "override_ran"

#: Items per event in a recorder's log (name, task name, two event-specific items, time,
#: thread).
RECORD_SIZE = 6


# Positional parameter names of each hook (after ``self``), as Celery calls them.
HOOK_PARAMS: dict[str, tuple[str, ...]] = {
    "before_start": ("task_id", "args", "kwargs"),
    "on_success": ("retval", "task_id", "args", "kwargs"),
    "on_failure": ("exc", "task_id", "args", "kwargs", "einfo"),
    "on_retry": ("exc", "task_id", "args", "kwargs", "einfo"),
    "after_return": ("status", "retval", "task_id", "args", "kwargs", "einfo"),
}

#: The lifecycle hooks of :class:`celery.Task`, in the order Celery documents them.
HOOKS: tuple[str, ...] = tuple(HOOK_PARAMS)


@dataclass(slots=True)
class HookCall:
    """One call of a lifecycle hook.

    ``retval`` is set for ``on_success`` and ``after_return``, ``exc`` and ``einfo`` for
    ``on_failure`` and ``on_retry``, ``status`` (the Celery state) for ``after_return``.
    """

    #: The hook's name, one of :data:`HOOKS`.
    hook: str
    #: The registered name of the task whose hook ran.
    task_name: str
    #: The execution's task id (eager retries and redeliveries reuse it); ``None`` if the
    #: request had none.
    task_id: str | None
    #: The task's positional arguments as the hook received them (a list once they went
    #: through a message).
    args: Any = None
    #: The task's keyword arguments as the hook received them.
    kwargs: Any = None
    #: What the task returned (``on_success``, ``after_return``); for ``after_return``
    #: after a failure, the exception; else ``None``.
    retval: Any = None
    #: The exception of ``on_failure`` and ``on_retry``; else ``None``.
    exc: BaseException | None = None
    #: The Celery state ``after_return`` received (``"SUCCESS"``, ``"FAILURE"``...);
    #: ``None`` for the other hooks.
    status: str | None = None
    #: Celery's ``ExceptionInfo`` (traceback included) where the hook receives one; not
    #: compared, not in ``repr()``.
    einfo: Any = field(default=None, repr=False, compare=False)
    #: The name of the thread that ran the hook (``"MainThread"`` for an eager run, a
    #: worker's thread otherwise); not compared.
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


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One hook call or Celery task signal in a task's lifecycle.

    ``kind`` is ``"hook"`` or ``"signal"``; ``time`` is in seconds since the recording
    (the test) started; ``pid`` and ``thread`` say where it happened.  ``state`` is the
    Celery state an event reports (``after_return``, ``task_postrun``), ``exc`` the
    exception it carries (``on_failure``, ``on_retry``, ``task_failure``, ...).
    """

    #: The hook's or the signal's name (:data:`HOOKS`, :data:`SIGNALS`).
    name: str
    #: ``"hook"`` or ``"signal"``.
    kind: str
    #: The registered name of the task the event belongs to.
    task_name: str
    #: The execution's task id; ``None`` when the event carried none.
    task_id: str | None
    #: Seconds since the recording (the test) started, from ``time.perf_counter()``:
    #: events of one test compare across threads and processes.
    time: float
    #: The process the event happened in (a prefork child, or the test process).
    pid: int
    #: The name of the thread the event happened in.
    thread: str
    #: The Celery state the event reports (``after_return``, ``task_postrun``), else
    #: ``None``.
    state: str | None = field(default=None, compare=False)
    #: The exception the event carries (``on_failure``, ``on_retry``, ``task_failure``,
    #: ``task_retry``...), else ``None``.
    exc: BaseException | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """Short human form used in failure messages, e.g. ``task_failure(KeyError('k'))``."""
        if self.exc is not None:
            return f"{self.name}({self.exc!r})"
        if self.state is not None:
            return f"{self.name}({self.state})"
        return self.name


def _hook_values(event: tuple[Any, ...]) -> dict[str, Any]:
    hook, _, args, kwargs = event[:4]
    if isinstance(args, HookCall):  # built in a worker child, sent as it is
        return {
            "task_id": args.task_id, "args": args.args, "kwargs": args.kwargs,
            "retval": args.retval, "exc": args.exc, "status": args.status,
            "einfo": args.einfo,
        }  # fmt: skip
    values = dict(zip(HOOK_PARAMS[hook], args, strict=False))
    if kwargs:
        values.update(kwargs)
    return values


def _thread_name(thread: Any) -> str:
    # A thread object here; (name, pid) when the event came from another process.
    return thread[0] if isinstance(thread, tuple) else str(thread.name)


def hook_call(event: tuple[Any, ...], pid: int) -> HookCall:
    """Build the :class:`HookCall` of a raw hook event (see :meth:`HookRecorder.add_hook`).

    ``pid`` is the recording process's; an event that came from a worker child carries
    the :class:`HookCall` the child built (with its pid).
    """
    if isinstance(event[2], HookCall):
        return event[2]
    values = _hook_values(event)
    task_id = values.get("task_id")
    return HookCall(
        event[0],
        event[1],
        None if task_id is None else str(task_id),
        values.get("args"),
        values.get("kwargs"),
        values.get("retval"),
        values.get("exc"),
        values.get("status"),
        values.get("einfo"),
        _thread_name(event[5]),
        pid,
    )


#: Signals saying a task was (being) executed, not only sent.
RAN = frozenset(SIGNALS) - {"before_task_publish", "after_task_publish"}

# Where a signal's state or exception is, in the keyword arguments Celery sends it with.
_SIGNAL_STATE = {"task_postrun": "state"}
_SIGNAL_EXC = {
    "task_failure": "exception",
    "task_retry": "reason",
    "task_internal_error": "exception",
    "task_rejected": "exc",
    "task_unknown": "exc",
}


def lifecycle_event(event: tuple[Any, ...], started: float, pid: int) -> LifecycleEvent:
    name, task_name, third, fourth, when, thread = event
    origin = thread[1] if isinstance(thread, tuple) else pid
    state: Any = None
    exc: Any = None
    if name in HOOK_PARAMS:
        values = _hook_values(event)
        task_id = values.get("task_id")
        state, exc = values.get("status"), values.get("exc")
        kind = "hook"
    else:
        task_id = third
        named = fourth or {}
        state = named.get(_SIGNAL_STATE.get(name, ""))
        exc = named.get(_SIGNAL_EXC.get(name, ""))
        if name == "task_retry":  # Celery's Retry: show the exception it retries for
            exc = getattr(exc, "exc", None) or exc
        kind = "signal"
    return LifecycleEvent(
        name,
        kind,
        task_name or "",
        None if task_id is None else str(task_id),
        when - started,
        origin,
        _thread_name(thread),
        None if state is None else str(state),
        exc if isinstance(exc, BaseException) else None,
    )


def causal_order(events: list[LifecycleEvent]) -> list[LifecycleEvent]:
    """The events in the order they happened to the message, whatever the threads' timing.

    Two things are recorded by different threads (or processes) and can interleave: the
    publishing thread's ``after_task_publish`` (a worker may receive, even run, the
    message first) and a worker consumer's ``task_received`` of a retry (it can arrive
    while the attempt that sent it, in a pool thread or a prefork child, is still
    finishing).  Each ``after_task_publish`` goes right after its own
    ``before_task_publish`` (same task id and thread: a retry publishes the task id
    again), and such a ``task_received`` right after the ``task_postrun`` of the attempt
    that published it.  A redelivered message (its attempt's child died without
    publishing anything) stays where it was received.
    """
    published: list[LifecycleEvent] = []
    for event in events:
        if event.name == "after_task_publish":
            for i in range(len(published) - 1, -1, -1):
                other = published[i]
                # the same message: same task id (a retry's shares it) and same thread
                if (
                    other.name == "before_task_publish"
                    and other.task_id == event.task_id
                    and other.thread == event.thread
                    and other.pid == event.pid
                ):
                    published.insert(i + 1, event)
                    break
            else:
                published.append(event)
        else:
            published.append(event)
    ordered: list[LifecycleEvent] = []
    # task id -> attempts running / attempts that published their own next message, each
    # known by (pid, thread): a prefork child's thread has its parent's thread name.
    running: dict[str | None, list[tuple[int, str]]] = {}
    retrying: dict[str | None, list[tuple[int, str]]] = {}
    deferred: dict[str | None, list[LifecycleEvent]] = {}
    for event in published:
        origin, task_id = (event.pid, event.thread), event.task_id
        attempts = running.setdefault(task_id, [])
        senders = retrying.setdefault(task_id, [])
        if event.name == "task_received" and any(o != origin for o in senders):
            deferred.setdefault(task_id, []).append(event)
            continue
        ordered.append(event)
        if event.name == "task_prerun":
            attempts.append(origin)
        elif event.name == "before_task_publish" and origin in attempts:
            senders.append(origin)
        elif event.name == "task_postrun" and origin in attempts:
            attempts.remove(origin)
            if origin in senders:
                senders.remove(origin)
            if not senders:
                ordered.extend(deferred.pop(task_id, []))
    for late in deferred.values():  # an attempt that never ended (e.g. a lost worker)
        ordered.extend(late)
    return ordered
