"""Celery's signals recorded with the hooks: timeline(), assert_lifecycle(), as a user runs them."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

EAGER_SUCCESS = [
    "task_prerun", "before_start", "on_success", "task_success", "after_return", "task_postrun",
]  # fmt: skip


def test_eager_sequences_of_success_failure_retry_and_propagation(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_lifecycle, timeline

def test_success_failure_retry(eager_app):
    @eager_app.task
    def ok():
        return 1

    @eager_app.task
    def bad():
        raise ValueError("no")

    @eager_app.task(bind=True, default_retry_delay=0)
    def flaky(self):
        if self.request.retries < 1:
            raise self.retry(exc=KeyError("again"))
        return 2

    ok.delay(); bad.delay(); result = flaky.delay()
    assert_lifecycle(ok, ["task_prerun", "before_start", "on_success", "task_success",
                          "after_return", "task_postrun"])
    assert_lifecycle(bad, ["task_prerun", "before_start", "on_failure", "task_failure",
                           "after_return", "task_postrun"])
    assert_lifecycle(result, ["task_prerun", "before_start", "on_retry", "task_retry",
                              "task_postrun", "task_prerun", "before_start", "on_success",
                              "task_success", "after_return", "task_postrun"])

@pytest.mark.celerybase(task_eager_propagates=True)
def test_propagating(eager_app):
    @eager_app.task
    def bad():
        raise ValueError("no")

    with pytest.raises(ValueError):
        bad.delay()
    assert_lifecycle(bad, ["task_prerun", "before_start", "task_postrun",
                           "task_internal_error"])
"""
    )
    run().assert_outcomes(passed=2)


def test_timeline_events_carry_kind_time_pid_thread_state_and_exception(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import os, threading
from pytest_celerybase import LifecycleEvent, timeline

def test_it(eager_app):
    @eager_app.task
    def bad(x):
        raise ValueError(x)

    result = bad.delay(7)
    events = timeline(bad)
    assert all(isinstance(e, LifecycleEvent) for e in events)
    assert [(e.name, e.kind) for e in events] == [
        ("task_prerun", "signal"), ("before_start", "hook"), ("on_failure", "hook"),
        ("task_failure", "signal"), ("after_return", "hook"), ("task_postrun", "signal"),
    ]
    assert {e.task_id for e in events} == {result.id}
    assert {e.task_name for e in events} == {bad.name}
    assert {e.pid for e in events} == {os.getpid()}
    assert {e.thread for e in events} == {threading.current_thread().name}
    times = [e.time for e in events]
    assert times == sorted(times) and 0 < times[0] < 60  # seconds since the test began
    assert events[2].exc.args == (7,) and events[3].exc is events[2].exc
    assert (events[4].state, events[5].state) == ("FAILURE", "FAILURE")
    assert timeline(result) == events == timeline(bad.name)
    assert timeline(task_id=result.id) == events
    assert timeline() == events  # everything recorded in the test
    assert events[2].describe() == "on_failure(ValueError(7))"
"""
    )
    run().assert_outcomes(passed=1)


def test_worker_sequence_starts_with_the_publish_signals(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_lifecycle, timeline

@pytest.mark.parametrize("pool", [{}, {"worker_pool": "threads", "worker_concurrency": 1}])
def test_on_a_worker(request, pool):
    request.applymarker(pytest.mark.celerybase(**pool))
    live_worker = request.getfixturevalue("live_worker")

    @live_worker.app.task(bind=True, default_retry_delay=0)
    def flaky(self):
        if self.request.retries < 1:
            raise self.retry(exc=KeyError("again"))
        return 2

    result = flaky.delay()
    assert result.get(timeout=10) == 2
    # the assertion waits for on_success/after_return/task_postrun: no sleep needed
    assert_lifecycle(result, [
        "before_task_publish", "after_task_publish", "task_received",
        "task_prerun", "before_start",
        "before_task_publish", "after_task_publish",  # the retry's message
        "on_retry", "task_retry", "task_postrun",
        "task_received", "task_prerun", "before_start", "on_success", "task_success",
        "after_return", "task_postrun",
    ])
    first, *_, last = timeline(result)
    assert first.name == "before_task_publish" and first.thread == "MainThread"
    assert last.name == "task_postrun" and last.thread != "MainThread"  # the worker's
"""
    )
    run().assert_outcomes(passed=2)


