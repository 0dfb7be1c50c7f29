"""Leak guard: every test leaves Celery and the resource bindings exactly as it found them.

A pytest plugin for this project's own suites (``tests/conftest.py`` loads it; the
examples' conftest can too; pytester tests load it into inner sessions with
``-p tests.leak_guard``).  Its ``pytest_runtest_protocol`` wrapper runs *outside* the
celerybase plugin's recording wrapper (``tryfirst``), snapshots before setup and compares
after teardown:

* the class and cached ``__trace__`` of every task of every live Celery app, and that no
  task anywhere still has a recording subclass;
* ``celery.app.trace.build_tracer``/``trace_task`` and every copy of them bound in a
  ``celery.*`` module (the worker's consumer binds ``build_tracer`` at import);
* the current and default app, Celery's shared-task finalizers and its "inside a
  worker" flag (``result.get()`` refuses to block when set);
* for every Celery app alive before the test (``eager_app``'s cached apps, a project's
  app, module-level apps): its configuration (every settings map, and settings mutated
  in place), its task registry, each task's instance attributes and class attributes
  (Celery's own caches ``__trace__``/``_exec_options`` aside), and its cached backend,
  connection pool and producer pool;
* every patch the plugin made (:func:`pytest_celerybase._patching.active`: Celery's
  tracer and signal senders, ``Celery.send_task``, ``Settings.task_always_eager``, result
  backends' ``on_task_call``, prefork's sleeps, hook functions wrapped by the cooperative
  check, base ``__call__``/``run`` wrapped for lifecycle coverage), the recorder stack
  and recording classes, the receivers of every task signal, ``celery.app.trace.send_*``,
  ``Celery.send_task`` and ``Settings.task_always_eager`` themselves, the sent-task
  capture's stack, and the worker's process-global set of revoked task ids (``run()``
  checks expiry with it);
* the bases' bindings (:mod:`pytest_celerybase.resources.bindings`: engine, Redis/fake Redis,
  metrics sink, HTTP session);
* ``responses`` activation (``HTTPAdapter.send`` and the default mock's patcher);
* the worker's shutdown flags, and threads and child processes started by the test
  (live workers, a prefork pool's children).

A difference is reported as an extra failing *teardown* report of the offending test
(so its node id is shown, the run fails, and it works under xdist), then the state is
put back so one leak does not fail every following test.  If the test protocol itself
was interrupted (``KeyboardInterrupt``, ``pytest.exit``), pytest tears the fixtures
down only at session end, so the comparison is deferred to ``pytest_sessionfinish``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_celerybase import _patching
from pytest_celerybase.apps.celery_globals import CeleryGlobals
from pytest_celerybase.recorder import active, cooperative, instrument, overrides
from pytest_celerybase.recorder.records import HOOKS, SIGNALS
from pytest_celerybase.sent_tasks import capture

_TRACE_ATTRS = ("build_tracer", "trace_task")
_INSTRUMENT = "pytest_celerybase.recorder.instrument"
_THREAD_GRACE = 2.0  # seconds a thread started by the test gets to finish after teardown
_CHILD_GRACE = 0.5  # seconds a child process gets to exit after teardown


@dataclass
class Snapshot:
    """Global state relevant to isolation; compared field by field."""

    values: dict[str, Any] = field(default_factory=dict)
    apps: list[Any] = field(default_factory=list)
    tasks: dict[tuple[int, str], tuple[Any, type, Any]] = field(default_factory=dict)
    threads: set[threading.Thread] = field(default_factory=set)
    children: set[int] = field(default_factory=set)  # child processes of this process
    bound: dict[str, Any] = field(default_factory=dict)  # celery.*.build_tracer/trace_task
    app_states: list[AppSnapshot] = field(default_factory=list)


def _identity(value: Any) -> Any:
    return ("id", id(value), value)


def take() -> Snapshot:
    """Snapshot the state the guard checks (imports Celery and requests if needed)."""
    from celery import Celery, _state, signals
    from celery.app import trace
    from celery.app.utils import Settings

    snap = Snapshot()
    v = snap.values
    v["celery.Celery.send_task"] = Celery.send_task
    v["celery.app.utils.Settings.task_always_eager"] = Settings.__dict__.get("task_always_eager")
    v["patches (pytest_celerybase._patching)"] = _patching.active()
    v["sent_tasks capture STACK"] = tuple(capture.STACK)
    for attr in _TRACE_ATTRS:
        v[f"celery.app.trace.{attr}"] = getattr(trace, attr)
    v["celery globals"] = CeleryGlobals.save()
    v["recorder STACK"] = tuple(active.STACK)
    v["recording classes"] = frozenset(instrument._recording_classes)
    for signal in SIGNALS:
        v[f"{signal} receivers"] = tuple(
            key for key, _ in getattr(signals, signal).receivers
        )
    for sender in ("send_prerun", "send_success", "send_postrun"):
        v[f"celery.app.trace.{sender}"] = getattr(trace, sender, None)
    bindings = _bindings_module()
    if bindings is not None:
        v["pytest_celerybase.resources.bindings"] = dict(bindings.snapshot())
    adapter = _http_adapter()
    if adapter is not None:
        v["requests.adapters.HTTPAdapter.send"] = adapter.send
    default_mock = _responses_default_mock()
    if default_mock is not None:
        v["responses default mock patcher"] = default_mock._patcher
    worker_state = sys.modules.get("celery.worker.state")
    if worker_state is not None:
        v["celery.worker.state.should_stop"] = worker_state.should_stop
        v["celery.worker.state.should_terminate"] = worker_state.should_terminate
        v["celery.worker.state.revoked"] = frozenset(worker_state.revoked)
    snap.apps = list(_state._get_active_apps())
    v["result backends with on_task_call replaced"] = tuple(
        app.main
        for app in snap.apps
        if "on_task_call" in getattr(app.__dict__.get("_backend"), "__dict__", {})
    )
    for app in snap.apps:
        for name, task in list(dict.items(app._tasks)):
            snap.tasks[(id(app), name)] = (task, type(task), task.__dict__.get("__trace__"))
    snap.app_states = [AppSnapshot.take(app) for app in snap.apps]
    snap.threads = set(threading.enumerate())
    snap.children = set(child_processes())
    for name, module in list(sys.modules.items()):
        if name.startswith("celery") and module is not None and name != trace.__name__:
            for attr in _TRACE_ATTRS:
                value = module.__dict__.get(attr)
                if value is not None and callable(value):
                    snap.bound[f"{name}.{attr}"] = value
    return snap


def child_processes() -> list[int]:
    """Pids of this process's child processes, zombies included (Linux ``/proc``)."""
    me = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(entry))
    return sorted(found)


