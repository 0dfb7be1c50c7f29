"""Which threads' records count for the running test (no pytest import)."""

from __future__ import annotations

import threading

__all__ = ["ACTIVE_THREADS", "LEFT_RUNNING"]

#: The thread objects of running threads by ident (CPython's threading keeps this map): a
#: dict lookup is much cheaper on the hot path than ``threading.current_thread()``, which
#: is the fallback (threads not started by threading are not in it).
ACTIVE_THREADS: dict[int, threading.Thread] = getattr(threading, "_active", {})

#: Threads that a finished test left running, and that test's node id: what they record
#: later is nobody's (the recorder counts it in ``strays`` and the plugin warns).
LEFT_RUNNING: dict[threading.Thread, str] = {}
