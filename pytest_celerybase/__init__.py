"""pytest-celerybase: test Celery custom task classes and their lifecycle hooks.

The public API is re-exported here; importing it does not import pytest or Celery
(the Celery-dependent parts import Celery when called).
"""

from pytest_celerybase.assertions import (
    apply_and_raise,
    assert_hooks_called,
    assert_hooks_called_in_order,
    assert_hooks_not_called,
    hook_calls,
)
from pytest_celerybase.recorder import (
    HOOKS,
    ExecutionInfo,
    HookCall,
    HookRecorder,
    NoActiveRecorderError,
    recording,
)

__all__ = [
    "HOOKS",
    "ExecutionInfo",
    "HookCall",
    "HookRecorder",
    "NoActiveRecorderError",
    "apply_and_raise",
    "assert_hooks_called",
    "assert_hooks_called_in_order",
    "assert_hooks_not_called",
    "hook_calls",
    "recording",
]

__version__ = "0.1.0"