def _unwrapped(func: Any) -> Any:
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    return func


def _bindings_module() -> Any:
    try:
        from pytest_celerybase.resources import bindings
    except ImportError:  # pragma: no cover - before the bases land
        return None
    return bindings


def _http_adapter() -> Any:
    try:
        from requests.adapters import HTTPAdapter
    except ImportError:  # pragma: no cover
        return None
    return HTTPAdapter


def _responses_default_mock() -> Any:
    try:
        import responses
    except ImportError:  # pragma: no cover
        return None
    return responses._default_mock


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, CeleryGlobals) and isinstance(b, CeleryGlobals):
        return vars_of(a) == vars_of(b)
    if isinstance(a, (frozenset, tuple, dict)):
        return bool(a == b)
    return a is b


def _change(old: Any, new: Any) -> str:
    if isinstance(old, CeleryGlobals) and isinstance(new, CeleryGlobals):
        return _change(vars_of(old), vars_of(new))
    if isinstance(old, frozenset) and isinstance(new, frozenset):
        parts = [f"+{sorted(map(repr, new - old))}" if new - old else ""]
        parts.append(f"-{sorted(map(repr, old - new))}" if old - new else "")
        return " ".join(p for p in parts if p)
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
        return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(keys))
    return f"{old!r} -> {new!r}"


def vars_of(globals_: CeleryGlobals) -> dict[str, Any]:
    found = {f.name: getattr(globals_, f.name) for f in dataclasses.fields(globals_) if f.compare}
    shared = found.pop("shared", None)
    if shared is not None:
        found["finalizers"] = shared.finalizers
    return found


def _declared_by_imports(before: CeleryGlobals, after: CeleryGlobals) -> CeleryGlobals:
    """``after`` without the shared tasks declared by modules first imported during the
    test: those stay declared on purpose (the module stays imported)."""
    if before.shared is None or after.shared is None:
        return after
    added = after.shared.finalizers - before.shared.finalizers
    kept = {cb for cb in added if before.shared.imported_since(cb)}
    if not kept:
        return after
    shared = dataclasses.replace(after.shared, finalizers=after.shared.finalizers - kept)
    return dataclasses.replace(after, shared=shared)


