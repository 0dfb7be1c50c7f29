"""Process-wide overrides of the resources the reference bases use.

The bases in :mod:`pytest_celerybase.bases` look here first for their SQLAlchemy
engine, Redis client, metrics sink and HTTP session, and only build their own
(per-process, from the app's configuration) when nothing is bound.  The test
fixtures bind their in-memory doubles here for the duration of one test.

Bindings are process-wide on purpose, not thread- or context-local: tasks run by an
in-process worker execute on other threads and must see the test's resources.

Each kind is a stack of tokens.  :func:`unbind` removes exactly its own token wherever
it sits, so however nested bindings are released, once all are released the state is
exactly what it was before.  This module imports nothing heavy and never pytest.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    import redis
    import requests
    from sqlalchemy.engine import Engine

    from pytest_celerybase.bases.sinks import MetricsSink

__all__ = [
    "ENGINE",
    "HTTP_SESSION",
    "KEYS",
    "METRICS_SINK",
    "REDIS",
    "BindingKey",
    "Token",
    "bind",
    "bound",
    "current",
    "push",
    "restore",
    "snapshot",
    "unbind",
]

T = TypeVar("T")


@dataclass(frozen=True)
class BindingKey(Generic[T]):
    """Typed name of one kind of bindable resource."""

    name: str


ENGINE: BindingKey[Engine] = BindingKey("engine")
"""SQLAlchemy ``Engine`` used by :class:`~pytest_celerybase.bases.DatabaseTask`."""
REDIS: BindingKey[redis.Redis] = BindingKey("redis")
"""Redis client used by :class:`~pytest_celerybase.bases.CachedTask`."""
METRICS_SINK: BindingKey[MetricsSink] = BindingKey("metrics_sink")
"""Sink receiving the metrics of :class:`~pytest_celerybase.bases.MetricsTask`."""
HTTP_SESSION: BindingKey[requests.Session] = BindingKey("http_session")
"""``requests.Session`` used by :class:`~pytest_celerybase.bases.APIClientTask`."""

KEYS: tuple[BindingKey[Any], ...] = (ENGINE, REDIS, METRICS_SINK, HTTP_SESSION)
"""Every kind of binding, in a fixed order."""


@dataclass(frozen=True, eq=False)
class Token(Generic[T]):
    """Handle of one binding; pass it to :func:`unbind` to release exactly that binding."""

    key: BindingKey[T]
    value: T
    serial: int = field(repr=False)


_lock = threading.Lock()
_serials = itertools.count(1)
_stacks: dict[str, list[Token[Any]]] = {key.name: [] for key in KEYS}


def push(key: BindingKey[T], value: T) -> Token[T]:
    """Bind ``value`` for ``key`` on top of any earlier binding and return its token."""
    if key.name not in _stacks:
        raise ValueError(f"unknown binding {key.name!r}; valid: {[k.name for k in KEYS]}")
    with _lock:
        token: Token[T] = Token(key, value, next(_serials))
        _stacks[key.name].append(token)
    return token


def unbind(token: Token[Any]) -> None:
    """Release ``token``'s binding; releasing twice is a no-op (teardown-safe)."""
    with _lock:
        stack = _stacks[token.key.name]
        # Remove by identity, not by position: out-of-order releases still leave the
        # other bindings exactly as they were.
        for index, candidate in enumerate(stack):
            if candidate is token:
                del stack[index]
                return


@contextmanager
def bind(key: BindingKey[T], value: T) -> Iterator[T]:
    """Bind ``value`` for ``key`` inside a ``with`` block, restoring the previous one after."""
    token = push(key, value)
    try:
        yield value
    finally:
        unbind(token)


def current(key: BindingKey[T]) -> T | None:
    """The innermost value bound for ``key``, or ``None`` when nothing is bound."""
    with _lock:
        stack = _stacks[key.name]
        return cast("T", stack[-1].value) if stack else None


def bound(key: BindingKey[Any]) -> bool:
    """Whether anything is bound for ``key``."""
    with _lock:
        return bool(_stacks[key.name])


def snapshot() -> Mapping[str, tuple[Token[Any], ...]]:
    """An immutable copy of every stack (outermost first), for leak checks.

    Two snapshots compare equal exactly when the same bindings are active, so a leak
    guard can compare the snapshot taken before a test with the one taken after it.
    """
    with _lock:
        return {name: tuple(stack) for name, stack in _stacks.items()}


def restore(state: Mapping[str, tuple[Token[Any], ...]]) -> None:
    """Reset every stack to a :func:`snapshot` (used by leak guards after reporting)."""
    with _lock:
        for name in _stacks:
            _stacks[name] = list(state.get(name, ()))