def test_mismatch_message_and_propagation_hint_name_the_skipped_signals(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_lifecycle

@pytest.mark.celerybase(task_eager_propagates=True)
def test_it(eager_app):
    @eager_app.task
    def charge():
        raise ValueError("declined")

    with pytest.raises(ValueError):
        charge.delay()
    assert_lifecycle(charge, ["task_prerun", "before_start", "on_failure", "task_failure",
                              "after_return", "task_postrun"])
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task '*.charge' to go through exactly:",
            "E         ['task_prerun', 'before_start', 'on_failure', 'task_failure', "
            "'after_return', 'task_postrun']",
            "E       but the recorded lifecycle was:",
            "E         ['task_prerun', 'before_start', 'task_postrun', 'task_internal_error']",
            "E       Per execution (task id):",
            "E         *-*-*-*-* [[]*.charge]: task_prerun, before_start, task_postrun, "
            "task_internal_error(ValueError('declined'))",
            "E       Diff (- expected, + actual):",
            "E         - on_failure",
            "E         - task_failure",
            "E       Hint: 1 execution(s) ran eagerly with exceptions propagating "
            "(task_eager_propagates=True, or apply(throw=True)): Celery raises before "
            "on_failure/on_retry/after_return run and before task_failure/task_retry are "
            "sent (https://github.com/celery/celery/issues/5666).*",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_celerybase/lifecycle.py*")


@pytest.mark.parametrize(
    ("events", "error"),
    [
        (
            '["task_prerun", "task_sucess"]',
            "ValueError: unknown hook or signal 'task_sucess' (did you mean 'task_success'?); "
            "valid events are: before_start, *, task_internal_error",
        ),
        ('"task_prerun"', "TypeError: events must be a list of hook or signal names, got the "
                          "str 'task_prerun'; write ['task_prerun']"),
        ('{"task_prerun"}', "TypeError: events must be a list of hook or signal names in "
                            "call order, got a set {'task_prerun'}, which has no order*"),
    ],
)
def test_bad_events_are_named(
    pytester: pytest.Pytester, run: RunPytest, events: str, error: str
) -> None:
    pytester.makepyfile(
        f"""
from pytest_celerybase import assert_lifecycle

def test_it(eager_app):
    @eager_app.task
    def t():
        return 1
    t.delay()
    assert_lifecycle(t, {events})
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E       {error}"])


def test_signal_handlers_of_the_user_still_run(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
from celery import signals
from pytest_celerybase import assert_lifecycle

seen = []

def on_prerun(sender=None, task_id=None, **kw):
    seen.append(("prerun", task_id))

def on_success(sender=None, result=None, **kw):
    seen.append(("success", result))

def test_user_handlers(eager_app):
    signals.task_prerun.connect(on_prerun)
    signals.task_success.connect(on_success)
    try:
        @eager_app.task
        def t():
            return 5
        r = t.delay()
        assert seen == [("prerun", r.id), ("success", 5)]
        assert_lifecycle(r, ["task_prerun", "before_start", "on_success", "task_success",
                             "after_return", "task_postrun"])
    finally:
        signals.task_prerun.disconnect(on_prerun)
        signals.task_success.disconnect(on_success)
"""
    )
    # (that nothing stays connected after a test: test_instrument_unit.py and the leak guard)
    run().assert_outcomes(passed=1)


def test_hook_calls_and_hook_assertions_are_unchanged_by_signals(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
from pytest_celerybase import assert_hooks_called, hook_calls

def test_it(eager_app, hook_recorder):
    @eager_app.task
    def t():
        return 1
    t.delay()
    assert [c.hook for c in hook_calls(t)] == ["before_start", "on_success", "after_return"]
    assert len(hook_recorder) == 3 and len(hook_recorder.calls) == 3
    assert_hooks_called(t, ["before_start", "on_success", "after_return"])
"""
    )
    run().assert_outcomes(passed=1)
