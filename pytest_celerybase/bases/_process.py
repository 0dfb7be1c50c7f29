"""Per-process lazily created resources (fork safety for the bases).

Celery's prefork pool forks worker processes from a parent that may already hold
engines, sessions or pools.  A connection inherited across ``fork()`` is shared with
the parent, so using it in the child corrupts both.  :class:`ProcessLocal` keeps a
value per process: it is created on first use (never in ``__init__`` or at import),
and a different ``os.getpid()`` makes the next access drop the inherited value and
create a fresh one.  Checking the pid on every access covers any way of forking
(billiard's prefork pool, ``os.fork``, ``multiprocessing``) without relying on
``worker_process_init`` being sent.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["ProcessLocal"]

T = TypeVar("T")

_instances: weakref.WeakSet[ProcessLocal[Any]] = weakref.WeakSet()


class ProcessLocal(Generic[T]):
    """A lazily created value owned by the current process.

    ``after_fork`` receives the inherited value in a child process before it is
    dropped (e.g. ``engine.dispose(close=False)``, SQLAlchemy's recipe for forked
    children); it must not close connections the parent still uses.
    """

    def __init__(self, after_fork: Callable[[T], object] | None = None) -> None:
        self._after_fork = after_fork
        self._lock = threading.Lock()
        self._value: T | None = None
        self._pid = os.getpid()
        _instances.add(self)

    def get(self, create: Callable[[], T]) -> T:
        """The value of this process, calling ``create()`` the first time."""
        with self._lock:
            self._check_pid()
            if self._value is None:
                self._value = create()
            return self._value

    def peek(self) -> T | None:
        """The value of this process if it was created, without creating it."""
        with self._lock:
            self._check_pid()
            return self._value

    def pop(self) -> T | None:
        """Forget and return the value (the caller closes it); a no-op when unset."""
        with self._lock:
            self._check_pid()
            value, self._value = self._value, None
            return value

    def _check_pid(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            inherited, self._value, self._pid = self._value, None, pid
            if inherited is not None and self._after_fork is not None:
                self._after_fork(inherited)

    def _reinit_after_fork(self) -> None:
        # Runs in the child right after fork(): a lock held by another parent thread
        # at fork time would stay locked forever, so replace it.  The inherited value
        # is handled lazily by _check_pid (pid differs), not here.
        self._lock = threading.Lock()


def _reinit_locks_in_child() -> None:
    for instance in list(_instances):
        instance._reinit_after_fork()


# The pid check alone covers every way of forking (billiard's prefork pool included);
# this hook only makes sure no lock is inherited in the locked state.
os.register_at_fork(after_in_child=_reinit_locks_in_child)
