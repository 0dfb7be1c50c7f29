"""``DatabaseTask``: a per-process SQLAlchemy 2.x engine and a transactional session scope.

SQLAlchemy is imported when the engine or a session is first needed, not at import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from celery import Task

from pytest_celerybase.bases._config import setting
from pytest_celerybase.bases._process import ProcessLocal
from pytest_celerybase.resources import bindings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

__all__ = ["DatabaseNotConfigured", "DatabaseTask", "dispose_engines", "is_disconnect"]

logger = logging.getLogger(__name__)


class DatabaseNotConfigured(RuntimeError):
    """A :class:`DatabaseTask` ran without a database URL."""


def _dispose_inherited(engine: Engine) -> None:
    # SQLAlchemy's recipe for a forked child: drop the parent's pooled connections
    # without closing them (closing would end the parent's sessions on the server).
    engine.dispose(close=False)


# One engine (one connection pool) per process per URL and options, shared by every
# task that uses them: an engine per task would multiply the connections held.
_engines_lock = threading.Lock()
_engines: dict[str, ProcessLocal[Engine]] = {}


def _engine_slot(key: str) -> ProcessLocal[Engine]:
    with _engines_lock:
        slot = _engines.get(key)
        if slot is None:
            slot = _engines[key] = ProcessLocal(after_fork=_dispose_inherited)
        return slot


def dispose_engines() -> None:
    """Dispose every engine this process created (e.g. on ``worker_process_shutdown``)."""
    with _engines_lock:
        slots = list(_engines.values())
    for slot in slots:
        engine = slot.pop()
        if engine is not None:
            engine.dispose()


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` means the database connection is gone or unusable.

    True for an invalidated connection (SQLAlchemy asked the dialect), a
    ``DisconnectionError``, and DBAPI ``OperationalError``/``InterfaceError``.
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc, (sa_exc.DisconnectionError, sa_exc.OperationalError, sa_exc.InterfaceError)
    )


class DatabaseTask(Task):  # type: ignore[misc]
    """A task with a lazily created SQLAlchemy ``Engine`` and ``session_scope()``.

    Write SQL with bound parameters only, never by string formatting::

        with self.session_scope() as session:
            session.execute(text("INSERT INTO users (name) VALUES (:name)"), {"name": name})

    Settings (task attribute, else app config key, read at use time):
        database_url / ``celerybase_database_url``: the SQLAlchemy URL (required
            unless an engine is bound, e.g. by the ``sqlite_engine`` fixture).
        database_engine_options: keyword arguments for ``create_engine``
            (default ``{"pool_pre_ping": True}``: a stale pooled connection is
            replaced before use instead of failing the task).

    Fork safety: the engine is created on first use in each process (never in
    ``__init__``), and a forked child gets its own.  After a connection error (see
    :func:`is_disconnect`) in ``session_scope`` or reaching ``on_failure``/``on_retry``,
    the engine is disposed and the next use creates a new one.  A bound engine (the
    test's) is never disposed: its owner manages it.
    """

    database_url: str | None = None
    database_engine_options: Mapping[str, Any] = MappingProxyType({"pool_pre_ping": True})

    @property
    def db(self) -> Engine:
        """The engine: the bound one if any, else this process's engine for the URL."""
        bound = bindings.current(bindings.ENGINE)
        if bound is not None:
            return bound
        url = self._database_url()
        return _engine_slot(self._engine_key(url)).get(lambda: self._create_engine(url))

    @contextmanager
    def session_scope(self, **session_options: Any) -> Iterator[Session]:
        """A ``Session`` that commits when the block succeeds and rolls back otherwise."""
        from sqlalchemy.orm import Session

        session = Session(bind=self.db, **session_options)
        try:
            yield session
            session.commit()
        except BaseException as exc:
            try:
                session.rollback()
            except Exception:
                # The connection may be the thing that broke; the original error is
                # the one worth raising.
                logger.warning("rollback failed in %s", self.name, exc_info=True)
            if isinstance(exc, Exception) and is_disconnect(exc):
                self.reset_db()
            raise
        finally:
            session.close()

    def reset_db(self) -> None:
        """Dispose this process's engine for the URL; the next ``db`` creates a new one."""
        if bindings.current(bindings.ENGINE) is not None:
            return  # the bound engine belongs to whoever bound it
        url = self._database_url()
        engine = _engine_slot(self._engine_key(url)).pop()
        if engine is not None:
            logger.warning("disposing database engine of %s after a connection error", self.name)
            engine.dispose()

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Reset the engine if the task failed on a connection error."""
        self._reset_on_disconnect(exc)
        super().on_failure(exc, task_id, args, kwargs, einfo)

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Reset the engine before the retry if this attempt hit a connection error."""
        self._reset_on_disconnect(exc)
        super().on_retry(exc, task_id, args, kwargs, einfo)

    def _reset_on_disconnect(self, exc: BaseException | None) -> None:
        if isinstance(exc, Exception) and is_disconnect(exc):
            try:
                self.reset_db()
            except DatabaseNotConfigured:
                pass  # nothing was ever created, nothing to reset

    def _database_url(self) -> str:
        url: str | None = setting(self, "database_url", "celerybase_database_url", None)
        if not url:
            raise DatabaseNotConfigured(
                f"task {self.name!r} has no database URL: set `celerybase_database_url` in "
                "the Celery app config or `database_url` on the task "
                "(in tests, request the `sqlite_engine` fixture)"
            )
        return str(url)

    def _engine_key(self, url: str) -> str:
        return f"{url}|{sorted(self.database_engine_options.items())!r}"

    def _create_engine(self, url: str) -> Engine:
        from sqlalchemy import create_engine

        return create_engine(url, **dict(self.database_engine_options))
