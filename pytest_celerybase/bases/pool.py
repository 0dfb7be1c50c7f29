"""``ResourcePoolTask``: a bounded, thread-safe pool of reusable resources per process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from celery import Task

from pytest_celerybase.bases._process import ProcessLocal

__all__ = ["PoolTimeout", "ResourcePool", "ResourcePoolTask"]

logger = logging.getLogger(__name__)

R = TypeVar("R")


class PoolTimeout(TimeoutError):
    """No resource became free within the acquire timeout."""


class ResourcePool(Generic[R]):
    """At most ``size`` resources, created on demand, shared between threads.

    ``acquire`` hands out an idle resource, creates one while fewer than ``size``
    exist, and otherwise waits up to ``timeout`` seconds for one to be released.
    A resource released as broken is closed and its slot freed, never reused.
    """

    def __init__(
        self,
        create: Callable[[], R],
        close: Callable[[R], object],
        size: int,
        *,
        name: str = "pool",
    ) -> None:
        if size < 1:
            raise ValueError(f"pool size must be at least 1, got {size}")
        self._create = create
        self._close = close
        self.size = size
        self.name = name
        self._cond = threading.Condition()
        self._idle: list[R] = []
        self._count = 0  # resources in existence: idle + in use + being created

    @property
    def in_use(self) -> int:
        """Resources currently handed out (or being created)."""
        with self._cond:
            return self._count - len(self._idle)

    @property
    def idle(self) -> int:
        """Resources waiting in the pool."""
        with self._cond:
            return len(self._idle)

    def acquire(self, timeout: float | None) -> R:
        """Take a resource, waiting at most ``timeout`` seconds (``None``: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._idle and self._count >= self.size:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise PoolTimeout(
                        f"{self.name}: no resource free after {timeout:g}s; all {self.size} "
                        "are in use (raise pool_size, hold resources for less time, "
                        "or raise pool_acquire_timeout)"
                    )
                self._cond.wait(remaining)
            if self._idle:
                return self._idle.pop()
            self._count += 1  # reserve the slot; create outside the lock
        try:
            return self._create()
        except BaseException:
            self._discard_slot()
            raise

    def release(self, resource: R, *, broken: bool = False) -> None:
        """Give ``resource`` back, or close it and free its slot if ``broken``."""
        if not broken:
            with self._cond:
                self._idle.append(resource)
                self._cond.notify()
            return
        self._discard_slot()
        self._safe_close(resource)

    def close(self) -> None:
        """Close the idle resources (those in use are closed when released broken)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for resource in idle:
            self._safe_close(resource)

    def _discard_slot(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def _safe_close(self, resource: R) -> None:
        try:
            self._close(resource)
        except Exception:
            logger.warning("%s: closing a resource failed", self.name, exc_info=True)


class ResourcePoolTask(Task):  # type: ignore[misc]
    """A task with ``acquire_resource()`` over a per-process :class:`ResourcePool`.

    Subclasses define ``create_resource()`` and usually ``close_resource(resource)``::

        class SMTPTask(ResourcePoolTask):
            pool_size = 4

            def create_resource(self):
                return smtplib.SMTP("mail.example.com")

            def close_resource(self, resource):
                resource.quit()

    A resource whose use raised (any exception, including Celery's ``Retry``) is
    closed, not returned: its state is unknown.  Override ``is_broken`` to keep it
    for exceptions you know leave it usable.

    Class attributes:
        ``pool_size``
            The most resources existing at once in one process (default 10).
        ``pool_acquire_timeout``
            Seconds to wait for a free resource before raising :class:`PoolTimeout`
            (default 30; ``None`` waits forever).

    The pool is created on first use in each process; a forked child starts with an
    empty pool of its own (inherited resources are dropped, not closed, since the
    parent still uses them).
    """

    pool_size: int = 10
    pool_acquire_timeout: float | None = 30.0

    def create_resource(self) -> Any:
        """Make one new resource (override)."""
        raise NotImplementedError(f"{type(self).__name__} must define create_resource()")

    def close_resource(self, resource: Any) -> None:
        """Release what ``resource`` holds (override; default: call ``close()`` if any)."""
        close = getattr(resource, "close", None)
        if callable(close):
            close()

    def is_broken(self, resource: Any, exc: BaseException) -> bool:
        """Whether ``resource`` must be discarded after its use raised ``exc``."""
        return True

    @property
    def resource_pool(self) -> ResourcePool[Any]:
        """This process's pool for this task."""
        slot: ProcessLocal[ResourcePool[Any]] | None = self.__dict__.get("_celerybase_pool")
        if slot is None:
            # setdefault keeps the first slot if two threads get here at once.
            slot = self.__dict__.setdefault("_celerybase_pool", ProcessLocal())
        return slot.get(
            lambda: ResourcePool(
                self.create_resource,
                self.close_resource,
                self.pool_size,
                name=f"resource pool of {self.name}",
            )
        )

    @contextmanager
    def acquire_resource(self, timeout: float | None = None) -> Iterator[Any]:
        """Borrow a resource for the ``with`` block (``timeout`` overrides the default)."""
        pool = self.resource_pool
        resource = pool.acquire(self.pool_acquire_timeout if timeout is None else timeout)
        try:
            yield resource
        except BaseException as exc:
            pool.release(resource, broken=self.is_broken(resource, exc))
            raise
        else:
            pool.release(resource)

    def close_pool(self) -> None:
        """Close this process's idle resources (e.g. on ``worker_process_shutdown``)."""
        slot: ProcessLocal[ResourcePool[Any]] | None = self.__dict__.get("_celerybase_pool")
        pool = None if slot is None else slot.peek()
        if pool is not None:
            pool.close()