def compare(before: Snapshot, after: Snapshot) -> list[str]:
    """One line per difference between two snapshots (empty: nothing leaked)."""
    problems: list[str] = []
    for key, old in before.values.items():
        new = after.values.get(key, old)
        if isinstance(old, CeleryGlobals) and isinstance(new, CeleryGlobals):
            new = _declared_by_imports(old, new)
        if not _same(old, new):
            problems.append(f"{key}: {_change(old, new)}")
    # A celery module imported during the test binds whatever the trace module held then:
    # it must be what the trace module held before the test (or Celery's original).
    for key, value in after.bound.items():
        if key in before.bound:
            continue  # compared below
        attr = key.rpartition(".")[2]
        allowed = before.values[f"celery.app.trace.{attr}"]
        if value is not allowed and value is not _unwrapped(allowed):
            problems.append(f"{key} (imported during the test) is {value!r}")
    for key, old in before.bound.items():
        new = after.bound.get(key, old)
        if new is not old:
            problems.append(f"{key}: {old!r} -> {new!r}")
    for app_state in before.app_states:
        problems.extend(app_state.compare())
    for (_, name), (task, cls, saved_trace) in before.tasks.items():
        if type(task) is not cls:
            problems.append(f"task {name!r}: class {cls!r} -> {type(task)!r}")
        trace = task.__dict__.get("__trace__")
        if trace is not saved_trace:
            problems.append(f"task {name!r}: __trace__ {saved_trace!r} -> {trace!r}")
    wrapped: set[str] = set()  # hook functions the cooperative check left wrapped
    for app, name, task in _all_tasks():
        if "__celerybase_original__" in type(task).__dict__:
            problems.append(
                f"task {name!r} of app {app.main!r} still has the recording class {type(task)!r}"
            )
        for klass in type(task).__mro__:
            for hook in (*HOOKS, *overrides.CALLS):
                if _recorders_wrapper(vars(klass).get(hook)):
                    wrapped.add(f"{klass.__qualname__}.{hook}")
    before_patches = {id(p) for p in before.values["patches (pytest_celerybase._patching)"]}
    for patch in after.values["patches (pytest_celerybase._patching)"]:
        if id(patch) not in before_patches and _recorders_wrapper(patch.value):
            wrapped.add(f"{patch.target.__qualname__}.{patch.name}")
    problems.extend(f"{name} is still wrapped by the recorder" for name in sorted(wrapped))
    new_children = sorted(after.children - before.children)
    if new_children:
        problems.append(
            "child processes started by the test still running: "
            + ", ".join(map(str, new_children))
        )
    new_threads = [t for t in after.threads - before.threads if t.is_alive()]
    if new_threads:
        problems.append(
            "threads started by the test still running: "
            + ", ".join(sorted(t.name for t in new_threads))
        )
    return problems


def _recorders_wrapper(value: Any) -> bool:
    """Whether ``value`` wraps a user's method for the recorder (the cooperative check's
    hook wrappers, lifecycle coverage's ``__call__``/``run`` wrappers)."""
    return bool(
        getattr(value, cooperative.COUNTED, False) or getattr(value, overrides.WATCHED, False)
    )


def _all_tasks() -> Iterator[tuple[Any, str, Any]]:
    from celery import _state

    for app in list(_state._get_active_apps()):
        # dict's own items(): listing a lazy registry would create Celery's built-ins.
        for name, task in list(dict.items(app._tasks)):
            yield app, name, task


