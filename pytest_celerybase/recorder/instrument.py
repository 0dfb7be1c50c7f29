"""Everything the recorder changes in Celery, and how it is undone (no pytest import).

While any recorder is active, ``celery.app.trace.build_tracer`` and ``trace_task`` (and
the copies Celery's worker modules bound at import) are wrapped, and Celery's task signals
are recorded (:mod:`.signals`).  Before a tracer is built for a task,
the task instance's class is swapped for a generated subclass whose five hooks are data
descriptors: Celery's tracer then sees every hook as overridden (``task_has_custom``), so
plain ``@app.task`` tasks get their hooks called too, and every call is recorded before
it reaches the real hook (or an instance-level override such as ``mocker.spy``).
:func:`restore_tasks` and :func:`uninstall` put classes, cached ``__trace__`` and module
attributes back; every module attribute changed is a :mod:`pytest_celerybase._patching`
patch owned by :data:`OWNER`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pytest_celerybase import _patching
from pytest_celerybase.apps.brokers import warning_send_task
from pytest_celerybase.recorder import cooperative, overrides, signals
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.recorder.records import HOOKS
from pytest_celerybase.recorder.threads import (
    ACTIVE_THREADS,
    LEFT_RUNNING,
    counts_for,
    submitted_for,
)

if TYPE_CHECKING:
    from pytest_celerybase.recorder.hook_recorder import HookRecorder

__all__ = ["BEFORE_INSTRUMENT", "OWNER", "install", "instrument", "is_recording_class",
           "restore_tasks", "uninstall"]  # fmt: skip

#: The owner of the patches recording makes (see :mod:`pytest_celerybase._patching`).
OWNER = "recorder"

_MISSING: Any = object()
_Hook = Callable[..., Any]

#: Called with each task about to be instrumented, i.e. before it first runs while a
#: recorder is active (the plugin follows the task's classes from then on).
BEFORE_INSTRUMENT: list[Callable[[Any], None]] = []

_lock = threading.RLock()
_recording_classes: set[type] = set()  # generated subclasses currently swapped in
_guard = threading.local()  # re-entrancy guard for instance-level hook overrides
# Keys of the instance-level override wrappers running now, in any thread: while it is
# empty no thread has a guard set, so the hot path skips the thread-local lookup.
_overriding: list[tuple[int, str]] = []
_clock = time.perf_counter
_current_thread = threading.current_thread
_get_ident = threading.get_ident

# Worker modules that bind ``from celery.app.trace import build_tracer/trace_task`` at
# import: a copy bound while we were installed is our wrapper and must be undone.
_BINDING_MODULES = ("celery.worker.consumer.consumer", "celery.worker.request")


def install() -> None:
    """Wrap Celery's tracer entry points and start recording its signals."""
    from celery.app import trace

    original_build = trace.build_tracer
    _patch(trace, "build_tracer", _make_build_tracer(original_build))
    _patch(trace, "trace_task", _make_trace_task(trace.trace_task))
    consumer = sys.modules.get("celery.worker.consumer.consumer")
    if consumer is not None and getattr(consumer, "build_tracer", None) is original_build:
        _patch(consumer, "build_tracer", trace.build_tracer)
    signals.connect(_patch)
    # Work a test submits to a pool whose thread an earlier test started counts for it.
    _patch(ThreadPoolExecutor, "submit", _make_submit(ThreadPoolExecutor.submit))
    from celery import Celery

    _patch(Celery, "send_task", warning_send_task(Celery.send_task))


def uninstall() -> None:
    """Undo :func:`install` (and any module copy of our wrappers bound meanwhile)."""
    from celery.app import trace

    signals.disconnect()
    cooperative.restore()
    overrides.restore()
    wrappers = {name: getattr(trace, name) for name in ("build_tracer", "trace_task")}
    originals = {
        p.name: p.original
        for p in _patching.active()
        if p.owner == OWNER and p.target is trace and p.name in wrappers
    }
    _patching.undo_all(OWNER)
    for mod_name in _BINDING_MODULES:
        mod = sys.modules.get(mod_name)
        for name, original in originals.items():
            if mod is not None and getattr(mod, name, None) is wrappers[name]:
                setattr(mod, name, original)


def _patch(module: Any, name: str, value: Any) -> None:
    _patching.apply(module, name, value, owner=OWNER)


