"""Which classes of a task's MRO override its lifecycle methods, and noting when a base
class's ``__call__``/``run`` override runs (no pytest).

Lifecycle coverage reports every override of a hook along a task class's MRO below
``celery.Task``, and of ``__call__``/``run`` where a *base* overrides them (a task's own
class always defines ``run``: ``@app.task`` generates it).  Hook calls are recorded
anyway; ``__call__`` and ``run`` are not, so while a recorder made with
``watch_overrides=True`` is the innermost one, the base classes' overrides of those two
are wrapped to record an :data:`~.records.OVERRIDE_RAN` event, and put back when it is
deactivated.  Nothing here runs for a recorder that does not ask for it.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any

from pytest_celerybase import _patching
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.recorder.records import HOOK_PARAMS, HOOKS, OVERRIDE_RAN

__all__ = ["CALLS", "METHODS", "WATCHED", "class_key", "override_chains", "restore", "watch"]

#: The methods whose overrides count only in base classes of a task's class.
CALLS: tuple[str, ...] = ("__call__", "run")
#: Every method lifecycle coverage reports, in report order.
METHODS: tuple[str, ...] = (*HOOKS, *CALLS)
_METHOD_SET = frozenset(METHODS)
#: Marks a wrapper installed here (the leak guard looks for it).
WATCHED = "__celerybase_watched__"

_lock = threading.Lock()
# (class, method) -> the patch wrapping its function, owned by the recorder whose
# deactivation puts the function back
_wrapped: dict[tuple[type, str], _patching.Patch] = {}


def class_key(cls: type) -> str:
    """How coverage names a class: ``"module.QualifiedName"``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def override_chains(cls: type) -> dict[str, tuple[type, ...]]:
    """Per method of :data:`METHODS`, the classes of ``cls``'s MRO before ``celery.Task``
    defining it, in MRO order (the first runs first); ``__call__`` and ``run`` only in
    strict bases of ``cls``.  A recording subclass stands for its original class."""
    from celery import Task

    original = vars(cls).get("__celerybase_original__")
    if isinstance(original, type):
        cls = original
    mro = cls.__mro__
    if Task not in mro:
        return {}
    chains: dict[str, list[type]] = {}
    # Classes after Task in the MRO are shadowed by Task's own no-op hooks: never overrides.
    for position, klass in enumerate(mro[: mro.index(Task)]):
        for method in _METHOD_SET.intersection(vars(klass)):
            if position > 0 or method in HOOK_PARAMS:
                chains.setdefault(method, []).append(klass)
    return {m: tuple(chains[m]) for m in METHODS if m in chains}


def watch(cls: type, owner: object) -> None:
    """Wrap the base classes' ``__call__``/``run`` overrides of ``cls`` (plain functions
    only) to record each run, until :func:`restore` for ``owner``."""
    for klass, method in _base_calls(cls):
        function = vars(klass).get(method)
        if not inspect.isfunction(function) or getattr(function, WATCHED, False):
            continue  # a mock, a staticmethod, or wrapped already (by an outer recorder)
        with _lock:
            _wrapped[(klass, method)] = _patching.apply(
                klass, method, _watched(klass, method, function), owner=owner
            )


# Per task class (weakly: a test's task classes go with it), where its strict bases
# override __call__/run: every test instruments the same classes again.
_BASE_CALLS: weakref.WeakKeyDictionary[type, tuple[tuple[type, str], ...]] = (
    weakref.WeakKeyDictionary()
)


def _base_calls(cls: type) -> tuple[tuple[type, str], ...]:
    found = _BASE_CALLS.get(cls)
    if found is None:
        from celery import Task

        mro = cls.__mro__
        # strict bases only: the task's own run is its body
        bases = mro[1 : mro.index(Task)] if Task in mro else ()
        found = tuple((k, m) for k in bases for m in CALLS if m in vars(k))
        _BASE_CALLS[cls] = found
    return found


def _watched(klass: type, method: str, function: Callable[..., Any]) -> Callable[..., Any]:
    key = class_key(klass)

    @functools.wraps(function)
    def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if STACK:
            STACK[-1].add((OVERRIDE_RAN, str(getattr(self, "name", "") or ""), key, method))
        return function(self, *args, **kwargs)

    setattr(watched, WATCHED, True)
    return watched


def restore(owner: object = None) -> None:
    """Put back the functions wrapped for ``owner`` (every one with ``None``)."""
    with _lock:
        _patching.release(_wrapped, owner)
