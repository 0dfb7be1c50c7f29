"""The one place where supported Celery versions (5.3 - 5.7) need different code.

Measured with the nox matrix (``noxfile.py``); everything else in the package works
unchanged from Celery 5.3.0 to 5.7.

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

from typing import Any

import celery
from celery.app.task import Context

__all__ = ["CELERY_VERSION", "PUSH_REQUEST_FORGETS_REQUEST", "push_request_inheriting"]

#: ``(major, minor)`` of the installed Celery.
CELERY_VERSION: tuple[int, int] = (
    int(celery.VERSION.major),
    int(celery.VERSION.minor),
)

#: ``True`` on Celery < 5.5, where ``Task.push_request`` drops the current request.
PUSH_REQUEST_FORGETS_REQUEST: bool = CELERY_VERSION < (5, 5)


def push_request_inheriting(self: Any, *args: Any, **kwargs: Any) -> None:
    """``Task.push_request`` as in Celery >= 5.5: the new context inherits the current."""
    self.request_stack.push(Context(*args, **{**self.request.__dict__, **kwargs}))
