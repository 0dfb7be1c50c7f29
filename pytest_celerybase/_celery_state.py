"""Celery's process-global state that tests change, saved and restored in one place.

Celery keeps, per process: the current app (thread-local) and the default app, the set
of shared-task finalizers (``@shared_task``/``@app.task(shared=True)`` remember the task
and register it on every app finalized later; ``@shared_task`` also adds it at once to
every app already finalized, so the registries of all apps are part of it), and a flag
saying "this process is inside a worker/task" (``result.get()`` refuses to block when it
is set; a worker pool and eager ``delay()`` set it).  :class:`CeleryGlobals` captures
them; every module that changes them restores them through it.
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

    @classmethod
    def save(cls, *, finalizers: bool = True) -> CeleryGlobals:
        """Snapshot the globals (the shared tasks only when ``finalizers`` is true)."""
        from celery import _state

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


@contextlib.contextmanager
def celery_globals_restored(*, finalizers: bool = True) -> Iterator[CeleryGlobals]:
    """Restore Celery's globals on exit to what they were on entry."""
    saved = CeleryGlobals.save(finalizers=finalizers)
    try:
        yield saved
    finally:
        saved.restore()
