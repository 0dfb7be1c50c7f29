"""pytest-celerybase: test Celery custom task classes and their lifecycle hooks.

The public API is re-exported here; importing it does not import pytest or Celery
(the Celery-dependent parts import Celery when called).
"""

from pytest_celerybase.assertions import (
    apply_and_raise,
    assert_hooks_called,
    assert_hooks_called_in_order,
    assert_hooks_not_called,
    assert_task_not_sent,
    assert_task_sent,
    hook_calls,
)
from pytest_celerybase.lifecycle import assert_hooks_cooperative, assert_lifecycle, timeline
from pytest_celerybase.outbox import (
    HeldMessageError,
    NoSentTasksError,
    RunawayTasksError,
    SentTask,
    SentTasks,
    UnregisteredSentTaskError,
    capture_sent_tasks,
)
from pytest_celerybase.recorder import (
    HOOKS,
    SIGNALS,
    CelerybaseWarning,
    ExecutionInfo,
    HookCall,
    HookRecorder,
    LifecycleEvent,
    NoActiveRecorderError,
    recording,
)

__all__ = [
    "HOOKS",
    "SIGNALS",
    "CelerybaseWarning",
    "ExecutionInfo",
    "HeldMessageError",
    "HookCall",
    "HookRecorder",
    "LifecycleEvent",
    "NoActiveRecorderError",
    "NoSentTasksError",
    "RunawayTasksError",
    "SentTask",
    "SentTasks",
    "UnregisteredSentTaskError",
    "apply_and_raise",
    "assert_hooks_called",
    "assert_hooks_called_in_order",
    "assert_hooks_cooperative",
    "assert_hooks_not_called",
    "assert_lifecycle",
    "assert_task_not_sent",
    "assert_task_sent",
    "capture_sent_tasks",
    "hook_calls",
    "recording",
    "timeline",
]

__version__ = "0.1.0"
