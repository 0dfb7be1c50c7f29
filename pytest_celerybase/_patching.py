"""Every change the plugin makes to other code's attributes, and its undo (no pytest).

Recording wraps Celery's tracer and signal senders, capturing sent tasks wraps
``Celery.send_task`` and a setting, a prefork worker swaps billiard's sleeps, and the
cooperative check wraps the hook functions of users' classes.  Each such change is a
:class:`Patch` made with :func:`apply` on behalf of an *owner* (a label, or the recorder
it serves), so one list, :func:`active`, says what is changed now (the leak guard of the
plugin's own tests reads it), and each owner undoes exactly its own (:func:`undo_all`).

Undo is careful about stacking: when the attribute no longer holds the patch's value
(a test ``monkeypatch``-ed over it), putting the original back now would be undone again
by that test's own undo, which restores *our* value.  Such a patch stays pending instead,
and :func:`settle` (the plugin calls it once a test's teardown is over) undoes it when the
attribute holds our value again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ABSENT", "Patch", "active", "apply", "forget", "patched", "pending", "release",
           "settle", "undo", "undo_all"]  # fmt: skip

#: ``Patch.original`` when the attribute was not in the target's own ``__dict__`` (it was
#: inherited, or unset): undo deletes it instead of setting it.
ABSENT: Any = object()

_lock = threading.RLock()
_active: list[Patch] = []
_pending: list[Patch] = []


@dataclass(eq=False)
class Patch:
    """``target.name`` replaced by ``value`` on behalf of ``owner``."""

    target: Any
    name: str
    value: Any
    original: Any
    owner: object

    def __repr__(self) -> str:
        where = getattr(self.target, "__qualname__", None) or getattr(
            self.target, "__name__", None
        ) or type(self.target).__name__
        return f"<Patch {where}.{self.name} by {self.owner!r}>"

    def in_place(self) -> bool:
        """Whether the attribute still holds this patch's value."""
        return vars(self.target).get(self.name, ABSENT) is self.value


def apply(target: Any, name: str, value: Any, *, owner: object) -> Patch:
    """Set ``target.name = value``, remembering what was there for :func:`undo`."""
    with _lock:
        patch = Patch(target, name, value, vars(target).get(name, ABSENT), owner)
        setattr(target, name, value)
        _active.append(patch)
        return patch


def undo(patch: Patch) -> bool:
    """Put back what ``patch`` replaced; ``False`` when it stays pending (see module doc)."""
    with _lock:
        if not patch.in_place():
            _remove(_active, patch)
            if not any(p is patch for p in _pending):
                _pending.append(patch)
            return False
        if patch.original is ABSENT:
            delattr(patch.target, patch.name)
        else:
            setattr(patch.target, patch.name, patch.original)
        _remove(_active, patch)
        _remove(_pending, patch)
        return True


def undo_all(owner: object) -> list[Patch]:
    """Undo every patch of ``owner``, newest first; the ones left pending."""
    with _lock:
        mine = [p for p in reversed(_active) if p.owner is owner or p.owner == owner]
        return [p for p in mine if not undo(p)]


def forget(patch: Patch) -> None:
    """Drop ``patch`` without undoing it: what is there now stays (its owner decided)."""
    with _lock:
        _remove(_active, patch)
        _remove(_pending, patch)


def release(index: dict[Any, Patch], owner: object = None) -> None:
    """Undo the patches of ``owner`` (every one with ``None``) kept in ``index``, and drop
    them from it.  One replaced meanwhile (a ``mocker.spy`` set and undone around ours
    put the original back itself) is forgotten: what is there now is the test's."""
    with _lock:
        for key, patch in list(index.items()):
            if owner is not None and patch.owner is not owner:
                continue
            del index[key]
            if patch.in_place():
                undo(patch)
            else:
                forget(patch)


def settle() -> list[Patch]:
    """Undo the pending patches whose attribute holds their value again; those still
    pending (someone else's value is there: it is theirs to undo)."""
    with _lock:
        for patch in list(reversed(_pending)):
            if patch.in_place():
                undo(patch)
        return list(_pending)


def active() -> tuple[Patch, ...]:
    """Every patch in effect or pending now, oldest first."""
    with _lock:
        return (*_active, *_pending)


def pending() -> tuple[Patch, ...]:
    """The patches whose undo waits for someone else's value to go (see module doc)."""
    with _lock:
        return tuple(_pending)


@contextlib.contextmanager
def patched(target: Any, name: str, value: Any, *, owner: object) -> Iterator[Patch]:
    """:func:`apply` for the duration of a block."""
    patch = apply(target, name, value, owner=owner)
    try:
        yield patch
    finally:
        undo(patch)


def _remove(patches: list[Patch], patch: Patch) -> None:
    for index, candidate in enumerate(patches):
        if candidate is patch:
            del patches[index]
            return
