"""Record which lifecycle hooks of which Celery tasks fire (no pytest import).

How it works: while a :class:`HookRecorder` is active, ``celery.app.trace.build_tracer``
(and the copy the worker's consumer module bound at import) is wrapped.  Before a tracer
is built for a task, the task instance's class is swapped for a generated subclass whose
five hooks are data descriptors: Celery's tracer then sees every hook as overridden
(``task_has_custom``), so plain ``@app.task`` tasks get their hooks called too, and every
call is recorded before it reaches the real hook (or an instance-level override such as
``mocker.spy``).  Deactivating restores the classes, the cached ``__trace__`` of every
touched task and the wrapped module attributes, so nothing leaks into the next test.
Recorders nest (an in-process ``pytester`` session inside a test): records always go to
the innermost active recorder.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Task

__all__ = [
    "HOOKS",
    "ExecutionInfo",
    "HookCall",
    "HookRecorder",
    "NoActiveRecorderError",
    "current_recorder",
    "recording",
]

#: The lifecycle hooks of :class:`celery.Task`, in the order Celery documents them.
HOOKS: tuple[str, ...] = ("before_start", "on_success", "on_failure", "on_retry", "after_return")

# Positional parameter names of each hook (after ``self``), as Celery calls them.
_HOOK_PARAMS: dict[str, tuple[str, ...]] = {
    "before_start": ("task_id", "args", "kwargs"),
    "on_success": ("retval", "task_id", "args", "kwargs"),
    "on_failure": ("exc", "task_id", "args", "kwargs", "einfo"),
    "on_retry": ("exc", "task_id", "args", "kwargs", "einfo"),
    "after_return": ("status", "retval", "task_id", "args", "kwargs", "einfo"),
}

_MISSING: Any = object()


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
class _Publication:
    task_id: str
    task_name: str


class HookRecorder:
    """The hook calls of one test (or one ``with recording():`` block).

    Records are appended from any thread; ``list.append`` is atomic, so calls of one task
    id (which all happen in the thread executing it) stay in call order.
    """

    def __init__(self, *, wait_timeout: float = 10.0) -> None:
        #: Every hook call, in call order.
        self.calls: list[HookCall] = []
        #: Executions seen by the tracer, keyed by task id.
        self.executions: dict[str, ExecutionInfo] = {}
        #: Tasks sent to a broker during the recording (name and id), in order.
        self.published: list[_Publication] = []
        #: Seconds an assertion waits for a live worker to finish a task.
        self.wait_timeout = wait_timeout
        self._cond = threading.Condition()
        self._in_flight: dict[str, int] = {}  # task id -> executions running or queued
        self._names_by_id: dict[str, str] = {}
        # thread -> task ids counted in flight when their publication began, not yet
        # confirmed sent (after_task_publish): counting at the start matters because a
        # worker can run and finish the task before the publishing thread is told it sent.
        self._unconfirmed: dict[int, list[str]] = {}
        self._worker_names_source: Callable[[], Any] | None = None
        # task -> (original class, saved __trace__) for tasks instrumented under this recorder
        self._instrumented: dict[int, tuple[Any, type, Any]] = {}

    # -- queries ---------------------------------------------------------------------
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
        with self._cond:
            self.calls.clear()
            self.executions.clear()
            self.published.clear()

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"<HookRecorder calls={len(self.calls)} tasks={len(self.task_names())}>"

    def task_names(self) -> list[str]:
        """Names of the tasks with hook calls or executions recorded, first seen first."""
        seen = dict.fromkeys(c.task_name for c in list(self.calls))
        seen.update(dict.fromkeys(e.task_name for e in list(self.executions.values())))
        return list(seen)

    # -- live worker support ---------------------------------------------------------
    def watch_worker_tasks(self, names: Callable[[], Any]) -> None:
        """Treat tasks named in ``names()`` as consumed by an in-process worker.

        Publications of those tasks count as in flight until an execution finishes, so
        :meth:`wait_idle` can wait for the worker instead of the test sleeping.
        """
        self._worker_names_source = names

    def _is_worker_task(self, name: str) -> bool:
        source = self._worker_names_source
        if source is None:
            return False
        try:
            return name in source()
        except Exception:  # a torn-down app must not break publishing
            return False

    def wait_idle(
        self, task_name: str | None = None, task_id: str | None = None, timeout: float | None = None
    ) -> bool:
        """Wait until no execution of the task (or task id) is queued or running.

        Returns ``False`` if ``timeout`` (default :attr:`wait_timeout`) ran out first.
        """
        deadline = time.monotonic() + (self.wait_timeout if timeout is None else timeout)
        with self._cond:
            self._drop_unconfirmed()
            while True:
                busy = [
                    tid
                    for tid, n in self._in_flight.items()
                    if n > 0
                    and (task_id is None or tid == task_id)
                    and (task_name is None or self._names_by_id.get(tid) == task_name)
                ]
                if not busy:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def _publishing(self, task_id: str, name: str) -> None:
        with self._cond:
            self._drop_unconfirmed()
            if self._is_worker_task(name):
                self._in_flight[task_id] = self._in_flight.get(task_id, 0) + 1
                self._names_by_id[task_id] = name
                self._unconfirmed.setdefault(threading.get_ident(), []).append(task_id)

    def _drop_unconfirmed(self) -> None:
        # This thread's publications still unconfirmed failed (e.g. EncodeError): a
        # thread publishes one message at a time.  Called with self._cond held.
        for task_id in self._unconfirmed.pop(threading.get_ident(), []):
            n = self._in_flight.get(task_id, 0) - 1
            if n <= 0:
                self._in_flight.pop(task_id, None)
            else:
                self._in_flight[task_id] = n
            self._cond.notify_all()

    def _mark_published(self, task_id: str, name: str) -> None:
        with self._cond:
            self.published.append(_Publication(task_id, name))
            pending = self._unconfirmed.get(threading.get_ident())
            if pending and task_id in pending:
                pending.remove(task_id)  # counted when it began (_publishing)
            elif self._is_worker_task(name):
                self._in_flight[task_id] = self._in_flight.get(task_id, 0) + 1
                self._names_by_id[task_id] = name

    def _execution_started(self, task_id: str, name: str, eager: bool, propagate: bool) -> None:
        with self._cond:
            info = self.executions.get(task_id)
            if info is None:
                self.executions[task_id] = info = ExecutionInfo(task_id, name, eager, propagate)
            info.runs += 1
            info.eager, info.propagate = eager, propagate
            if not eager and self._in_flight.get(task_id, 0) == 0:
                # Executed without a publication we saw (e.g. sent before the test began).
                self._in_flight[task_id] = 1
                self._names_by_id[task_id] = name

    def _execution_finished(self, task_id: str) -> None:
        with self._cond:
            n = self._in_flight.get(task_id, 0) - 1
            if n <= 0:
                self._in_flight.pop(task_id, None)
            else:
                self._in_flight[task_id] = n
            self._cond.notify_all()


# -- global activation state -------------------------------------------------------------
_stack: list[HookRecorder] = []
_lock = threading.RLock()
_recording_classes: set[type] = set()  # generated subclasses currently swapped in
_patches: list[tuple[Any, str, Any]] = []  # (module, attribute, original) while installed
_guard = threading.local()  # re-entrancy guard for instance-level hook overrides
_current_thread = threading.current_thread
# Keys of the instance-level override wrappers running now, in any thread: while it is
# empty no thread has a guard set, so the hot path skips the thread-local lookup.
_overriding: list[tuple[int, str]] = []


def current_recorder() -> HookRecorder:
    """The innermost active recorder (the current test's).

    Raises :class:`NoActiveRecorderError` when nothing is recording.
    """
    if not _stack:
        raise NoActiveRecorderError(
            "no hook recorder is active: hook assertions work inside a test run with the "
            "celerybase plugin (pytest -p celerybase) or inside "
            "`with pytest_celerybase.recording():`"
        )
    return _stack[-1]


@contextlib.contextmanager
def recording(*, wait_timeout: float = 10.0) -> Iterator[HookRecorder]:
    """Record hook calls inside the block; everything is restored on exit.

    The plugin wraps every test in this; use it directly outside pytest.
    """
    recorder = HookRecorder(wait_timeout=wait_timeout)
    activate(recorder)
    try:
        yield recorder
    finally:
        deactivate(recorder)


def activate(recorder: HookRecorder) -> None:
    """Push ``recorder``: from now on hook calls are recorded into it."""
    with _lock:
        if not _stack:
            _install()
        _stack.append(recorder)


def deactivate(recorder: HookRecorder) -> None:
    """Pop ``recorder`` and undo everything done while it was the innermost one."""
    with _lock:
        if recorder in _stack:
            _stack.remove(recorder)
        _restore_tasks(recorder)
        if not _stack:
            _uninstall()


# -- celery patching ---------------------------------------------------------------------
def _install() -> None:
    from celery import signals
    from celery.app import trace

    original_build = trace.build_tracer
    original_trace_task = trace.trace_task
    _patch(trace, "build_tracer", _make_build_tracer(original_build))
    _patch(trace, "trace_task", _make_trace_task(original_trace_task))
    consumer = sys.modules.get("celery.worker.consumer.consumer")
    if consumer is not None and getattr(consumer, "build_tracer", None) is original_build:
        _patch(consumer, "build_tracer", trace.build_tracer)
    signals.before_task_publish.connect(
        _on_before_publish, weak=False, dispatch_uid=_BEFORE_DISPATCH_UID
    )
    signals.after_task_publish.connect(_on_publish, weak=False, dispatch_uid=_DISPATCH_UID)


_DISPATCH_UID = "pytest_celerybase.recorder.publish"
_BEFORE_DISPATCH_UID = "pytest_celerybase.recorder.before_publish"


def _patch(module: Any, name: str, value: Any) -> None:
    _patches.append((module, name, getattr(module, name)))
    setattr(module, name, value)


def _uninstall() -> None:
    from celery import signals
    from celery.app import trace

    signals.after_task_publish.disconnect(dispatch_uid=_DISPATCH_UID)
    signals.before_task_publish.disconnect(dispatch_uid=_BEFORE_DISPATCH_UID)
    wrappers = {name: getattr(trace, name) for name in ("build_tracer", "trace_task")}
    originals: dict[str, Any] = {}
    while _patches:
        module, name, value = _patches.pop()
        setattr(module, name, value)
        if name in wrappers and module is trace:
            originals[name] = value
    # A module imported while we were installed (the worker's consumer and request modules
    # do ``from celery.app.trace import build_tracer/trace_task``) bound our wrappers: give
    # it the originals.
    for mod_name in ("celery.worker.consumer.consumer", "celery.worker.request"):
        mod = sys.modules.get(mod_name)
        for name, original in originals.items():
            if mod is not None and getattr(mod, name, None) is wrappers[name]:
                setattr(mod, name, original)


def _on_publish(sender: Any = None, headers: Any = None, body: Any = None, **_: Any) -> None:
    task_id = _task_id_of(headers, body)
    if _stack and task_id is not None:
        _stack[-1]._mark_published(task_id, str(sender))


def _on_before_publish(
    sender: Any = None, headers: Any = None, body: Any = None, **_: Any
) -> None:
    task_id = _task_id_of(headers, body)
    if _stack and task_id is not None:
        _stack[-1]._publishing(task_id, str(sender))


def _task_id_of(headers: Any, body: Any) -> str | None:
    task_id = None
    if isinstance(headers, dict):
        task_id = headers.get("id")
    if task_id is None and isinstance(body, dict):  # task protocol 1
        task_id = body.get("id")
    return None if task_id is None else str(task_id)


def _make_build_tracer(original: Callable[..., Any]) -> Callable[..., Any]:
    def build_tracer(name: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        if not _stack:
            return original(name, task, *args, **kwargs)
        _instrument(task)
        tracer = original(name, task, *args, **kwargs)
        # build_tracer(name, task, loader, hostname, store_errors, Info, eager, propagate, ...)
        eager = kwargs.get("eager", args[4] if len(args) > 4 else False)
        propagate = kwargs.get("propagate", args[5] if len(args) > 5 else False)
        if eager and not propagate:
            return tracer  # the common case stays unwrapped: no per-call overhead
        return _wrap_tracer(tracer, str(name), bool(eager), bool(propagate))

    build_tracer.__wrapped__ = original  # type: ignore[attr-defined]
    return build_tracer


def _make_trace_task(original: Callable[..., Any]) -> Callable[..., Any]:
    # The worker's thread/solo pools run ``trace_task``, which reuses ``task.__trace__``
    # when it is already built (e.g. by a worker started before this test): instrument
    # the task so that tracer is rebuilt through our build_tracer.
    def trace_task(task: Any, *args: Any, **kwargs: Any) -> Any:
        if _stack and type(task) not in _recording_classes:
            _instrument(task)
        return original(task, *args, **kwargs)

    trace_task.__wrapped__ = original  # type: ignore[attr-defined]
    return trace_task


def _wrap_tracer(
    tracer: Callable[..., Any], name: str, eager: bool, propagate: bool
) -> Callable[..., Any]:
    def traced(uuid: Any, args: Any, kwargs: Any, request: Any = None) -> Any:
        recorder = _stack[-1] if _stack else None
        if recorder is None:
            return tracer(uuid, args, kwargs, request)
        task_id = str(uuid)
        recorder._execution_started(task_id, name, eager, propagate)
        try:
            return tracer(uuid, args, kwargs, request)
        finally:
            if not eager:
                recorder._execution_finished(task_id)

    return traced


def _instrument(task: Any) -> None:
    """Swap ``task``'s class for its recording subclass (once per recorder)."""
    cls = type(task)
    if cls in _recording_classes:
        return
    from celery import Task
    from celery.local import Proxy

    if issubclass(cls, Proxy):
        # ``@app.task`` on an app not finalized yet returns a PromiseProxy, and Celery
        # accepts it where a task goes (``trace_task(proxy, ...)``): instrument the task.
        task = task._get_current_object()
        cls = type(task)
        if cls in _recording_classes:
            return
    if not issubclass(cls, Task):
        return  # a stand-in (e.g. a Mock with spec=Task): nothing to swap safely
    with _lock:
        cls = type(task)
        if cls in _recording_classes or not _stack:
            return
        recorder = _stack[-1]
        sub = _recording_subclass(cls)
        saved_trace = task.__dict__.get("__trace__", _MISSING)
        recorder._instrumented[id(task)] = (task, cls, saved_trace)
        task.__class__ = sub
        # A tracer cached before recording began binds the hooks it saw then: rebuild it.
        task.__dict__["__trace__"] = None


def _restore_tasks(recorder: HookRecorder) -> None:
    for task, cls, saved_trace in recorder._instrumented.values():
        sub = type(task)
        task.__class__ = cls
        _recording_classes.discard(sub)
        if saved_trace is _MISSING:
            task.__dict__.pop("__trace__", None)
        else:
            task.__dict__["__trace__"] = saved_trace
    recorder._instrumented.clear()


def _recording_subclass(cls: type) -> type:
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__celerybase_original__": cls,
    }
    sub = type(cls.__name__, (cls,), namespace)
    for hook in HOOKS:
        setattr(sub, hook, _HookDescriptor(hook, sub))
    _recording_classes.add(sub)
    return sub


