"""Which threads' records count for the running test (no pytest import).

A thread an earlier test started and left running is nobody's: what it records now may
be that test's late work, so it is not counted for the running test (a *stray*), unless
the work it runs was submitted by the running test through ``ThreadPoolExecutor.submit``
(the recorder wraps it: see :func:`submitted_for`), as a module-level pool's is.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["ACTIVE_THREADS", "LEFT_RUNNING", "counts_for", "submitted_for"]

#: The thread objects of running threads by ident (CPython's threading keeps this map): a
#: dict lookup is much cheaper on the hot path than ``threading.current_thread()``, which
#: is the fallback (threads not started by threading are not in it).
ACTIVE_THREADS: dict[int, threading.Thread] = getattr(threading, "_active", {})

#: Threads that a finished test left running, and that test's node id: what they record
#: later is nobody's (the recorder counts it in ``strays`` and the plugin warns).
LEFT_RUNNING: dict[threading.Thread, str] = {}

# .recorder: the recorder that was active when the work this thread runs was submitted
_submitted = threading.local()


def counts_for(recorder: Any, thread: threading.Thread) -> bool:
    """Whether a record ``thread`` makes now belongs to ``recorder`` (not a stray)."""
    if thread not in LEFT_RUNNING:
        return True
    return getattr(_submitted, "recorder", None) is recorder


def submitted_for(recorder: Any, fn: Any) -> Any:
    """``fn`` running with its records counted for ``recorder`` in whatever thread."""

    def run(*args: Any, **kwargs: Any) -> Any:
        saved = getattr(_submitted, "recorder", None)
        _submitted.recorder = recorder
        try:
            return fn(*args, **kwargs)
        finally:
            _submitted.recorder = saved

    return run