def restore(before: Snapshot) -> None:
    """Put back what :func:`take` saw, so one leak does not fail every later test."""
    from celery.app import trace

    v = before.values
    _restore_patches(v)
    _restore_outbox(v)
    for attr in _TRACE_ATTRS:
        setattr(trace, attr, v[f"celery.app.trace.{attr}"])
    for sender in ("send_prerun", "send_success", "send_postrun"):
        if v.get(f"celery.app.trace.{sender}") is not None:
            setattr(trace, sender, v[f"celery.app.trace.{sender}"])
    for name, module in list(sys.modules.items()):
        if name.startswith("celery") and module is not None and name != trace.__name__:
            for attr in _TRACE_ATTRS:
                key = f"{name}.{attr}"
                if key in before.bound:
                    setattr(module, attr, before.bound[key])
                elif getattr(module.__dict__.get(attr), "__module__", "") == _INSTRUMENT:
                    setattr(module, attr, v[f"celery.app.trace.{attr}"])
    v["celery globals"].restore()
    for app_state in before.app_states:
        app_state.restore()
    bindings = _bindings_module()
    if bindings is not None and "pytest_celerybase.resources.bindings" in v:
        bindings.restore(v["pytest_celerybase.resources.bindings"])
    adapter = _http_adapter()
    if adapter is not None and "requests.adapters.HTTPAdapter.send" in v:
        adapter.send = v["requests.adapters.HTTPAdapter.send"]
    default_mock = _responses_default_mock()
    if default_mock is not None and "responses default mock patcher" in v:
        default_mock._patcher = v["responses default mock patcher"]
    for task, cls, saved_trace in before.tasks.values():
        if type(task) is not cls:
            task.__class__ = cls
        task.__dict__["__trace__"] = saved_trace
        if saved_trace is None:
            task.__dict__.pop("__trace__", None)
    for _, _, task in _all_tasks():
        original = type(task).__dict__.get("__celerybase_original__")
        if original is not None:
            task.__class__ = original


def _restore_patches(v: dict[str, Any]) -> None:
    """Undo the patches made since the snapshot (newest first), whoever's they are."""
    before = {id(p) for p in v["patches (pytest_celerybase._patching)"]}
    for patch in reversed(_patching.active()):
        if id(patch) not in before:
            if not _patching.undo(patch):
                _patching.forget(patch)


def _restore_outbox(v: dict[str, Any]) -> None:
    from celery import Celery, _state
    from celery.app.utils import Settings

    Celery.send_task = v["celery.Celery.send_task"]
    if v["celery.app.utils.Settings.task_always_eager"] is None:
        if "task_always_eager" in Settings.__dict__:
            del Settings.task_always_eager
    else:
        Settings.task_always_eager = v["celery.app.utils.Settings.task_always_eager"]
    if not v["sent_tasks capture STACK"]:
        from celery import signals

        signals.before_task_publish.disconnect(dispatch_uid=capture._BEFORE_UID)
        signals.after_task_publish.disconnect(dispatch_uid=capture._AFTER_UID)
    capture.STACK[:] = v["sent_tasks capture STACK"]
    for app in list(_state._get_active_apps()):
        backend = app.__dict__.get("_backend")
        if app.main not in v["result backends with on_task_call replaced"]:
            getattr(backend, "__dict__", {}).pop("on_task_call", None)
    worker_state = sys.modules.get("celery.worker.state")
    if worker_state is not None and "celery.worker.state.revoked" in v:
        for task_id in frozenset(worker_state.revoked) - v["celery.worker.state.revoked"]:
            worker_state.revoked.discard(task_id)


def _wait_for_threads(before: Snapshot) -> None:
    deadline = time.monotonic() + _THREAD_GRACE
    for thread in threading.enumerate():
        if thread in before.threads:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    children_deadline = min(deadline, time.monotonic() + _CHILD_GRACE)
    while set(child_processes()) - before.children and time.monotonic() < children_deadline:
        time.sleep(0.01)


def _check(before: Snapshot, wait: Callable[[Snapshot], None] = _wait_for_threads) -> list[str]:
    after = take()
    if after.threads - before.threads or after.children - before.children:
        wait(before)
        after = take()
    problems = compare(before, after)
    if problems:
        restore(before)
    return problems


# -- apps --------------------------------------------------------------------------------
# Celery's own per-task caches, set on first use by any caller (not a test's change).
_TASK_CACHES = frozenset({"__trace__", "_exec_options"})


def _original(task: Any) -> type:
    cls = type(task)
    return cls.__dict__.get("__celerybase_original__", cls)  # type: ignore[no-any-return]


def _attrs(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if k not in _TASK_CACHES}


def _loaded_conf(app: Any) -> Any:
    # Not ``app.conf``: reading a pending configuration loads it.  Celery configuring an
    # app lazily during a test is not a leak (nor is finalizing it: pytest's collector
    # resolves a module's shared-task proxies, which finalizes the current app); a
    # configuration or registry changed after that is.
    return app.__dict__.get("_conf") if app.configured else None


def _caches(app: Any) -> dict[str, Any]:
    amqp = app.__dict__.get("amqp")
    local = app.__dict__.get("_local")
    return {
        "backend (shared)": app.__dict__.get("_backend_cache"),
        "backend (this thread)": getattr(local, "backend", None),
        "connection pool": app.__dict__.get("_pool"),
        "producer pool": getattr(amqp, "_producer_pool", None),
        "conf": _loaded_conf(app),
    }


