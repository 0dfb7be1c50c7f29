"""Sent tasks: the task messages a test sends, captured, held, queried and run.

``capture`` (what changes in Celery to capture messages, and hold them), ``message`` (one
message, read as a worker reads it), ``collection`` (:class:`SentTasks`, the
``sent_tasks`` fixture's value), ``query`` (what a test expects of a message),
``assertions`` and ``explain`` (the assertions and their failure texts), ``run`` (running
held messages the way a worker does).  "Sent" is what users see, "capture" the
mechanism, and a *held* message is one captured and not delivered.  No pytest import.
"""

from __future__ import annotations

from pytest_celerybase.sent_tasks.assertions import assert_task_not_sent, assert_task_sent
from pytest_celerybase.sent_tasks.collection import SentTasks, capture_sent_tasks
from pytest_celerybase.sent_tasks.message import SentTask

__all__ = [
    "SentTask",
    "SentTasks",
    "assert_task_not_sent",
    "assert_task_sent",
    "capture_sent_tasks",
]