# -- tracer wrappers ---------------------------------------------------------------------
def _make_build_tracer(original: _Hook) -> _Hook:
    def build_tracer(name: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        if not STACK:
            return original(name, task, *args, **kwargs)
        if type(task) not in _recording_classes:  # built per eager apply(): no call
            instrument(task)
        tracer = original(name, task, *args, **kwargs)
        # build_tracer(name, task, loader, hostname, store_errors, Info, eager, propagate, ...)
        eager = kwargs.get("eager", args[4] if len(args) > 4 else False)
        propagate = kwargs.get("propagate", args[5] if len(args) > 5 else False)
        if eager and not propagate:
            return tracer  # the common case stays unwrapped: no per-call overhead
        return _wrap_tracer(tracer, str(name), bool(eager), bool(propagate))

    build_tracer.__wrapped__ = original  # type: ignore[attr-defined]
    return build_tracer


def _make_submit(original: _Hook) -> _Hook:
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if STACK:
            fn = submitted_for(STACK[-1], fn)
        return original(self, fn, *args, **kwargs)

    submit.__wrapped__ = original  # type: ignore[attr-defined]
    return submit


def _make_trace_task(original: _Hook) -> _Hook:
    # The worker's thread/solo pools run ``trace_task``, which reuses ``task.__trace__``
    # when it is already built (e.g. by a worker started before this test): instrument
    # the task so that tracer is rebuilt through our build_tracer.
    def trace_task(task: Any, *args: Any, **kwargs: Any) -> Any:
        if STACK and type(task) not in _recording_classes:
            instrument(task)
        return original(task, *args, **kwargs)

    trace_task.__wrapped__ = original  # type: ignore[attr-defined]
    return trace_task


def _wrap_tracer(tracer: _Hook, name: str, eager: bool, propagate: bool) -> _Hook:
    # Only tracers whose executions the assertions must know about: worker runs (waited
    # for) and propagating eager runs (explained in failure hints).
    def traced(uuid: Any, args: Any, kwargs: Any, request: Any = None) -> Any:
        recorder = STACK[-1] if STACK else None
        if recorder is None or (LEFT_RUNNING and not counts_for(recorder, _current_thread())):
            return tracer(uuid, args, kwargs, request)
        task_id = str(uuid)
        recorder.execution_started(task_id, name, eager, propagate)
        try:
            return tracer(uuid, args, kwargs, request)
        except Exception:
            raise
        except BaseException as exc:
            # Celery's tracer lets it through: a solo worker dies of it, a threads pool
            # loses the task, and result.get() never returns.  The live worker reports it.
            if not eager:
                recorder.execution_escaped(task_id, name, exc)
            raise
        finally:
            if not eager:
                recorder.execution_finished(task_id)

    return traced


# -- task classes ------------------------------------------------------------------------
def instrument(task: Any) -> None:
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
    for callback in BEFORE_INSTRUMENT:
        callback(task)
    with _lock:
        cls = type(task)
        if cls in _recording_classes or not STACK:
            return
        recorder = STACK[-1]
        sub = _recording_subclass(cls, recorder)
        if recorder.watch_overrides:
            overrides.watch(cls, recorder)
        saved_trace = task.__dict__.get("__trace__", _MISSING)
        recorder.instrumented[id(task)] = (task, cls, saved_trace)
        task.__class__ = sub
        # A tracer cached before recording began binds the hooks it saw then: rebuild it.
        task.__dict__["__trace__"] = None


def restore_tasks(recorder: HookRecorder) -> None:
    """Give every task instrumented under ``recorder`` its class and ``__trace__`` back."""
    with _lock:
        for task, cls, saved_trace in recorder.instrumented.values():
            sub = type(task)
            task.__class__ = cls
            _recording_classes.discard(sub)
            if saved_trace is _MISSING:
                task.__dict__.pop("__trace__", None)
            else:
                task.__dict__["__trace__"] = saved_trace
        recorder.instrumented.clear()
    cooperative.restore(recorder)
    overrides.restore(recorder)


def is_recording_class(cls: type) -> bool:
    """Whether ``cls`` is a recording subclass swapped in now."""
    return cls in _recording_classes


def _skip_subclass_hook(cls: type, /, **kwargs: Any) -> None:
    """Stands in for the parents' ``__init_subclass__`` while a recording class is made."""


_NO_SUBCLASS_HOOK: Any = classmethod(_skip_subclass_hook)


def _recording_subclass(cls: type, recorder: HookRecorder) -> type:
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__celerybase_original__": cls,
    }
    # Not type(...): the user's metaclass and __init_subclass__ would see the recording
    # class as one more subclass of theirs (a registry would gain one per test).
    with _patching.patched(cls, "__init_subclass__", _NO_SUBCLASS_HOOK, owner=OWNER):
        sub = type.__new__(type(cls), cls.__name__, (cls,), namespace)
    chains = cooperative.chains(cls, recorder)
    for hook in HOOKS:
        setattr(sub, hook, _HookDescriptor(hook, sub, chains.get(hook)))
    _recording_classes.add(sub)
    return sub


