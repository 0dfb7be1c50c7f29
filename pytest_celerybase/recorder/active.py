"""Which recorder is active: the stack the instrumentation records into (no pytest).

Recorders nest (an in-process ``pytester`` session inside a test): records always go to
the innermost one.  :mod:`.activation` pushes and pops; everything else only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_celerybase.errors import NoActiveRecorderError

if TYPE_CHECKING:
    from pytest_celerybase.recorder.hook_recorder import HookRecorder

__all__ = ["STACK", "current_recorder"]

#: Active recorders, innermost last.  Read without a lock on the hot path (a list read
#: is atomic); changed by :mod:`.activation` under its lock.
STACK: list[HookRecorder] = []


def current_recorder() -> HookRecorder:
    """The innermost active recorder (the current test's).

    Raises :class:`~pytest_celerybase.errors.NoActiveRecorderError` when nothing is
    recording.
    """
    if not STACK:
        raise NoActiveRecorderError(
            "no hook recorder is active: hook assertions work inside a test run with the "
            "celerybase plugin (pytest -p celerybase) or inside "
            "`with pytest_celerybase.recording():`"
        )
    return STACK[-1]
