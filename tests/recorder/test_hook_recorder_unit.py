"""Unit tests of pytest_celerybase.recorder: the records, their queries and the stack.

Fast (no inner pytest session); also part of the mutation-testing selection.  Records are
made the way the instrumentation makes them (:meth:`HookRecorder.add_hook`) or by
Celery's own tracer; waiting is checked through :meth:`HookRecorder.wait_idle`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.app import trace

from pytest_celerybase.errors import NoActiveRecorderError
from pytest_celerybase.recorder import (
    HOOKS,
    ExecutionInfo,
    HookCall,
    HookRecorder,
    LifecycleEvent,
    Publication,
    current_recorder,
    recording,
)
from pytest_celerybase.recorder.inflight import DEFAULT_WAIT_TIMEOUT

SUCCESS = ["before_start", "on_success", "after_return"]


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("unit", set_as_current=False)
    app.conf.update(broker_url="memory://", result_backend="cache+memory://")
    yield app
    app.close()


# -- HookCall ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "text"),
    [
        (HookCall("on_failure", "t", "1", exc=ValueError("x")), "on_failure(ValueError('x'))"),
        (HookCall("on_retry", "t", "1", exc=KeyError("k")), "on_retry(KeyError('k'))"),
        (HookCall("on_failure", "t", "1"), "on_failure"),
        (HookCall("after_return", "t", "1", status="SUCCESS"), "after_return(SUCCESS)"),
        (HookCall("after_return", "t", "1"), "after_return"),
        (HookCall("before_start", "t", "1", exc=ValueError("x")), "before_start"),
        (HookCall("on_success", "t", "1", status="SUCCESS"), "on_success"),
    ],
)
def test_hookcall_describe(call: HookCall, text: str) -> None:
    assert call.describe() == text


def test_hookcall_defaults_equality_and_repr() -> None:
    call = HookCall("before_start", "t", "id")
    assert (call.args, call.kwargs, call.retval, call.exc, call.status) == (None,) * 5
    assert (call.einfo, call.thread) == (None, "")
    # einfo and thread are neither compared nor shown
    assert call == HookCall("before_start", "t", "id", einfo=object(), thread="other")
    assert "einfo" not in repr(call) and "thread" not in repr(call)
    assert call != HookCall("before_start", "t", "id2")
    assert HOOKS == ("before_start", "on_success", "on_failure", "on_retry", "after_return")


# -- records and queries -----------------------------------------------------------------
def _filled() -> HookRecorder:
    r = HookRecorder()
    r.add_hook("before_start", "a", ("1", (1,), {}), {})
    r.add_hook("before_start", "b", ("2", (), {}), {})
    r.add_hook("on_success", "a", (5, "1", (1,), {}), {})
    r.add_hook("on_failure", "b", (KeyError("k"), "2", (), {}, "einfo"), {})
    r.add_hook("before_start", "a", (), {"task_id": 3, "args": (), "kwargs": {}})
    return r


def test_add_hook_builds_a_hookcall_per_call_when_read() -> None:
    r = _filled()
    start, other, success, failure, keywords = r.calls
    assert other.task_name == "b"
    assert start == HookCall("before_start", "a", "1", (1,), {})
    assert success == HookCall("on_success", "a", "1", (1,), {}, retval=5)
    assert failure.exc is not None and failure.einfo == "einfo" and failure.task_id == "2"
    assert keywords == HookCall("before_start", "a", "3", (), {})  # str(task_id)
    assert {c.thread for c in r.calls} == {threading.current_thread().name}
    assert r.calls is r.calls  # one list, extended as records arrive
    r.add_hook("after_return", "a", ("SUCCESS", 5, "1", (1,), {}, None), {})
    assert r.calls[-1] == HookCall("after_return", "a", "1", (1,), {}, 5, status="SUCCESS")
    assert len(r) == 6


def test_calls_for_and_hooks_for_filter_by_name_and_id() -> None:
    r = _filled()
    assert len(r.calls_for()) == 5
    assert r.hooks_for("a") == ["before_start", "on_success", "before_start"]
    assert r.hooks_for(task_id="2") == ["before_start", "on_failure"]
    assert r.hooks_for("a", "3") == ["before_start"]
    assert r.hooks_for("a", "2") == []
    assert r.hooks_for() == [c.hook for c in r.calls]


def test_len_repr_task_names_and_clear() -> None:
    r = _filled()
    r.executions["9"] = ExecutionInfo("9", "c", eager=False, propagate=False)
    r.executions["1"] = ExecutionInfo("1", "a", eager=False, propagate=False)
    r.published.append(Publication("9", "c"))
    assert len(r) == 5
    assert r.task_names() == ["a", "b", "c"]
    assert repr(r) == "<HookRecorder calls=5 tasks=3>"
    r.clear()
    assert (r.calls, r.executions, r.published, len(r)) == ([], {}, [], 0)
    assert repr(r) == "<HookRecorder calls=0 tasks=0>"
    r.add_hook("before_start", "d", ("4", (), {}), {})  # recording goes on after clear()
    assert r.hooks_for("d") == ["before_start"]


def test_wait_timeout_default_and_given() -> None:
    assert DEFAULT_WAIT_TIMEOUT == 10.0
    assert HookRecorder().wait_timeout == DEFAULT_WAIT_TIMEOUT
    assert HookRecorder(wait_timeout=0.5).wait_timeout == 0.5
    with recording() as default, recording(wait_timeout=2.5) as given:
        assert (default.wait_timeout, given.wait_timeout) == (DEFAULT_WAIT_TIMEOUT, 2.5)


# -- the stack ---------------------------------------------------------------------------
def test_current_recorder_is_the_innermost() -> None:
    outer = current_recorder()  # the plugin's, for this test
    with recording() as inner:
        assert current_recorder() is inner
        with recording() as innermost:
            assert current_recorder() is innermost
        assert current_recorder() is inner
    assert current_recorder() is outer
    assert issubclass(NoActiveRecorderError, RuntimeError)


def test_outside_any_recording_the_error_says_how_to_record() -> None:
    # A script, not a test: inside this test the plugin's recorder is active.
    script = (
        "from pytest_celerybase import hook_calls, recording\n"
        "try:\n"
        "    hook_calls()\n"
        "except RuntimeError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "with recording() as rec:\n"
        "    print('inside:', hook_calls() == [] and len(rec) == 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [
        "NoActiveRecorderError no hook recorder is active: hook assertions work inside a "
        "test run with the celerybase plugin (pytest -p celerybase) or inside "
        "`with pytest_celerybase.recording():`",
        "inside: True",
    ]


# -- executions and waiting, through Celery's own tracer ---------------------------------
def _worker_tracer(app: Celery, gate: threading.Event | None = None) -> Any:
    """A worker-style (not eager) tracer of a task that waits for ``gate``."""

    @app.task(shared=False, name="unit.gated")
    def gated() -> int:
        if gate is not None:
            assert gate.wait(5)
        return 1

    task = gated._get_current_object()
    return trace.build_tracer(task.name, task, eager=False, app=app)


def test_worker_executions_are_counted_and_waited_for(app: Celery) -> None:
    gate = threading.Event()
    with recording(wait_timeout=5) as r:
        tracer = _worker_tracer(app, gate)
        runner = threading.Thread(target=tracer, args=("w1", (), {}))
        runner.start()
        try:
            deadline = time.monotonic() + 5
            while "w1" not in r.executions and time.monotonic() < deadline:
                time.sleep(0.001)
            assert r.wait_idle(timeout=0.02) is False  # running, gated
            assert r.wait_idle("unit.gated", timeout=0) is False
            assert r.wait_idle("other", timeout=0) is True
            assert r.wait_idle(task_id="w2", timeout=0) is True
            threading.Timer(0.02, gate.set).start()
            assert r.wait_idle("unit.gated") is True  # woken when the run finished
        finally:
            gate.set()
            runner.join()
        tracer("w1", (), {})  # the same id again (a retry): a second run
    assert r.executions["w1"] == ExecutionInfo("w1", "unit.gated", False, False, 2)
    assert r.hooks_for(task_id="w1") == SUCCESS * 2


def test_eager_propagating_executions_are_recorded_but_never_waited_for(app: Celery) -> None:
    @app.task(shared=False, name="unit.boom")
    def boom() -> None:
        raise ValueError("boom")

    with recording() as r:
        with pytest.raises(ValueError):
            boom.apply(task_id="e1", throw=True)
        assert r.wait_idle(timeout=0) is True
    assert r.executions["e1"] == ExecutionInfo("e1", "unit.boom", True, True, 1)


def test_a_late_after_task_publish_goes_after_its_own_before_task_publish() -> None:
    # The test thread publishes; the worker thread runs the task and publishes its retry
    # (same task id) before the test thread hears that its own message went out.
    from pytest_celerybase.recorder.records import causal_order

    def event(name: str, thread: str) -> LifecycleEvent:
        return LifecycleEvent(name, "signal", "t", "id-1", 0.0, 1, thread)

    recorded = [
        event("before_task_publish", "MainThread"),
        event("task_received", "worker"),
        event("task_prerun", "worker"),
        event("before_task_publish", "worker"),  # the retry's message
        event("after_task_publish", "worker"),
        event("after_task_publish", "MainThread"),  # late
    ]
    assert [(e.name, e.thread) for e in causal_order(recorded)] == [
        ("before_task_publish", "MainThread"),
        ("after_task_publish", "MainThread"),
        ("task_received", "worker"),
        ("task_prerun", "worker"),
        ("before_task_publish", "worker"),
        ("after_task_publish", "worker"),
    ]


def _events(*spec: tuple[str, int, str]) -> list[Any]:
    from pytest_celerybase.recorder.records import LifecycleEvent

    return [
        LifecycleEvent(name, "signal", "t", "id-1", float(i), pid, thread)
        for i, (name, pid, thread) in enumerate(spec)
    ]


def test_causal_order_tells_a_prefork_child_from_its_parent() -> None:
    from pytest_celerybase.recorder.records import causal_order

    # A child has the thread name of the parent thread that forked it: the parent's
    # task_received of the retry the child published comes after the child's attempt.
    parent, child = 1, 2
    events = _events(
        ("task_received", parent, "W"), ("task_prerun", child, "W"),
        ("before_task_publish", child, "W"), ("task_received", parent, "W"),
        ("on_retry", child, "W"), ("task_postrun", child, "W"),
        ("task_prerun", child, "W"), ("task_postrun", child, "W"),
    )
    assert [(e.name, e.pid) for e in causal_order(events)] == [
        ("task_received", parent), ("task_prerun", child), ("before_task_publish", child),
        ("on_retry", child), ("task_postrun", child), ("task_received", parent),
        ("task_prerun", child), ("task_postrun", child),
    ]


def test_causal_order_leaves_a_redelivery_where_it_was_received() -> None:
    from pytest_celerybase.recorder.records import causal_order

    # The first child died mid-task (no task_postrun) without publishing anything: the
    # message came back from the broker, not from the attempt.
    events = _events(
        ("task_received", 1, "W"), ("task_prerun", 2, "W"), ("before_start", 2, "W"),
        ("task_received", 1, "W"), ("task_prerun", 3, "W"), ("task_postrun", 3, "W"),
    )
    assert causal_order(events) == events
