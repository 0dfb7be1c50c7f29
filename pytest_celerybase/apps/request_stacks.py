"""Celery's task request stacks, put back after each test (no pytest).

Each bound task class keeps a stack of requests per thread (``Task.request_stack``):
``task.request`` is its top.  Running a task pushes and pops it, but a test may call
``task.push_request(id=..., retries=2)`` to call ``task.run()`` or a hook directly, and
forget ``pop_request()``; the request then stays on the class, and every later test
reading ``task.request`` (or running code that does) sees that test's id, retries and
headers.  The stacks live on the classes of the tasks of every app, not only
``eager_app``'s, so :class:`RequestStacks` covers the tasks of every live app.  Only the
thread running the test is touched: another thread's stack (a pool thread running a task
now) is that task's own.  The plugin saves them before the first test and restores them
after every test, so each test starts from that.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["RequestStacks"]


class RequestStacks:
    """The requests the current thread had on each task's stack; :meth:`restore` puts
    every stack back to that (popping what was pushed since, pushing what was popped)."""

    def __init__(self, saved: dict[int, tuple[Any, tuple[Any, ...]]]) -> None:
        self._saved = saved

    @classmethod
    def save(cls) -> RequestStacks:
        """Snapshot the current thread's stacks (almost always all empty)."""
        saved = {}
        for stack in _busy_stacks():
            items = tuple(stack.stack)
            if items:
                saved[id(stack)] = (stack, items)
        return cls(saved)

    def restore(self) -> list[Any]:
        """Put every stack back as saved; the stacks that had to change."""
        stacks = {id(stack): stack for stack in _busy_stacks()}
        stacks.update((key, stack) for key, (stack, _) in self._saved.items())
        changed = []
        for key, stack in stacks.items():
            wanted = self._saved[key][1] if key in self._saved else ()
            items = tuple(stack.stack)
            if len(items) == len(wanted) and all(
                a is b for a, b in zip(items, wanted, strict=True)
            ):
                continue
            changed.append(stack)
            while len(stack):
                stack.pop()  # popping the last one also frees the thread's slot
            for request in wanted:
                stack.push(request)
        return changed


def _busy_stacks() -> list[Any]:
    """The request stacks of the task classes registered on live apps that hold a request
    in some thread (Celery's stack keeps every thread's in one dict, empty when none has
    one: the common case)."""
    global _by_registry
    _state = sys.modules.get("celery._state")
    if _state is None:
        return []  # Celery not imported: no task, no stack
    busy: list[Any] = []
    seen: dict[int, _Entry] = {}
    for app in list(_state._get_active_apps()):
        registry = app.__dict__.get("_tasks")
        if not registry:
            continue
        entry = _by_registry.get(id(registry))
        if entry is None or entry[0]() is not registry or entry[1] != dict.__len__(registry):
            entry = _scan(registry)
        seen[id(registry)] = entry
        # A storage of None: a stack of another kind, checked by reading it.
        busy.extend(stack for stack, storage in entry[2] if storage is None or storage)
    _by_registry = seen  # apps gone since are dropped
    return busy


# Per task registry: (a weak reference to it, its size, (stack, storage) of its tasks).
# Most tests change no registry: the stacks found last time are reused while the registry
# is the same one with the same number of tasks.
_Entry = tuple[Callable[[], Any], int, tuple[tuple[Any, Any], ...]]
_by_registry: dict[int, _Entry] = {}


def _scan(registry: Any) -> _Entry:
    # dict's own values(): the plugin's registry would create pending built-ins.
    stacks = {getattr(type(task), "request_stack", None) for task in dict.values(registry)}
    stacks.discard(None)
    pairs = tuple(
        (stack, getattr(getattr(stack, "_local", None), "__storage__", None))
        for stack in stacks
    )
    try:
        ref: Callable[[], Any] = weakref.ref(registry)
    except TypeError:  # not weak-referenceable: never matched, scanned each time
        ref = _nothing
    return ref, dict.__len__(registry), pairs


def _nothing() -> None:
    return None
