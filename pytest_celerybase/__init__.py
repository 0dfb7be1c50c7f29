"""pytest-celerybase: test Celery custom task classes and their lifecycle hooks.

The public API is re-exported here.  Each name is imported on first access (PEP 562), so
importing the package (which every submodule import does, the pytest plugin's included)
costs nothing at pytest start-up; nothing here imports pytest or Celery.

:data:`_EXPORTS` is the list of public names (``__all__`` is derived from it); the
``TYPE_CHECKING`` imports below repeat it for type checkers, and the test suite checks
that the two agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_celerybase._lazy import exports

if TYPE_CHECKING:
    from pytest_celerybase.assertions import apply_and_raise as apply_and_raise
    from pytest_celerybase.assertions import assert_hooks_called as assert_hooks_called
    from pytest_celerybase.assertions import (
        assert_hooks_called_in_order as assert_hooks_called_in_order,
    )
    from pytest_celerybase.assertions import assert_hooks_not_called as assert_hooks_not_called
    from pytest_celerybase.assertions import hook_calls as hook_calls
    from pytest_celerybase.bases.sinks import MemorySink as MemorySink
    from pytest_celerybase.errors import CelerybaseWarning as CelerybaseWarning
    from pytest_celerybase.errors import HeldMessageError as HeldMessageError
    from pytest_celerybase.errors import NoActiveRecorderError as NoActiveRecorderError
    from pytest_celerybase.errors import NoSentTasksError as NoSentTasksError
    from pytest_celerybase.errors import RealBrokerWarning as RealBrokerWarning
    from pytest_celerybase.errors import RunawayTasksError as RunawayTasksError
    from pytest_celerybase.errors import UnredirectedEngineError as UnredirectedEngineError
    from pytest_celerybase.errors import UnregisteredSentTaskError as UnregisteredSentTaskError
    from pytest_celerybase.errors import UnregisteredTaskError as UnregisteredTaskError
    from pytest_celerybase.errors import WorkerStartError as WorkerStartError
    from pytest_celerybase.errors import WorkerStopError as WorkerStopError
    from pytest_celerybase.lifecycle import assert_hooks_cooperative as assert_hooks_cooperative
    from pytest_celerybase.lifecycle import assert_lifecycle as assert_lifecycle
    from pytest_celerybase.lifecycle import timeline as timeline
    from pytest_celerybase.recorder.activation import recording as recording
    from pytest_celerybase.recorder.hook_recorder import ExecutionInfo as ExecutionInfo
    from pytest_celerybase.recorder.hook_recorder import HookRecorder as HookRecorder
    from pytest_celerybase.recorder.records import HOOKS as HOOKS
    from pytest_celerybase.recorder.records import SIGNALS as SIGNALS
    from pytest_celerybase.recorder.records import HookCall as HookCall
    from pytest_celerybase.recorder.records import LifecycleEvent as LifecycleEvent
    from pytest_celerybase.resources.sql_capture import SQLQueries as SQLQueries
    from pytest_celerybase.sent_tasks.assertions import assert_task_not_sent as assert_task_not_sent
    from pytest_celerybase.sent_tasks.assertions import assert_task_sent as assert_task_sent
    from pytest_celerybase.sent_tasks.collection import SentTasks as SentTasks
    from pytest_celerybase.sent_tasks.collection import capture_sent_tasks as capture_sent_tasks
    from pytest_celerybase.sent_tasks.message import SentTask as SentTask
    from pytest_celerybase.worker.live import LiveWorker as LiveWorker

__version__ = "0.1.0"

#: Public name -> the module defining it.
_EXPORTS = {
    "apply_and_raise": "assertions",
    "assert_hooks_called": "assertions",
    "assert_hooks_called_in_order": "assertions",
    "assert_hooks_not_called": "assertions",
    "hook_calls": "assertions",
    "assert_hooks_cooperative": "lifecycle",
    "assert_lifecycle": "lifecycle",
    "timeline": "lifecycle",
    "assert_task_not_sent": "sent_tasks.assertions",
    "assert_task_sent": "sent_tasks.assertions",
    "capture_sent_tasks": "sent_tasks.collection",
    "SentTasks": "sent_tasks.collection",
    "SentTask": "sent_tasks.message",
    "recording": "recorder.activation",
    "HookRecorder": "recorder.hook_recorder",
    "ExecutionInfo": "recorder.hook_recorder",
    "HOOKS": "recorder.records",
    "SIGNALS": "recorder.records",
    "HookCall": "recorder.records",
    "LifecycleEvent": "recorder.records",
    "LiveWorker": "worker.live",
    "SQLQueries": "resources.sql_capture",
    "MemorySink": "bases.sinks",
    "CelerybaseWarning": "errors",
    "HeldMessageError": "errors",
    "NoActiveRecorderError": "errors",
    "NoSentTasksError": "errors",
    "RealBrokerWarning": "errors",
    "RunawayTasksError": "errors",
    "UnredirectedEngineError": "errors",
    "UnregisteredSentTaskError": "errors",
    "UnregisteredTaskError": "errors",
    "WorkerStartError": "errors",
    "WorkerStopError": "errors",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = exports(__name__, _EXPORTS)
