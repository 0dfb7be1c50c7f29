"""pytest-celerybase: test Celery custom task classes and their lifecycle hooks.

The public API is re-exported here.  Each name is imported on first access (PEP 562), so
importing the package (which every submodule import does, the pytest plugin's included)
costs nothing at pytest start-up; nothing here imports pytest or Celery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_celerybase.assertions import (
        apply_and_raise,
        assert_hooks_called,
        assert_hooks_called_in_order,
        assert_hooks_not_called,
        assert_task_not_sent,
        assert_task_sent,
        hook_calls,
    )
    from pytest_celerybase.lifecycle import (
        assert_hooks_cooperative,
        assert_lifecycle,
        timeline,
    )
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

# Public name -> the module defining it.
_EXPORTS = {
    "HOOKS": "recorder",
    "SIGNALS": "recorder",
    "CelerybaseWarning": "recorder",
    "ExecutionInfo": "recorder",
    "HookCall": "recorder",
    "HookRecorder": "recorder",
    "LifecycleEvent": "recorder",
    "NoActiveRecorderError": "recorder",
    "recording": "recorder",
    "apply_and_raise": "assertions",
    "assert_hooks_called": "assertions",
    "assert_hooks_called_in_order": "assertions",
    "assert_hooks_not_called": "assertions",
    "assert_task_not_sent": "assertions",
    "assert_task_sent": "assertions",
    "hook_calls": "assertions",
    "assert_hooks_cooperative": "lifecycle",
    "assert_lifecycle": "lifecycle",
    "timeline": "lifecycle",
    "HeldMessageError": "outbox",
    "NoSentTasksError": "outbox",
    "RunawayTasksError": "outbox",
    "SentTask": "outbox",
    "SentTasks": "outbox",
    "UnregisteredSentTaskError": "outbox",
    "capture_sent_tasks": "outbox",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_celerybase' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pytest_celerybase.{module}"), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
