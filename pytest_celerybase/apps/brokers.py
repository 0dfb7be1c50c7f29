"""Which brokers a test may send to, and the warning when it sends elsewhere (no pytest).

A task of a project app that the test did not hand to the plugin (a missing or misspelled
``celerybase_app`` ini key) is sent to the project's real broker: no worker of the test
receives it, and an unreachable broker fails deep in kombu (a DNS error, after retries).
:func:`warn_if_real_broker` says so before the send, naming the key.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from pytest_celerybase.errors import RealBrokerWarning

__all__ = ["TEST_BROKER_SCHEMES", "is_test_broker", "warn_if_real_broker", "warning_send_task"]

#: Brokers that live in the test process or next to it.
TEST_BROKER_SCHEMES = ("memory", "filesystem")
# The broker a CI leg points live workers at (see worker.options.BROKER_URL_ENV).
_BROKER_URL_ENV = "CELERYBASE_BROKER_URL"


def is_test_broker(url: Any) -> bool:
    """Whether ``url`` names a broker a test may use (in memory, files, or the one
    ``CELERYBASE_BROKER_URL`` names)."""
    text = str(url or "")
    scheme = text.partition("://")[0].partition("+")[0]
    chosen = os.environ.get(_BROKER_URL_ENV, "").strip()
    return scheme in TEST_BROKER_SCHEMES or bool(chosen and text == chosen)


def warn_if_real_broker(app: Any, task_name: str) -> None:
    """Warn that ``app`` is about to send task ``task_name`` to a broker outside the test."""
    try:
        url = app.conf.broker_url
    except Exception:  # an app that cannot be configured fails on its own, below
        return
    if is_test_broker(url):
        return
    caller = _callers_frame()
    warnings.warn_explicit(
        RealBrokerWarning(
            f"task {task_name!r} is being sent to the broker of app {app.main!r} "
            f"({url!r}), which is not a test broker: no worker of this test receives it, "
            "and a broker that cannot be reached fails in kombu. To run the project's "
            "tasks eagerly (eager_app) or on live_worker, name the app in the "
            'celerybase_app ini key (celerybase_app = "proj.celery:app").'
        ),
        RealBrokerWarning,
        caller.f_code.co_filename if caller else "?",
        caller.f_lineno if caller else 0,
    )


def warning_send_task(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Celery.send_task`` warning first when the app's broker is not a test broker (the
    recorder installs it for the duration of each test)."""

    @functools.wraps(original)  # sent_tasks' wrapper reads the signature through it
    def send_task(self: Any, name: Any, *args: Any, **options: Any) -> Any:
        if options.get("producer") is None:  # (a given producer is not the app's)
            warn_if_real_broker(self, str(name))
        return original(self, name, *args, **options)

    return send_task


def _callers_frame() -> Any:
    """The first frame outside Celery, kombu and this package: the test's send."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if not module.startswith(("celery", "kombu", "pytest_celerybase")):
            return frame
        frame = frame.f_back
    return None
