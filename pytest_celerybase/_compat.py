"""Where supported Celery versions (5.3 - 5.7) need different code: the switches.

Measured with the nox matrix (``noxfile.py``).  Code that picks a branch by the Celery
version is here.  Elsewhere the package works unchanged from Celery 5.3.0 to 5.7; a few
places adapt to what they find instead of asking the version, and say so where they do:
the sentinel Celery 5.7 uses for omitted ``send_task`` options (``sent_tasks.capture``),
the ``time`` module Celery 5.7's prefork module sleeps through (``worker.prefork``), and
the kombu < 5.7 event loop that is woken by a socket of our own (``worker.controller``).

Celery < 5.5: ``Task.push_request`` pushes a *fresh* request context.  ``Task.__call__``
calls it, so in a task class that overrides ``__call__`` and calls
``super().__call__()`` (``CachedTask``), the body runs eagerly with an empty request:
``self.request.id`` is ``None``, ``called_directly`` is ``True`` and ``self.retry()``
re-raises the exception instead of retrying.  (A worker hides this: its
``__protected_call__`` optimisation skips the push.)  Celery 5.5 made the pushed context
inherit the current request; :func:`push_request_inheriting` is that 5.5 method, which
the bases that override ``__call__`` use on older Celery.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import celery
from celery.app.task import Context

__all__ = [
    "CELERY_VERSION",
    "PUSH_REQUEST_FORGETS_REQUEST",
    "eager_result",
    "push_request_inheriting",
]

#: ``(major, minor)`` of the installed Celery.
CELERY_VERSION: tuple[int, int] = (
    int(celery.VERSION.major),
    int(celery.VERSION.minor),
)

#: ``True`` on Celery < 5.5, where ``Task.push_request`` drops the current request.
PUSH_REQUEST_FORGETS_REQUEST: bool = CELERY_VERSION < (5, 5)


def eager_result(task_id: str, value: Any, state: str, traceback: Any, name: str) -> Any:
    """An ``EagerResult`` of task ``name`` (Celery 5.3.0's takes no ``name=``)."""
    from celery.result import EagerResult

    if _eager_result_takes_name():
        return EagerResult(task_id, value, state, traceback=traceback, name=name)
    return EagerResult(task_id, value, state, traceback=traceback)


@functools.cache
def _eager_result_takes_name() -> bool:
    from celery.result import EagerResult

    return "name" in inspect.signature(EagerResult).parameters


def push_request_inheriting(self: Any, *args: Any, **kwargs: Any) -> None:
    """``Task.push_request`` as in Celery >= 5.5: the new context inherits the current."""
    self.request_stack.push(Context(*args, **{**self.request.__dict__, **kwargs}))
