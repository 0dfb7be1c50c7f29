"""TestTally and LifecycleCoverage on hand-made records: which hook calls count, and how.

The records are written as the instrumentation writes them (see
``HookRecorder.raw``): a hook as ``(hook, task name, args, kwargs, time, thread)``, a
tracer signal as ``(signal, sender task, task id, state, time, thread)``, an event from a
prefork child with ``(thread name, pid)`` as its thread and the child's ``HookCall``.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Task

from pytest_celerybase import HookCall, HookRecorder
from pytest_celerybase.coverage import LifecycleCoverage, TestTally
from pytest_celerybase.recorder.hook_recorder import ExecutionInfo
from pytest_celerybase.recorder.records import COOPERATION

TEST_THREAD = threading.current_thread()
POOL = threading.Thread(name="pool")  # never started: only its identity matters
TASK = SimpleNamespace(name="t.pay")


def hook(name: str, task_id: str, thread: Any = TEST_THREAD) -> tuple[Any, ...]:
    args: dict[str, tuple[Any, ...]] = {
        "before_start": (task_id, (), {}),
        "on_success": (1, task_id, (), {}),
        "on_failure": (ValueError(), task_id, (), {}, None),
        "on_retry": (ValueError(), task_id, (), {}, None),
        "after_return": ("SUCCESS", 1, task_id, (), {}, None),
    }
    return (name, "t.pay", args[name], None, 0.0, thread)


def run(task_id: str, *hooks: str, thread: Any = TEST_THREAD) -> list[tuple[Any, ...]]:
    return [
        ("task_prerun", TASK, task_id, None, 0.0, thread),
        *(hook(h, task_id, thread) for h in hooks),
        ("task_postrun", TASK, task_id, "SUCCESS", 0.0, thread),
    ]


def tally_of(*events: tuple[Any, ...], recorder: HookRecorder | None = None) -> TestTally:
    recorder = HookRecorder() if recorder is None else recorder
    for event in events:
        recorder.raw.extend(event)
    tally = TestTally(TEST_THREAD)
    tally.read(recorder)
    return tally


def test_hook_calls_inside_an_execution_count_with_its_mode() -> None:
    recorder = HookRecorder()
    recorder.executions["w1"] = ExecutionInfo("w1", "t.pay", eager=False, propagate=False)
    tally = tally_of(
        *run("e1", "before_start", "on_success"),
        *run("w1", "before_start", thread=POOL),
        recorder=recorder,
    )
    assert tally.hooks == {
        ("t.pay", "before_start", "eager"): 1,
        ("t.pay", "on_success", "eager"): 1,
        ("t.pay", "before_start", "worker"): 1,
    }
    assert tally.ran == {"t.pay"}


def test_a_call_outside_executions_counts_only_from_another_thread_with_a_known_id() -> None:
    child = ("MainThread", 4242)
    child_call = HookCall("before_start", "t.pay", "p1", (), {}, pid=4242)
    tally = tally_of(
        ("task_prerun", "t.pay", "p1", {}, 0.0, child),  # resolved in the child
        ("before_start", "t.pay", child_call, None, 0.0, child),
        ("task_postrun", "t.pay", "p1", {}, 0.0, child),
        # Celery 5.7, hard time limit: the parent's pool thread runs on_failure.
        hook("on_failure", "p1", POOL),
        hook("on_retry", "p1", TEST_THREAD),  # the test calling the hook itself
        hook("on_success", "made-up", POOL),  # no such execution
    )
    assert tally.hooks == {
        ("t.pay", "before_start", "prefork"): 1,
        ("t.pay", "on_failure", "prefork"): 1,
    }


def test_nested_executions_and_a_clear_in_between() -> None:
    recorder = HookRecorder()
    outer = run("a", "before_start")
    # an eager retry runs the next attempt inside the first one
    events = [*outer[:2], *run("a", "before_start", "on_success"), hook("on_retry", "a"),
              outer[-1]]  # fmt: skip
    for event in events[:3]:
        recorder.raw.extend(event)
    tally = TestTally(TEST_THREAD)
    tally.read_before_clear(recorder)
    recorder.raw.clear()  # what clear() does after its callbacks
    for event in events[3:]:
        recorder.raw.extend(event)
    tally.read(recorder)
    tally.read(recorder)  # reading again counts nothing twice
    assert tally.hooks == {
        ("t.pay", "before_start", "eager"): 2,
        ("t.pay", "on_success", "eager"): 1,
        ("t.pay", "on_retry", "eager"): 1,
    }


class Audit(Task):  # type: ignore[misc]
    def on_failure(self, *args: Any) -> None:
        pass


class Alerts(Task):  # type: ignore[misc]
    def on_failure(self, *args: Any) -> None:
        super().on_failure(*args)


class Shop(Audit, Alerts):  # type: ignore[misc]
    pass


def _cooperation(task_id: str, ran: tuple[str, ...]) -> tuple[Any, ...]:
    return (COOPERATION, "t.pay", task_id, ("on_failure", ("Audit", "Alerts"), ran), 0.0,
            TEST_THREAD)  # fmt: skip


def test_cooperation_notes_say_which_override_ran_and_which_stopped_the_chain() -> None:
    events = run("1", "on_failure")
    events.insert(-1, _cooperation("1", ("Audit",)))  # Audit did not call super()
    more = run("2", "on_failure")
    more.insert(-1, _cooperation("2", ("Audit", "Alerts")))
    coverage = LifecycleCoverage()
    coverage.add_test(tally_of(*events, *more), {"t.pay": Shop})
    audit = coverage.classes[f"{__name__}.Audit"].methods["on_failure"]
    alerts = coverage.classes[f"{__name__}.Alerts"].methods["on_failure"]
    assert (audit.modes, audit.calls, audit.stopped_by) == ({"eager": 2}, 2, {})
    assert (alerts.modes, alerts.calls) == ({"eager": 1}, 2)
    assert alerts.stopped_by == {f"{__name__}.Audit.on_failure": 1}


def test_merged_data_sums_the_counts_and_unites_the_tasks() -> None:
    one, two = LifecycleCoverage(), LifecycleCoverage()
    one.add_test(tally_of(*run("1", "on_failure")), {"t.pay": Audit})
    two.add_test(tally_of(*run("2", "on_failure")), {"t.pay": Audit})
    two.add_registered({"t.refund": Audit(), "celery.chord_unlock": Audit()})
    total = LifecycleCoverage()
    total.merge(one.to_data())
    total.merge(two.to_data())
    audit = total.classes[f"{__name__}.Audit"]
    assert audit.methods["on_failure"].modes == {"eager": 2}
    assert (audit.tasks, audit.ran) == ({"t.pay", "t.refund"}, {"t.pay"})  # not Celery's own
    assert total.never_ran() == []


@pytest.mark.parametrize("registered_first", [True, False])
def test_a_task_known_as_registered_and_as_run_is_run(registered_first: bool) -> None:
    coverage = LifecycleCoverage()
    steps = [lambda: coverage.add_registered({"t.pay": Audit()}),
             lambda: coverage.add_test(tally_of(*run("1", "on_failure")), {"t.pay": Audit})]
    for step in steps if registered_first else reversed(steps):
        step()
    assert coverage.classes[f"{__name__}.Audit"].ran == {"t.pay"}