class _HookDescriptor:
    """A data descriptor standing in for a hook: returns a recording wrapper.

    Being a data descriptor it wins over instance attributes, so an instance-level
    override (``mocker.spy(task, "on_success")``) is wrapped too; assignments and
    deletions go to the instance ``__dict__`` so such overrides keep working and are
    left as the user set them when the original class is restored.
    """

    __slots__ = ("cache", "hook", "owner", "plain")

    def __init__(self, hook: str, owner: type) -> None:
        self.hook = hook
        self.owner = owner
        self.plain = _PLAIN_WRAPPERS[hook]
        # Eager apply() builds a tracer (so reads every hook) per call: reuse the wrapper
        # while the hook it wraps is the same function.  Keyed by id(task): the subclass
        # owning this descriptor lives only while its tasks are instrumented.
        self.cache: dict[int, tuple[Any, Any]] = {}

    def __get__(self, task: Any, objtype: Any = None) -> Any:
        if task is None:
            return getattr(super(self.owner, objtype), self.hook)
        hook = self.hook
        override = task.__dict__.get(hook, _MISSING)
        if override is _MISSING:
            inner = getattr(super(self.owner, task), hook)
            func = getattr(inner, "__func__", inner)
            cached = self.cache.get(id(task))
            if cached is not None and cached[0] is func:
                return cached[1]
            recorded = self.plain(hook, task, inner)
            recorded.__wrapped__ = inner  # type: ignore[attr-defined]
            recorded.__name__ = hook
            self.cache[id(task)] = (func, recorded)
            return recorded
        else:
            inner = override
            key = (id(task), hook)

            def recorded(*args: Any, **kwargs: Any) -> Any:
                # An override created while the class was swapped wraps a recording
                # wrapper already (mocker.spy captures it): record only once.
                active = _guard.__dict__.setdefault("active", set())
                if key in active:
                    return inner(*args, **kwargs)
                _record(hook, task, args, kwargs)
                _overriding.append(key)
                active.add(key)
                try:
                    return inner(*args, **kwargs)
                finally:
                    active.discard(key)
                    _overriding.remove(key)

        recorded.__wrapped__ = inner  # type: ignore[attr-defined]
        recorded.__name__ = hook
        return recorded

    def __set__(self, task: Any, value: Any) -> None:
        task.__dict__[self.hook] = value

    def __delete__(self, task: Any) -> None:
        try:
            del task.__dict__[self.hook]
        except KeyError:
            raise AttributeError(self.hook) from None