@dataclass
class AppSnapshot:
    """One app's restore points: settings, registry, task attributes, cached objects."""

    app: Any
    map_list: list[Any]
    maps: list[tuple[dict[str, Any], dict[str, Any]]]
    in_place: dict[tuple[int, str], Any]
    finalized: bool
    registry: dict[str, Any]
    tasks: dict[str, tuple[Any, dict[str, Any], type, dict[str, Any]]]
    caches: dict[str, Any]
    # Users' classes above each task's own class (up to celery.Task): their attributes
    # and the dict/list/set values they hold, compared by contents.
    bases: dict[type, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def take(cls, app: Any) -> AppSnapshot:
        conf = _loaded_conf(app)
        # Only real dicts: a ``config_from_object`` layer is a view over the user's object.
        map_list = list(conf.maps) if conf is not None else []
        maps = [(m, dict(m)) for m in map_list if type(m) is dict]
        in_place = {}
        for i, (mapping, _) in enumerate(maps):
            for key, value in mapping.items():
                if isinstance(value, (dict, list, set)):
                    in_place[(i, key)] = copy.deepcopy(value)
        registry = dict(dict.items(app._tasks)) if app.finalized else {}
        tasks = {
            name: (task, _attrs(task), _original(task), _attrs(_original(task)))
            for name, task in registry.items()
        }
        bases = {
            klass: (_base_attrs(klass), _containers(klass))
            for task in registry.values()
            for klass in _user_bases(_original(task))
        }
        return cls(
            app, map_list, maps, in_place, app.finalized, registry, tasks, _caches(app), bases
        )

    def compare(self) -> list[str]:
        app = self.app
        where = f"app {app.main!r}"
        problems = []
        conf = _loaded_conf(app)
        now = list(conf.maps) if conf is not None else []
        if self.caches["conf"] is not None and (
            len(now) != len(self.map_list)
            or any(a is not b for a, b in zip(now, self.map_list, strict=False))
        ):
            problems.append(f"{where}: configuration maps replaced or added")
        for mapping, saved in self.maps:
            change = _dict_change(saved, mapping)
            if change:
                problems.append(f"{where}: setting {change}")
        for (i, key), value in self.in_place.items():
            now = self.maps[i][0].get(key)
            if now != value:
                problems.append(f"{where}: setting {key} changed in place: {value!r} -> {now!r}")
        registry = dict(dict.items(app._tasks)) if self.finalized else self.registry
        added = registry.keys() - self.registry.keys()
        removed = self.registry.keys() - registry.keys()
        if added or removed:
            problems.append(f"{where}: tasks +{sorted(added)} -{sorted(removed)}")
        for name, (task, attrs, cls, cls_attrs) in self.tasks.items():
            change = _dict_change(attrs, _attrs(task))
            if change:
                problems.append(f"{where}: task {name!r} attribute {change}")
            change = _dict_change(cls_attrs, _attrs(cls))
            if change:
                problems.append(f"{where}: task {name!r} class attribute {change}")
        for klass, (attrs, containers) in self.bases.items():
            name = f"{where}: base {klass.__qualname__}"
            change = _dict_change(attrs, _base_attrs(klass))
            if change:
                problems.append(f"{name} class attribute {change}")
            for key, value in containers.items():
                now = vars(klass).get(key)
                if now is attrs.get(key) and now != value:
                    problems.append(f"{name}.{key} changed in place: {value!r} -> {now!r}")
        for what, old in self.caches.items():
            new = _caches(app)[what]
            if new is not old and not (what == "conf" and old is None):
                problems.append(f"{where}: {what} {old!r} -> {new!r}")
        return problems

    def restore(self) -> None:
        app = self.app
        for mapping, saved in self.maps:
            mapping.clear()
            mapping.update(saved)
        for (i, key), value in self.in_place.items():
            now = self.maps[i][0].get(key)
            if now != value:  # refilled in place: the setting keeps its identity
                now.clear()
                now.update(copy.deepcopy(value)) if not isinstance(now, list) else now.extend(
                    copy.deepcopy(value)
                )
        conf = self.caches["conf"]
        if conf is not None:
            conf.maps[:] = self.map_list
            conf.defaults[:] = self.map_list[1:]
            app.__dict__["_conf"] = conf
        app.__dict__["_backend_cache"] = self.caches["backend (shared)"]
        app.__dict__["_pool"] = self.caches["connection pool"]
        local = app.__dict__.get("_local")
        if local is not None:
            local.backend = self.caches["backend (this thread)"]
        amqp = app.__dict__.get("amqp")
        if amqp is not None:
            amqp._producer_pool = self.caches["producer pool"]
        if self.finalized:
            dict.clear(app._tasks)
            dict.update(app._tasks, self.registry)
        for task, attrs, cls, cls_attrs in self.tasks.values():
            for key in [k for k in _attrs(task) if k not in attrs]:
                del task.__dict__[key]
            task.__dict__.update(attrs)
            for key in [k for k in _attrs(cls) if k not in cls_attrs]:
                delattr(cls, key)
            for key, value in cls_attrs.items():
                if cls.__dict__.get(key) is not value:
                    setattr(cls, key, value)
        for klass, (attrs, containers) in self.bases.items():
            for key in [k for k in _base_attrs(klass) if k not in attrs]:
                delattr(klass, key)
            for key, value in attrs.items():
                if klass.__dict__.get(key) is not value:
                    setattr(klass, key, value)
            for key, value in containers.items():
                live = attrs[key]
                live.clear()
                live.update(value) if isinstance(live, (dict, set)) else live.extend(value)


def _user_bases(cls: type) -> list[type]:
    """The classes of ``cls``'s MRO after it and before ``celery.Task`` that users wrote."""
    from celery import Task

    found = []
    for klass in cls.__mro__[1:]:
        if klass is Task:
            break
        if klass.__module__.partition(".")[0] not in ("celery", "kombu", "billiard"):
            found.append(klass)
    return found


def _base_attrs(klass: type) -> dict[str, Any]:
    """A base's attributes but those it keeps across tests on purpose (celerybase_keep)."""
    from pytest_celerybase.apps.tracked import keep_names

    try:
        keep = keep_names(klass)
    except TypeError:  # the plugin fails the test's setup for it
        keep = frozenset()
    return {k: v for k, v in _attrs(klass).items() if k not in keep}


def _containers(klass: type) -> dict[str, Any]:
    return {
        key: copy.copy(value)
        for key, value in _base_attrs(klass).items()
        if isinstance(value, (dict, list, set)) and not key.startswith("__")
    }


def _dict_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, _GONE) is not new.get(k, _GONE))
    return ", ".join(f"{k}: {old.get(k, _GONE)!r} -> {new.get(k, _GONE)!r}" for k in keys)


