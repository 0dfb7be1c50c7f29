"""TestTally and LifecycleCoverage on hand-made records: which hook calls count, and how.

The records are written as the instrumentation writes them (see
``HookRecorder.raw``): a hook as ``(hook, task name, args, kwargs, time, thread)``, a
tracer signal as ``(signal, sender task, task id, state, time, thread)``, an event from a
prefork child with ``(thread name, pid)`` as its thread and the child's ``HookCall``.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from celery import Task

from pytest_celerybase import HookCall, HookRecorder
from pytest_celerybase.coverage import LifecycleCoverage, TestTally
from pytest_celerybase.recorder.hook_recorder import ExecutionInfo
from pytest_celerybase.recorder.records import COOPERATION

TEST_THREAD = threading.current_thread()
POOL = threading.Thread(name="pool")  # never started: only its identity matters
class _Task:
    name = "t.pay"


TASK = _Task()  # what the tracer sends its signals with


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


class _Other:
    name = "t.refund"


def _random_log(rng: random.Random) -> list[tuple[Any, ...]]:
    """Executions of two tasks in one thread as Celery's eager tracer records them (some
    nested, as an eager retry runs the next attempt inside the first), with notes,
    signals, and now and then a hook the test calls itself."""
    events: list[tuple[Any, ...]] = []
    thread = rng.choice([TEST_THREAD, POOL])

    def execution(depth: int) -> None:
        task = rng.choice([TASK, _Other()])
        task_id = str(rng.randrange(10**6))
        events.append(("task_prerun", task, task_id, None, 0.0, thread))
        events.append(_hook_event("before_start", task.name, task_id, thread))
        for _ in range(rng.randrange(3)):
            roll = rng.random()
            if roll < 0.2 and depth < 2:
                execution(depth + 1)
            elif roll < 0.35:
                events.append((COOPERATION, task.name, task_id,
                               ("on_failure", ("A", "B"), ("A",)), 0.0, thread))  # fmt: skip
            elif roll < 0.45:
                events.append(("override_ran", task.name, "m.Base", "__call__", 0.0, thread))
            elif roll < 0.6:
                events.append(("task_success", task, None, None, 0.0, thread))
            else:
                hook = rng.choice(["on_success", "on_failure", "on_retry", "after_return"])
                events.append(_hook_event(hook, task.name, task_id, thread))
        events.append(("task_postrun", task, task_id, "SUCCESS", 0.0, thread))

    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.1:  # a hook the test calls itself, outside any execution
            events.append(_hook_event("on_retry", "t.pay", "x", thread))
        execution(0)
    return events


def _hook_event(name: str, task_name: str, task_id: str, thread: Any) -> tuple[Any, ...]:
    return (name, task_name, hook(name, task_id)[2], None, 0.0, thread)


def _state(tally: TestTally) -> tuple[Any, ...]:
    running = {k: v for k, v in tally._running.items() if v}
    return tally.hooks, tally.cooperation, tally.overrides, tally.ran, running


def test_the_fast_count_and_the_one_by_one_count_agree() -> None:
    rng = random.Random(22)
    fast = 0
    for _ in range(400):
        events = _random_log(rng)
        cut = rng.randrange(len(events) + 1)  # read twice, as before a clear() and after
        recorder = HookRecorder()
        one, other = TestTally(TEST_THREAD), TestTally(TEST_THREAD)
        for part in (events[:cut], events[cut:]):
            start = len(recorder.raw)
            for event in part:
                recorder.raw.extend(event)
            end = len(recorder.raw)
            if end > start:
                fast += one._read_one_thread(recorder.raw, start, end, recorder) or (
                    one._read_events(recorder.raw, start, end, recorder) or 0
                )
                other._read_events(recorder.raw, start, end, recorder)
        assert _state(one) == _state(other), events
    assert fast > 300  # most logs took the fast path (the others fell back, and agree)


def test_both_counts_agree_on_a_real_recording() -> None:
    from pytest_celerybase import recording
    from pytest_celerybase.apps import isolated_app

    with isolated_app() as app:

        @app.task(base=Audit, name="t.real", bind=True, max_retries=1)
        def real(self: Any, n: int) -> int:
            if n == 1:
                raise ValueError(n)
            if n == 2:
                raise self.retry(countdown=0)
            return n

        with recording() as recorder:
            for n in (0, 1, 2, 3, 4, 5, 6, 7):
                real.apply((n,))
            end = len(recorder.raw)
            fast, slow = TestTally(TEST_THREAD), TestTally(TEST_THREAD)
            assert fast._read_one_thread(recorder.raw, 0, end, recorder)
            slow._read_events(recorder.raw, 0, end, recorder)
            read = TestTally(TEST_THREAD)
            read.read(recorder)
    assert _state(fast) == _state(slow) == _state(read)
    # 8 calls, the retried one in two attempts (the second fails: max_retries=1)
    assert fast.hooks[("t.real", "before_start", "eager")] == 9
    assert fast.hooks[("t.real", "on_retry", "eager")] == 1
    assert fast.hooks[("t.real", "on_failure", "eager")] == 2
