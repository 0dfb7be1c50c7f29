"""What a user reads when a hook assertion fails, and every bad-input error."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest


def test_mismatch_shows_expected_actual_per_execution_and_diff(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
from pytest_celerybase import assert_hooks_called

def test_it(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")
    charge.delay(10)
    assert_hooks_called(charge, ["before_start", "on_success", "after_return"])
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'test_mismatch_shows_expected_actual_"
            "per_execution_and_diff.charge' to call exactly:",
            "E         ['before_start', 'on_success', 'after_return']",
            "E       but the recorded hooks were:",
            "E         ['before_start', 'on_failure', 'after_return']",
            "E       Per execution (task id):",
            "E         *-*-*-*-* [[]*.charge]: before_start, "
            "on_failure(ValueError('card declined')), after_return(FAILURE)",
            "E       Diff (- expected, + actual):",
            "E         - on_success",
            "E         + on_failure",
        ]
    )
    # the assertion helper's own frame is hidden, the user's line is shown
    result.stdout.no_fnmatch_line("*pytest_celerybase/assertions.py*")


def test_propagation_hint(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_hooks_called

@pytest.mark.celerybase(task_eager_propagates=True)
def test_it(eager_app):
    @eager_app.task
    def charge():
        raise ValueError("declined")
    with pytest.raises(ValueError):
        charge.delay()
    assert_hooks_called(charge, ["before_start", "on_failure", "after_return"])
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       Hint: 1 execution(s) ran eagerly with exceptions propagating "
            "(task_eager_propagates=True, or apply(throw=True))*celery/issues/5666*",
        ]
    )


def test_apply_and_raise_runs_failure_hooks_then_raises(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import apply_and_raise, assert_hooks_called

@pytest.mark.celerybase(task_eager_propagates=True)
def test_raises_after_hooks(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError(f"declined {amount}")
    with pytest.raises(ValueError, match="declined 5"):
        apply_and_raise(charge, (5,))
    assert_hooks_called(charge, ["before_start", "on_failure", "after_return"])

def test_returns_result_on_success(eager_app):
    @eager_app.task
    def ok():
        return 1
    assert apply_and_raise(ok).get() == 1

def test_rejects_non_task_and_throw(eager_app):
    with pytest.raises(TypeError, match="expected a Celery task, got int"):
        apply_and_raise(3)
    @eager_app.task
    def ok():
        return 1
    with pytest.raises(TypeError, match="drop throw="):
        apply_and_raise(ok, throw=True)
"""
    )
    run().assert_outcomes(passed=3)