def _record(hook: str, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    stack = _stack
    if not stack:
        return
    if _overriding:
        active = _guard.__dict__.get("active")
        if active and (id(task), hook) in active:
            return
    params = _HOOK_PARAMS[hook]
    values = dict(zip(params, args, strict=False))
    values.update(kwargs)
    task_id = values.get("task_id")
    stack[-1].calls.append(
        HookCall(
            hook,
            str(task.name),
            None if task_id is None else str(task_id),
            values.get("args"),
            values.get("kwargs"),
            values.get("retval"),
            values.get("exc"),
            values.get("status"),
            values.get("einfo"),
            threading.current_thread().name,
        )
    )


# The recording wrappers of hooks with no instance-level override, one factory per hook:
# they run for every hook call of every task while recording, so the common case (Celery
# calls hooks positionally) builds its HookCall inline; anything else goes to _record.
# Each equals ``_record(hook, task, args, kwargs); return inner(*args, **kwargs)``.
_Wrapper = Callable[..., Any]


def _wrap_before_start(hook: str, task: Any, inner: _Wrapper) -> _Wrapper:
    name = str(task.name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        # (task_id, args, kwargs)
        if kwargs or len(args) != 3 or _overriding or not _stack:
            _record(hook, task, args, kwargs)
        else:
            tid = args[0]
            _stack[-1].calls.append(HookCall(
                hook, name, None if tid is None else str(tid),
                args[1], args[2], None, None, None, None, _current_thread().name,
            ))  # fmt: skip
        return inner(*args, **kwargs)

    return recorded


def _wrap_on_success(hook: str, task: Any, inner: _Wrapper) -> _Wrapper:
    name = str(task.name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        # (retval, task_id, args, kwargs)
        if kwargs or len(args) != 4 or _overriding or not _stack:
            _record(hook, task, args, kwargs)
        else:
            tid = args[1]
            _stack[-1].calls.append(HookCall(
                hook, name, None if tid is None else str(tid),
                args[2], args[3], args[0], None, None, None, _current_thread().name,
            ))  # fmt: skip
        return inner(*args, **kwargs)

    return recorded


def _wrap_on_failure_or_retry(hook: str, task: Any, inner: _Wrapper) -> _Wrapper:
    name = str(task.name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        # (exc, task_id, args, kwargs, einfo)
        if kwargs or len(args) != 5 or _overriding or not _stack:
            _record(hook, task, args, kwargs)
        else:
            tid = args[1]
            _stack[-1].calls.append(HookCall(
                hook, name, None if tid is None else str(tid),
                args[2], args[3], None, args[0], None, args[4], _current_thread().name,
            ))  # fmt: skip
        return inner(*args, **kwargs)

    return recorded


def _wrap_after_return(hook: str, task: Any, inner: _Wrapper) -> _Wrapper:
    name = str(task.name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        # (status, retval, task_id, args, kwargs, einfo)
        if kwargs or len(args) != 6 or _overriding or not _stack:
            _record(hook, task, args, kwargs)
        else:
            tid = args[2]
            _stack[-1].calls.append(HookCall(
                hook, name, None if tid is None else str(tid),
                args[3], args[4], args[1], None, args[0], args[5], _current_thread().name,
            ))  # fmt: skip
        return inner(*args, **kwargs)

    return recorded


_PLAIN_WRAPPERS: dict[str, Callable[[str, Any, _Wrapper], _Wrapper]] = {
    "before_start": _wrap_before_start,
    "on_success": _wrap_on_success,
    "on_failure": _wrap_on_failure_or_retry,
    "on_retry": _wrap_on_failure_or_retry,
    "after_return": _wrap_after_return,
}
