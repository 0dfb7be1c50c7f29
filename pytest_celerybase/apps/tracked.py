"""One object whose attributes a test may change, its copy and its restore (no pytest).

:class:`Tracked` holds a class or a task instance, a copy of its ``__dict__`` and, for a
class, a shallow copy of every ``dict``/``list``/``set``/``deque`` held in an attribute
(the ``_cache = {}`` pattern).  :meth:`Tracked.restore` puts back set, changed and
deleted attributes and refills those containers in place (references held elsewhere see
the restored contents), handing what it dropped to :func:`close_created`, which disposes
or closes the connection holders among them (an SQLAlchemy ``Engine``, a
``requests.Session``, a Redis client).  Names listed in ``celerybase_keep`` are left alone.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["KEEP_ATTR", "Tracked", "close_created", "keep_names"]

#: The class attribute naming attributes that are shared on purpose (kept across tests).
KEEP_ATTR = "celerybase_keep"

_CONTAINERS = (dict, list, set, deque)
_ABSENT: Any = object()


def keep_names(cls: type) -> frozenset[str]:
    """The attribute names ``cls`` and its bases list in ``celerybase_keep``.

    Raises ``TypeError`` naming the class when the value is not a collection of names
    (a bare string, the usual slip for a one-name tuple, included).
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        value = vars(klass).get(KEEP_ATTR)
        if value is None:
            continue
        where = f"{klass.__module__}.{klass.__qualname__}.{KEEP_ATTR}"
        if isinstance(value, str) or not isinstance(value, (tuple, list, set, frozenset)):
            hint = f" (one name is written ({value!r},))" if isinstance(value, str) else ""
            raise TypeError(
                f"{where} must be a tuple of attribute names to keep across tests, "
                f"got {value!r}{hint}"
            )
        bad = [name for name in value if not isinstance(name, str)]
        if bad:
            raise TypeError(f"{where} must hold attribute names (str), got {bad!r}")
        names.update(value)
    return frozenset(names)


def _closers() -> list[tuple[type, str]]:
    """(type, method) of the connection holders a test may leave behind, if imported."""
    found = []
    for module, name, method in (
        ("sqlalchemy.engine.base", "Engine", "dispose"),
        ("requests.sessions", "Session", "close"),
        ("redis.client", "Redis", "close"),
    ):
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            found.append((cls, method))
    return found


def close_created(values: Iterable[Any], kept: Iterable[Any] = ()) -> list[str]:
    """Dispose/close each connection holder in ``values`` not also in ``kept``.

    Best effort: a failure is returned as a line (``repr``: the error), not raised.
    """
    closers = _closers()
    if not closers:
        return []
    keep = {id(value) for value in kept}
    errors = []
    done: set[int] = set()
    for value in values:
        if id(value) in keep or id(value) in done:
            continue
        for cls, method in closers:
            if isinstance(value, cls):
                done.add(id(value))
                try:
                    getattr(value, method)()
                except Exception as exc:
                    errors.append(f"{value!r}.{method}(): {type(exc).__name__}: {exc}")
                break
    return errors


class Tracked:
    """One object followed: a class or a task instance, its attributes and containers."""

    __slots__ = ("containers", "keep", "obj", "per_app", "saved")

    def __init__(self, obj: Any, keep: frozenset[str], *, per_app: bool = False) -> None:
        self.obj = obj
        self.keep = keep
        # A generated task class or a task instance of an app no AppState restores.
        self.per_app = per_app
        self.saved: dict[str, Any] = {}
        self.containers: dict[str, tuple[Any, Any]] = {}
        self.snapshot()

    def snapshot(self, names: Iterable[str] | None = None) -> None:
        """Take the current state as the one to restore (all of it, or ``names``)."""
        live = vars(self.obj)
        for name in live if names is None else names:
            if name in live:
                self.saved[name] = live[name]
            else:
                self.saved.pop(name, None)
        if names is None:
            for name in [n for n in self.saved if n not in live]:
                del self.saved[name]
        is_class = isinstance(self.obj, type)
        for name in self.saved if names is None else names:
            self.containers.pop(name, None)
            value = self.saved.get(name)
            if (
                is_class
                and isinstance(value, _CONTAINERS)
                and name not in self.keep
                and not name.startswith("__")
            ):
                self.containers[name] = (value, _shallow(value))

    def changed(self) -> list[str]:
        """The attribute names whose value or container contents differ from the copy."""
        live = vars(self.obj)
        names = [
            name
            for name in live.keys() | self.saved.keys()
            if live.get(name, _ABSENT) is not self.saved.get(name, _ABSENT)
        ]
        names += [
            name
            for name, (container, copy) in self.containers.items()
            if name not in names and not _same(container, copy)
        ]
        return [name for name in names if name not in self.keep]

    def restore(self, dropped: list[Any]) -> None:
        """Put every changed attribute and container back; what was dropped goes to
        ``dropped`` (for closing)."""
        live = vars(self.obj)
        is_class = isinstance(self.obj, type)
        for name in self.changed():
            now = live.get(name, _ABSENT)
            before = self.saved.get(name, _ABSENT)
            if now is not before:
                if now is not _ABSENT:
                    dropped.append(now)
                if before is _ABSENT and is_class:
                    delattr(self.obj, name)
                elif before is _ABSENT:
                    live.pop(name, None)
                elif is_class:
                    setattr(self.obj, name, before)
                else:
                    live[name] = before
            if name in self.containers:
                container, copy = self.containers[name]
                dropped.extend(_added(container, copy))
                _refill(container, copy)
        # Kept attributes: their current state is the one the next test starts from.
        if self.keep:
            self.snapshot([name for name in self.keep if name in live or name in self.saved])

    def views(self) -> tuple[list[Any], list[Any]]:
        """The live objects and their copies, compared in one go by :class:`ClassState`."""
        live: list[Any] = [vars(self.obj)]
        saved: list[Any] = [self.saved]
        for container, copy in self.containers.values():
            live.append(container)
            saved.append(copy)
        return live, saved


def _shallow(value: Any) -> Any:
    # A plain container of the same kind: compares equal to the live one while unchanged
    # (a deque never equals a list).
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    if isinstance(value, deque):
        return deque(value)
    return list(value)


def _same(live: Any, saved: Any) -> bool:
    try:
        return bool(live == saved)
    except Exception:  # a value whose == raises: treat as changed (restore to be sure)
        return False


def _added(container: Any, copy: Any) -> list[Any]:
    before = {id(v) for v in (copy.values() if isinstance(copy, dict) else copy)}
    now = container.values() if isinstance(container, dict) else container
    return [value for value in list(now) if id(value) not in before]


def _refill(container: Any, copy: Any) -> None:
    container.clear()
    if isinstance(container, (dict, set)):
        container.update(copy)
    else:
        container.extend(copy)


