"""A test's SQLite database, shared by every engine of the test (no pytest import).

:class:`TestDatabase` owns one SQLite connection (in memory, or a file once a prefork
worker needs one) and makes the test's engines on it: ``sqlite_engine``'s and every
engine ``create_engine()`` returns for a redirected URL (:mod:`.redirect`).  Each engine
has its own pool (so that one engine's ``dispose()`` is its own business) handing out the
same connection, closed only by :meth:`TestDatabase.close`: an engine disposed and
recreated by the code under test still sees the data.  The pools share one lock, so the
threads of a live worker take turns on the connection (see :mod:`.sqlite`).

A prefork worker's children cannot share a connection with the test process: before it
forks, :meth:`TestDatabase.use_directory` moves the data to a file in the worker's temp
directory, and each process (the test's and each child) then has its own connection to
that file.  A child finds out it is one on its first use (another process id).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from pytest_celerybase.resources.sqlite import (
    DEFAULT_CHECKOUT_TIMEOUT,
    OwnerLock,
    SerialStaticPool,
)

__all__ = ["FILE_NAME", "TestDatabase", "making_engine"]

#: The file a prefork worker's test database lives in, in the worker's temp directory.
FILE_NAME = "celerybase-test-database.sqlite"
# Seconds a process waits for another one's write lock on the file before failing.
_BUSY_TIMEOUT = 15.0

_making = threading.local()


def making_engine() -> bool:
    """Whether this thread is making one of a test database's engines right now (the
    redirect then leaves ``create_engine`` alone, whatever the URL globs say)."""
    return bool(getattr(_making, "active", False))


@contextlib.contextmanager
def _making_engine() -> Iterator[None]:
    _making.active = True
    try:
        yield
    finally:
        _making.active = False


class _Shared:
    """The database's connection as a pool sees it: everything but ``close()``.

    SQLAlchemy closes a pool's connection on ``dispose()``; the data must outlive that
    (the test database is closed at the end of the test, once).
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        object.__setattr__(self, "_connection", connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)

    def close(self) -> None:
        """Keep the connection open: :meth:`TestDatabase.close` closes it."""


class _ProcessState:
    """What one process has of the database: its connection, lock and engines."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.connection: sqlite3.Connection | None = None
        self.serial = OwnerLock()
        self.engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self.main: Engine | None = None


class TestDatabase:
    """One test's SQLite database and the engines made on it (thread-safe)."""

    __test__ = False  # not a test class, whatever pytest's collection thinks

    def __init__(self, *, checkout_timeout: float = DEFAULT_CHECKOUT_TIMEOUT) -> None:
        self.checkout_timeout = checkout_timeout
        #: The file the data lives in, once :meth:`use_directory` moved it there.
        self.path: str | None = None
        self._lock = threading.RLock()
        self._state = _ProcessState()
        self._subscribers: list[Callable[[Engine], None]] = []
        self._closed = False

    def __repr__(self) -> str:
        where = self.path or "memory"
        return f"<TestDatabase {where} pid={self._state.pid}>"

    def _here(self) -> _ProcessState:
        state = self._state
        if state.pid != os.getpid():
            # A forked child: the parent's connection, lock and engines are not ours to
            # use (a lock a parent thread held at fork would stay held forever).
            self._lock = threading.RLock()
            state = self._state = _ProcessState()
            self._subscribers = []
        return state

    # -- connections and engines ---------------------------------------------------------
    def _connect(self) -> _Shared:
        """The pools' creator: this process's connection (opened on first use)."""
        with self._lock:
            state = self._here()
            if self._closed:
                raise RuntimeError(f"{self!r} is closed: its test is over")
            if state.connection is None:
                state.connection = self._open()
            return _Shared(state.connection)

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            return sqlite3.connect(":memory:", check_same_thread=False)
        connection = sqlite3.connect(self.path, check_same_thread=False, timeout=_BUSY_TIMEOUT)
        # Readers (the test) do not block the writer (a child), nor the other way round.
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def pool(self) -> SerialStaticPool:
        """A new pool on this process's connection (one per engine)."""
        return SerialStaticPool(
            self._connect, checkout_timeout=self.checkout_timeout, serial=self._here().serial
        )

    def engine(self) -> Engine:
        """The database's own engine in this process (``sqlite_engine``), made once."""
        with self._lock:
            state = self._here()
            if state.main is None:
                with _making_engine():
                    state.main = create_engine("sqlite://", pool=self.pool())
                self.register(state.main)
            return state.main

    def register(self, engine: Engine) -> None:
        """Count ``engine`` as one of the database's (subscribers hear of it)."""
        with self._lock:
            self._here().engines.add(engine)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber(engine)

    def owns(self, engine: Engine) -> bool:
        """Whether ``engine`` (or the engine it derives from) is one of the database's."""
        engine = getattr(engine, "_proxied", engine)  # Engine.execution_options() copies
        return engine in self._state.engines

    def subscribe(self, callback: Callable[[Engine], None]) -> Callable[[], None]:
        """Call ``callback`` with every engine of the database, now and to come; returns
        the function that stops it (``sql_queries`` listens to each engine so)."""
        with self._lock:
            engines = list(self._here().engines)
            self._subscribers.append(callback)
        for engine in engines:
            callback(engine)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- prefork -------------------------------------------------------------------------
    def use_directory(self, directory: str) -> None:
        """Move the data to a file in ``directory`` (before a prefork worker forks).

        What the test wrote already is copied; the engines made so far reconnect to the
        file on their next use.
        """
        with self._lock:
            state = self._here()
            old = state.connection
            self.path = os.path.join(directory, FILE_NAME)
            state.connection = self._open()
            if old is not None:
                old.backup(state.connection)
            engines = list(state.engines)
        for engine in engines:
            engine.dispose()  # the pool's next checkout opens this process's file connection
        if old is not None:
            old.close()

    def close(self) -> None:
        """Dispose every engine and close the connection (the end of the test)."""
        with self._lock:
            state = self._here()
            self._closed = True
            engines = list(state.engines)
            connection, state.connection = state.connection, None
            self._subscribers = []
        for engine in engines:
            engine.dispose()
        if connection is not None:
            connection.close()
