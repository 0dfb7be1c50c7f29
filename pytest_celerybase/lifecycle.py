"""The whole lifecycle of a task: hooks and Celery signals in one timeline (no pytest).

:func:`timeline` returns the :class:`~pytest_celerybase.LifecycleEvent` records of a task
(or of the test), :func:`assert_lifecycle` checks their exact sequence, and
:func:`assert_hooks_cooperative` checks that a composed task class passes every hook call
through every override along its MRO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_celerybase._messages import mismatch_message
from pytest_celerybase._targets import check_events, settled
from pytest_celerybase.recorder import LifecycleEvent, current_recorder

__all__ = ["assert_lifecycle", "timeline"]


def timeline(task: Any = None, *, task_id: str | None = None) -> list[LifecycleEvent]:
    """The hook and signal events of the current test, all or those of one task.

    ``task`` is a task, a registered task name or a result (then only that execution);
    ``task_id`` narrows to one execution.  On a live worker this first waits (bounded)
    until the worker has finished the task.
    """
    if task is None and task_id is None:
        recorder = current_recorder()
        recorder.wait_idle()
        return recorder.events_for()
    recorder, target = settled(task, task_id)
    return recorder.events_for(target.name, target.task_id)


def assert_lifecycle(task: Any, events: Sequence[str], *, task_id: str | None = None) -> None:
    """Assert the hooks and signals recorded for ``task`` are exactly ``events``, in order.

    E.g. an eager success: ``["task_prerun", "before_start", "on_success", "task_success",
    "after_return", "task_postrun"]``.  Same targets, diff and hints as
    :func:`~pytest_celerybase.assert_hooks_called`.
    """
    __tracebackhide__ = True
    expected = check_events(events)
    recorder, target = settled(task, task_id)
    recorded = recorder.events_for(target.name, target.task_id)
    if [e.name for e in recorded] != expected:
        raise AssertionError(mismatch_message(recorder, target, expected, recorded, "exactly"))
