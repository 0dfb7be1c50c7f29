"""Celery's process-global state that tests change, saved and restored in one place.

Celery keeps, per process: the current app (thread-local) and the default app, the set
of shared-task finalizers (``@shared_task``/``@app.task(shared=True)`` remember the task
and register it on every app finalized later; ``@shared_task`` also adds it at once to
every app already finalized, so the registries of all apps are part of it), a flag
saying "this process is inside a worker/task" (``result.get()`` refuses to block when it
is set; a worker pool and eager ``delay()`` set it), and the worker's set of revoked task
ids (a worker adds expired ones).  :class:`CeleryGlobals` captures them; every module
that changes them restores them through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CeleryGlobals", "celery_globals_restored"]


@dataclass(frozen=True)
class CeleryGlobals:
    """A snapshot of Celery's globals; :meth:`restore` puts them back."""

    current_app: Any
    default_app: Any
    join_will_block: bool
    finalizers: frozenset[Any] | None
    # (registry, its tasks) of every app alive when saved; not compared: apps come and go.
    registries: tuple[tuple[Any, dict[str, Any]], ...] = field(default=(), compare=False)
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

        registries: tuple[tuple[Any, dict[str, Any]], ...] = ()
        if finalizers:
            registries = tuple(
                (app._tasks, dict.copy(app._tasks))
                for app in _state._get_active_apps()
                if app.finalized
            )
        return cls(
            current_app=getattr(_state._tls, "current_app", None),
            default_app=_state.default_app,
            join_will_block=bool(_state.task_join_will_block()),
            finalizers=frozenset(_state._on_app_finalizers) if finalizers else None,
            registries=registries,
            revoked=revoked_ids,
        )

    def restore(self) -> None:
        """Put back exactly what :meth:`save` saw."""
        from celery import _state

        _state._tls.current_app = self.current_app
        _state.set_default_app(self.default_app)
        _state._set_task_join_will_block(self.join_will_block)
        finalizers = _state._on_app_finalizers
        if self.finalizers is not None and finalizers != self.finalizers:
            finalizers.clear()
            finalizers.update(self.finalizers)
        for registry, tasks in self.registries:
            if dict.__eq__(registry, tasks) is not True:
                dict.clear(registry)
                dict.update(registry, tasks)
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
