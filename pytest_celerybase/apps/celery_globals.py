"""Celery's process-global state that tests change, saved and restored in one place.

Celery keeps, per process: the current app (thread-local) and the default app, the set
of shared-task finalizers (``@shared_task``/``@app.task(shared=True)`` remember the task
and register it on every app finalized later; ``@shared_task`` also adds it at once to
every app already finalized, so the registries of all apps are part of it), a flag
saying "this process is inside a worker/task" (``result.get()`` refuses to block when it
is set; a worker pool and eager ``delay()`` set it), and the worker's set of revoked task
ids (a worker adds expired ones).  :class:`CeleryGlobals` captures them; every module
that changes them restores them through it.

Shared tasks (:class:`SharedTasks`) are restored with one exception: what a module
imported for the first time since the snapshot declared stays declared.  The module
stays imported, so a later ``from proj.tasks import ping`` would find a task that no app
has any more (``NotRegistered``, in whichever test happens to come next).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CeleryGlobals", "SharedTasks", "celery_globals_restored", "declared_in"]


def declared_in(declaration: Any) -> str | None:
    """The module that declared a shared task: of a task, or of a finalizer callback
    (``@shared_task`` and ``@app.task(shared=True)`` close over the task's function)."""
    module = getattr(type(declaration), "__module__", None)
    if module and getattr(declaration, "run", None) is not None and hasattr(declaration, "name"):
        return str(module)  # a task: its generated class has the function's module
    for cell in getattr(declaration, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(value) and isinstance(getattr(value, "__module__", None), str):
            if getattr(value, "__name__", "") != "<lambda>":
                return str(value.__module__)
    return None


@dataclass(frozen=True)
class SharedTasks:
    """The shared-task finalizers and every finalized app's registry, and the modules
    imported, at one moment."""

    finalizers: frozenset[Any]
    # (registry, its tasks) of every app alive when saved; not compared: apps come and go.
    registries: tuple[tuple[Any, dict[str, Any]], ...] = field(compare=False)
    # A copy of sys.modules, not a set of its names: copying the dict costs a third of
    # hashing every name into a set, and this is saved around every test.
    modules: Mapping[str, Any] = field(compare=False)

    @classmethod
    def save(cls) -> SharedTasks:
        from celery import _state

        return cls(
            finalizers=frozenset(_state._on_app_finalizers),
            registries=tuple(
                (app._tasks, dict.copy(app._tasks))
                for app in _state._get_active_apps()
                if app.finalized
            ),
            modules=dict.copy(sys.modules),
        )

    def imported_since(self, declaration: Any) -> bool:
        """Whether ``declaration`` comes from a module first imported since the snapshot
        and still imported."""
        module = declared_in(declaration)
        return module is not None and module not in self.modules and module in sys.modules

    def restore(self, keep: Collection[Any] = ()) -> None:
        """Put back what :meth:`save` saw, but for declarations of modules imported since
        and the finalizers in ``keep`` (a broader fixture's, for instance)."""
        from celery import _state

        finalizers = _state._on_app_finalizers
        if finalizers != self.finalizers:
            kept = {
                cb for cb in finalizers - self.finalizers if cb in keep or self.imported_since(cb)
            }
            finalizers.clear()
            finalizers.update(self.finalizers | kept)
        for registry, tasks in self.registries:
            if dict.__eq__(registry, tasks) is not True:
                kept_tasks = {
                    name: task
                    for name, task in dict.items(registry)
                    if name not in tasks and self.imported_since(task)
                }
                dict.clear(registry)
                dict.update(registry, tasks)
                dict.update(registry, kept_tasks)


@dataclass(frozen=True)
class CeleryGlobals:
    """A snapshot of Celery's globals; :meth:`restore` puts them back."""

    current_app: Any
    default_app: Any
    join_will_block: bool
    shared: SharedTasks | None
    #: The worker's process-global set of revoked task ids (a worker adds expired ones).
    revoked: frozenset[str] | None = None

    @classmethod
    def save(cls, *, finalizers: bool = True, revoked: bool = False) -> CeleryGlobals:
        """Snapshot the globals (the shared tasks only when ``finalizers`` is true, the
        worker's revoked ids only when ``revoked`` is)."""
        from celery import _state

        revoked_ids = None
        if revoked:
            from celery.worker import state as worker_state

            revoked_ids = frozenset(worker_state.revoked)
        return cls(
            current_app=getattr(_state._tls, "current_app", None),
            default_app=_state.default_app,
            join_will_block=bool(_state.task_join_will_block()),
            shared=SharedTasks.save() if finalizers else None,
            revoked=revoked_ids,
        )

    def restore(self) -> None:
        """Put back what :meth:`save` saw (shared tasks: see :class:`SharedTasks`)."""
        from celery import _state

        _state._tls.current_app = self.current_app
        _state.set_default_app(self.default_app)
        _state._set_task_join_will_block(self.join_will_block)
        if self.shared is not None:
            self.shared.restore()
        if self.revoked is not None:
            from celery.worker import state as worker_state

            for task_id in frozenset(worker_state.revoked) - self.revoked:
                worker_state.revoked.discard(task_id)


@contextlib.contextmanager
def celery_globals_restored(*, finalizers: bool = True) -> Iterator[CeleryGlobals]:
    """Restore Celery's globals on exit to what they were on entry."""
    saved = CeleryGlobals.save(finalizers=finalizers)
    try:
        yield saved
    finally:
        saved.restore()
