"""Turning recording on and off: :func:`recording` and the recorder stack (no pytest).

The first recorder activated installs the instrumentation (:mod:`.instrument`); each one
deactivated gives back the task classes instrumented while it was innermost; the last one
out uninstalls everything.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from pytest_celerybase.recorder import instrument
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.recorder.hook_recorder import HookRecorder
from pytest_celerybase.recorder.inflight import DEFAULT_WAIT_TIMEOUT

__all__ = ["activate", "deactivate", "recording"]

_lock = threading.RLock()


def activate(recorder: HookRecorder) -> None:
    """Push ``recorder``: from now on hook calls are recorded into it."""
    with _lock:
        if not STACK:
            instrument.install()
        STACK.append(recorder)


def deactivate(recorder: HookRecorder) -> None:
    """Pop ``recorder`` and undo everything done while it was the innermost one."""
    with _lock:
        if recorder in STACK:
            STACK.remove(recorder)
        instrument.restore_tasks(recorder)
        if not STACK:
            instrument.uninstall()


@contextlib.contextmanager
def recording(
    *, wait_timeout: float = DEFAULT_WAIT_TIMEOUT, watch_overrides: bool = False
) -> Iterator[HookRecorder]:
    """Record hook calls inside the block; everything is restored on exit.

    The plugin wraps every test in this; use it directly outside pytest.
    ``watch_overrides`` also records when base classes' ``__call__``/``run`` overrides run
    (what lifecycle coverage needs; it costs a call per run of such an override).
    """
    recorder = HookRecorder(wait_timeout=wait_timeout, watch_overrides=watch_overrides)
    activate(recorder)
    try:
        yield recorder
    finally:
        deactivate(recorder)
