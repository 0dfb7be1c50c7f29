"""Which overrides of a hook ran, for task classes composed of several bases (no pytest).

A composed class (``class ShopTask(LoggingTask, MetricsTask, AuditTask)``) relies on every
override calling ``super()``: one that forgets silently switches off every base after it
in the MRO.  When a task class has two or more overrides of a hook (below ``celery.Task``),
each override function is wrapped, while recording, to note that it ran; the recording
wrapper of that hook collects the notes of one hook call and records them as a
``cooperation`` event.  Classes with at most one override per hook (plain tasks, a single
custom base) are left alone: recording them costs nothing more.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from pytest_celerybase import _patching
from pytest_celerybase.recorder.records import COOPERATION, HOOK_PARAMS

__all__ = ["COUNTED", "chains", "collecting", "restore"]

#: Marks a wrapper installed here (the leak guard looks for it).
COUNTED = "__celerybase_counted__"

_lock = threading.Lock()
_local = threading.local()
# (class, hook) -> the patch wrapping its function, owned by the recorder whose
# deactivation puts the function back
_wrapped: dict[tuple[type, str], _patching.Patch] = {}


def _overrides(cls: type, hook: str) -> list[type]:
    from celery import Task

    return [
        klass
        for klass in cls.__mro__
        if hook in vars(klass)
        and klass is not Task
        and "__celerybase_original__" not in vars(klass)  # a recording subclass
    ]


def chains(cls: type, owner: object) -> dict[str, tuple[type, ...]]:
    """Per hook, the classes of ``cls``'s MRO overriding it, for hooks with two or more.

    Their override functions are wrapped (once, until :func:`restore` for ``owner``) so
    that each run is noted.  A hook whose overrides are not all plain functions (e.g. patched with a
    mock) is left out.
    """
    found: dict[str, tuple[type, ...]] = {}
    for hook in HOOK_PARAMS:
        classes = _overrides(cls, hook)
        if len(classes) < 2:
            continue
        functions = [vars(klass)[hook] for klass in classes]
        if not all(inspect.isfunction(f) for f in functions):
            continue
        with _lock:
            for klass, function in zip(classes, functions, strict=True):
                if getattr(function, COUNTED, False):
                    continue
                _wrapped[(klass, hook)] = _patching.apply(
                    klass, hook, _counted(klass, function), owner=owner
                )
        found[hook] = tuple(classes)
    return found


def _counted(klass: type, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def counted(*args: Any, **kwargs: Any) -> Any:
        frames = _local.__dict__.get("frames")
        if frames:
            frames[-1].append(klass)
        return function(*args, **kwargs)

    setattr(counted, COUNTED, True)
    return counted


def collecting(
    hook: str, task_name: str, chain: tuple[type, ...], record: Callable[[tuple[Any, ...]], None]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a recording hook wrapper: note which overrides ran during each of its calls."""

    # Class names, not classes: a worker child sends them to the test process.
    names = tuple(klass.__qualname__ for klass in chain)

    def wrap(recorded: Callable[..., Any]) -> Callable[..., Any]:
        def cooperating(*args: Any, **kwargs: Any) -> Any:
            frames = _local.__dict__.setdefault("frames", [])
            ran: list[type] = []
            frames.append(ran)
            try:
                return recorded(*args, **kwargs)
            finally:
                frames.pop()
                values = dict(zip(HOOK_PARAMS[hook], args, strict=False))
                values.update(kwargs)
                task_id = values.get("task_id")
                record(
                    (COOPERATION, task_name, None if task_id is None else str(task_id),
                     (hook, names, tuple(k.__qualname__ for k in ran)))
                )  # fmt: skip

        return cooperating

    return wrap


def restore(owner: object = None) -> None:
    """Put back the override functions wrapped for ``owner`` (every one with ``None``)."""
    with _lock:
        _patching.release(_wrapped, owner)