class _Gone:
    def __repr__(self) -> str:
        return "<unset>"


_GONE = _Gone()


# -- pytest hooks ------------------------------------------------------------------------
_DEFERRED = pytest.StashKey[list[tuple[str, Snapshot]]]()
_HEADER = "leak guard: {nodeid} left global state changed (after teardown):"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_DEFERRED] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    # Celery creates its fallback default app on first use: do that before the snapshot
    # so the first test touching ``current_app`` is not blamed for it.
    from celery import _state

    _state.get_current_app()
    before = take()
    try:
        result = yield
    except BaseException:
        # Interrupted: the fixtures are torn down at session end; check then.
        item.config.stash[_DEFERRED].append((item.nodeid, before))
        raise
    problems = _check(before)
    if problems:
        _report(item, problems)
    return result


def _report(item: pytest.Item, problems: list[str]) -> None:
    message = "\n".join([_HEADER.format(nodeid=item.nodeid), *(f"  - {p}" for p in problems)])
    report = pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords=dict.fromkeys(item.keywords, 1),
        outcome="failed",
        longrepr=message,
        when="teardown",
        sections=[],
        duration=0.0,
        start=time.time(),
        stop=time.time(),
        user_properties=[],
    )
    item.ihook.pytest_runtest_logreport(report=report)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    result = yield  # the runner tears down what interrupted tests left set up
    deferred = session.config.stash.get(_DEFERRED, [])
    lines: list[str] = []
    for nodeid, before in deferred:
        problems = _check(before)
        if problems:
            lines.append(_HEADER.format(nodeid=nodeid))
            lines.extend(f"  - {p}" for p in problems)
        else:
            lines.append(f"leak guard: {nodeid} was interrupted; state restored")
    deferred.clear()
    if lines:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:  # pragma: no cover - -p no:terminal
                print(line, file=sys.stderr)
        if any(line.startswith("leak guard:") and "changed" in line for line in lines):
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result
