"""Recording: every hook call and task signal of the test, and which recorder is active.

``records`` (what a record is), ``hook_recorder`` (one test's records and their queries),
``active``/``activation``/``threads`` (which recorder and which threads count),
``instrument``/``signals``/``cooperative`` (what is changed in Celery and user classes to
record), ``inflight`` (what a live worker still has to run), ``targets`` and ``explain``
(what an assertion is about, and its failure text), ``report`` (the timeline section) and
``parity`` (eager vs worker, as measured).  Names are imported on first use (the plugin
imports a module of this package at start-up).  No pytest import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_celerybase._lazy import exports

if TYPE_CHECKING:
    from pytest_celerybase.recorder.activation import recording as recording
    from pytest_celerybase.recorder.active import current_recorder as current_recorder
    from pytest_celerybase.recorder.hook_recorder import ExecutionInfo as ExecutionInfo
    from pytest_celerybase.recorder.hook_recorder import HookRecorder as HookRecorder
    from pytest_celerybase.recorder.hook_recorder import Publication as Publication
    from pytest_celerybase.recorder.records import HOOKS as HOOKS
    from pytest_celerybase.recorder.records import SIGNALS as SIGNALS
    from pytest_celerybase.recorder.records import HookCall as HookCall
    from pytest_celerybase.recorder.records import LifecycleEvent as LifecycleEvent

_EXPORTS = {
    "recording": "recorder.activation",
    "current_recorder": "recorder.active",
    "ExecutionInfo": "recorder.hook_recorder",
    "HookRecorder": "recorder.hook_recorder",
    "Publication": "recorder.hook_recorder",
    "HOOKS": "recorder.records",
    "SIGNALS": "recorder.records",
    "HookCall": "recorder.records",
    "LifecycleEvent": "recorder.records",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)
