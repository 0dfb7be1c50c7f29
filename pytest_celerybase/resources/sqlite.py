"""The in-memory SQLite engine behind the ``sqlite_engine`` fixture (no pytest import).

An in-memory SQLite database lives exactly as long as its one connection, so every
thread must share that connection (``StaticPool`` + ``check_same_thread=False``).
Shared naively, two threads interleave their statements in one transaction: one
thread's ``COMMIT`` ends the other's transaction ("cannot commit - no transaction is
active").  :class:`SerialStaticPool` lends the connection to one thread at a time,
which is how a file-based SQLite database behaves too.  A thread may check it out
again while it holds it (an eager task run inside a ``with engine.begin()`` block);
such nested use shares one transaction, as with any ``StaticPool``.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

__all__ = ["OwnerLock", "SerialStaticPool", "create_memory_engine"]

DEFAULT_CHECKOUT_TIMEOUT = 10.0


class OwnerLock:
    """Held by one thread; that thread may take it again; freed when no pool holds it.

    Counted per pool, not per checkout: ``StaticPool`` hands the same connection record
    to nested checkouts in one thread but SQLAlchemy returns the record only once (when
    the first of them closes), and may return it from another thread (garbage
    collection); a counted or thread-bound lock (``RLock``) would then stay held
    forever.  Several pools on one connection (the engines of one test database) share
    one lock: it is free once every pool holding it has returned its record.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._holders: set[int] = set()

    def acquire(self, timeout: float, holder: object = None) -> bool:
        me = threading.get_ident()
        with self._cond:
            if not self._cond.wait_for(lambda: self._owner in (None, me), timeout):
                return False
            self._owner = me
            self._holders.add(id(holder))
            return True

    def release(self, holder: object = None) -> None:
        with self._cond:
            self._holders.discard(id(holder))
            if not self._holders:
                self._owner = None
                self._cond.notify_all()


class SerialStaticPool(StaticPool):
    """A ``StaticPool`` whose single connection is checked out by one thread at a time.

    A thread waiting longer than ``checkout_timeout`` seconds gets a ``TimeoutError``
    explaining the usual cause, instead of a test that hangs.
    """

    def __init__(
        self,
        *args: Any,
        checkout_timeout: float = DEFAULT_CHECKOUT_TIMEOUT,
        serial: OwnerLock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.checkout_timeout = checkout_timeout
        #: Shared by the pools of one connection (see :class:`OwnerLock`).
        self.serial = serial if serial is not None else OwnerLock()

    def _do_get(self) -> ConnectionPoolEntry:
        if not self.serial.acquire(self.checkout_timeout, self):
            raise TimeoutError(
                f"sqlite_engine: another thread has held the shared in-memory connection "
                f"for {self.checkout_timeout:g}s.  A connection or session kept open while "
                "waiting for a task on another thread (e.g. a live worker) that needs the "
                "database deadlocks: close it (leave the `with` block) before waiting."
            )
        try:
            return super()._do_get()
        except BaseException:
            self.serial.release(self)
            raise

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            self.serial.release(self)

    def recreate(self) -> SerialStaticPool:
        pool = super().recreate()
        assert isinstance(pool, SerialStaticPool)
        pool.checkout_timeout = self.checkout_timeout
        pool.serial = self.serial
        return pool


def create_memory_engine(*, checkout_timeout: float = DEFAULT_CHECKOUT_TIMEOUT) -> Engine:
    """A new engine on a private in-memory SQLite database usable from any thread."""
    engine = create_engine(
        "sqlite://", poolclass=SerialStaticPool, connect_args={"check_same_thread": False}
    )
    assert isinstance(engine.pool, SerialStaticPool)
    engine.pool.checkout_timeout = checkout_timeout
    return engine