class _HookDescriptor:
    """A data descriptor standing in for a hook: returns a recording wrapper.

    Being a data descriptor it wins over instance attributes, so an instance-level
    override (``mocker.spy(task, "on_success")``) is wrapped too; assignments and
    deletions go to the instance ``__dict__`` so such overrides keep working and are
    left as the user set them when the original class is restored.
    """

    __slots__ = ("cache", "chain", "hook", "owner")

    def __init__(self, hook: str, owner: type, chain: tuple[type, ...] | None) -> None:
        self.hook = hook
        self.owner = owner
        # The overriding classes when the hook has several (see .cooperative), else None.
        self.chain = chain
        # Eager apply() builds a tracer (so reads every hook) per call: reuse the wrapper
        # while the hook it wraps is the same function.  Keyed by id(task): the subclass
        # owning this descriptor lives only while its tasks are instrumented.
        self.cache: dict[int, tuple[Any, Any]] = {}

    def __get__(self, task: Any, objtype: Any = None) -> Any:
        if task is None:
            return getattr(super(self.owner, objtype), self.hook)
        hook = self.hook
        override = task.__dict__.get(hook, _MISSING)
        if override is not _MISSING:
            return _override_wrapper(hook, task, override)
        inner = getattr(super(self.owner, task), hook)
        func = getattr(inner, "__func__", inner)
        cached = self.cache.get(id(task))
        if cached is not None and cached[0] is func:
            return cached[1]
        recorded = _hook_wrapper(hook, task, inner)
        if self.chain is not None:
            collect = cooperative.collecting(hook, str(task.name), self.chain, _record_raw)
            recorded = collect(recorded)
        self.cache[id(task)] = (func, recorded)
        return recorded

    def __set__(self, task: Any, value: Any) -> None:
        task.__dict__[self.hook] = value

    def __delete__(self, task: Any) -> None:
        try:
            del task.__dict__[self.hook]
        except KeyError:
            raise AttributeError(self.hook) from None


def _hook_wrapper(hook: str, task: Any, inner: _Hook) -> _Hook:
    """The recording wrapper of a hook with no instance-level override.

    It runs for every hook call of every task while recording: it stores the raw call
    (the recorder builds the ``HookCall`` when it is read) and calls the hook.
    """
    name = str(task.name)
    key = (id(task), hook)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        if STACK and not (_overriding and _guarded(key)):
            # HookRecorder.add_hook, inlined: this is the recorder's hot path.
            thread = ACTIVE_THREADS.get(_get_ident()) or _current_thread()
            if LEFT_RUNNING and not counts_for(STACK[-1], thread):
                STACK[-1].stray(thread, name)
            else:
                STACK[-1].raw.extend((hook, name, args, kwargs or None, _clock(), thread))
        return inner(*args, **kwargs)

    recorded.__wrapped__ = inner  # type: ignore[attr-defined]
    recorded.__name__ = hook
    return recorded


def _override_wrapper(hook: str, task: Any, inner: _Hook) -> _Hook:
    key = (id(task), hook)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        # An override created while the class was swapped wraps a recording wrapper
        # already (mocker.spy captures it): record only once.
        active = _guard.__dict__.setdefault("active", set())
        if key in active:
            return inner(*args, **kwargs)
        if STACK:
            STACK[-1].add_hook(hook, str(task.name), args, kwargs)
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


def _record_raw(event: tuple[Any, ...]) -> None:
    if STACK:
        STACK[-1].add(event)


def _guarded(key: tuple[int, str]) -> bool:
    active: set[tuple[int, str]] | None = _guard.__dict__.get("active")
    return active is not None and key in active