def test_never_ran_hints(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_hooks_called

@pytest.mark.celerybase(task_always_eager=False)
def test_sent_to_broker(eager_app):
    @eager_app.task
    def ship():
        return 1
    ship.delay()
    assert_hooks_called(ship, ["before_start", "on_success", "after_return"])

def test_not_run_at_all(eager_app):
    @eager_app.task
    def ship():
        return 1
    @eager_app.task
    def other():
        return 1
    other.delay()
    assert_hooks_called(ship, ["before_start", "on_success", "after_return"])

def test_name_typo(eager_app):
    @eager_app.task(name="shop.ship_order")
    def ship():
        return 1
    ship.delay()
    assert_hooks_called("shop.ship_ordr", ["before_start"])
"""
    )
    result = run()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "E       Hint: the task was sent to a broker 1 time(s) during this test but never "
            "executed in this process: the app that sent it is not eager*",
            "E       Hint: the task never ran in this test; tasks that ran: *.other",
            "E       ValueError: no task named 'shop.ship_ordr' is registered on any Celery app, "
            "ran, or was sent in this test; did you mean 'shop.ship_order'?",
        ]
    )


def test_in_order_and_not_called(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_hooks_called_in_order, assert_hooks_not_called

def test_passes(eager_app):
    @eager_app.task(bind=True, max_retries=3)
    def flaky(self):
        if self.request.retries < 1:
            raise self.retry(countdown=0)
        return 1
    @eager_app.task
    def idle():
        return 1
    flaky.delay()
    assert_hooks_called_in_order(flaky, ["on_retry", "on_success"])
    assert_hooks_called_in_order(flaky, ["before_start", "before_start", "after_return"])
    assert_hooks_not_called(flaky, ["on_failure"])
    assert_hooks_not_called(idle)

def test_in_order_fails(eager_app):
    @eager_app.task
    def ok():
        return 1
    ok.delay()
    assert_hooks_called_in_order(ok, ["after_return", "on_success"])

def test_not_called_fails(eager_app):
    @eager_app.task
    def bad():
        raise OSError("disk")
    bad.delay()
    assert_hooks_not_called(bad, ["on_failure"])
"""
    )
    result = run()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task '*.ok' to call in order:",
            "E         ['after_return', 'on_success']",
            "E       AssertionError: Expected task '*.bad' not to call any of [[]'on_failure'[]], "
            "but 1 call(s) were recorded:",
            "E         *: before_start, on_failure(OSError('disk')), after_return(FAILURE)",
        ]
    )


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            'assert_hooks_called(t, ["on_sucess"])',
            "ValueError: unknown hook 'on_sucess' (did you mean 'on_success'?); valid hooks "
            "are: before_start, on_success, on_failure, on_retry, after_return",
        ),
        (
            'assert_hooks_called(t, "on_success")',
            "TypeError: hooks must be a list of hook names, got the str 'on_success'; "
            "write ['on_success']",
        ),
        (
            "assert_hooks_called(t, [1])",
            "TypeError: hook names must be str, got int 1 in hooks",
        ),
        (
            "assert_hooks_called(t, None)",
            "TypeError: hooks must be a list of hook names, got NoneType*",
        ),
        (
            'assert_hooks_called(42, ["on_success"])',
            "TypeError: expected a Celery task, a registered task name (str) or a task result "
            "(AsyncResult/EagerResult), got int: 42",
        ),
        (
            'assert_hooks_called(group([t.s()]).apply_async(), ["on_success"])',
            "TypeError: expected a single task's result, got GroupResult*",
        ),
        ('assert_hooks_called("", [])', "ValueError: task name must not be empty"),
        (
            "assert_hooks_called(t, [], task_id=123)",
            "TypeError: task_id must be a str, got int 123",
        ),
        (
            'assert_hooks_called(t.delay(), [], task_id="other")',
            "ValueError: task_id='other' contradicts the result given, whose id is *",
        ),
        ('assert_hooks_not_called(t, ["on_retri"])', "ValueError: unknown hook 'on_retri'*"),
        (
            "assert_hooks_called_in_order(t, [])",
            "ValueError: hooks must name at least one hook for an in-order check",
        ),
    ],
)
def test_bad_input_errors(pytester: pytest.Pytester, run: RunPytest, call: str, error: str) -> None:
    pytester.makepyfile(
        f"""
from celery import group
from pytest_celerybase import *

def test_it(eager_app):
    @eager_app.task
    def t():
        return 1
    {call}
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E       {error}"])


def test_hook_recorder_fixture_and_clear(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from pytest_celerybase import HookRecorder, assert_hooks_called, hook_calls

def test_it(eager_app, hook_recorder):
    assert isinstance(hook_recorder, HookRecorder)
    @eager_app.task
    def t():
        return 1
    t.delay()
    assert len(hook_recorder) == 3
    assert hook_recorder.hooks_for(t.name) == ["before_start", "on_success", "after_return"]
    hook_recorder.clear()
    assert hook_calls() == []
    assert_hooks_called(t, [])
    t.delay()
    assert_hooks_called(t, ["before_start", "on_success", "after_return"])
    assert repr(hook_recorder) == "<HookRecorder calls=3 tasks=1>"
"""
    )
    run().assert_outcomes(passed=1)


def test_an_execution_the_live_worker_is_still_running_is_not_judged(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeini("[pytest]\ncelerybase_wait_timeout = 0.2\n")
    pytester.makepyfile(
        """
import threading
from pytest_celerybase import assert_hooks_called

def test_it(live_worker):
    release = threading.Event()
    @live_worker.app.task
    def slow():
        release.wait(5)
        return 1
    result = slow.delay()
    try:
        assert_hooks_called(slow, ["before_start", "on_success", "after_return"])
    finally:
        release.set()
        result.get(timeout=5)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: Cannot judge task '*.slow': the live worker was still running "
            "(or had not yet started) 1 execution(s) of it after waiting 0.2 s: *.slow[[]*]. Its "
            "records are incomplete (on_failure, after_return... may still come). Wait for it "
            "in the test (result.get(timeout=...)) or raise celerybase_wait_timeout in the ini "
            "file.",
        ]
    )
