"""Hook sequences recorded through the real Celery tracer, run as a user would."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

HEADER = """
import pytest
from celery import Task, chain, group
from pytest_celerybase import assert_hooks_called, hook_calls

class Custom(Task):
    def on_success(self, retval, task_id, args, kwargs):
        self.seen = retval
"""


def test_success_records_before_start_on_success_after_return(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_plain(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y
    assert add.delay(2, 3).get() == 5
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])

def test_custom(eager_app):
    @eager_app.task(base=Custom)
    def add(x, y):
        return x + y
    add.apply((2, 3))
    assert add.seen == 5
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
    [start, success, after] = hook_calls(add)
    assert (start.args, start.kwargs) == ((2, 3), {})
    assert success.retval == 5 and after.status == "SUCCESS" and after.retval == 5
"""
    )
    run().assert_outcomes(passed=2)


@pytest.mark.parametrize("propagates", [False, True])
def test_raising_task(pytester: pytest.Pytester, run: RunPytest, propagates: bool) -> None:
    expected = (
        '["before_start"]' if propagates else '["before_start", "on_failure", "after_return"]'
    )
    pytester.makepyfile(
        HEADER
        + f"""
@pytest.mark.celerybase(task_eager_propagates={propagates})
def test_it(eager_app):
    @eager_app.task
    def boom():
        raise KeyError("nope")
    if {propagates}:
        with pytest.raises(KeyError):
            boom.delay()
    else:
        assert boom.delay().state == "FAILURE"
        failure = hook_calls(boom)[1]
        assert isinstance(failure.exc, KeyError)
        assert hook_calls(boom)[2].status == "FAILURE"
    assert_hooks_called(boom, {expected})
"""
    )
    run().assert_outcomes(passed=1)


@pytest.mark.parametrize("propagates", [False, True])
def test_retry_twice_then_success(
    pytester: pytest.Pytester, run: RunPytest, propagates: bool
) -> None:
    expected = (
        '["before_start"]'
        if propagates
        else '["before_start", "on_retry", "before_start", "on_retry", '
        '"before_start", "on_success", "after_return"]'
    )
    pytester.makepyfile(
        HEADER
        + f"""
from celery.exceptions import Retry

@pytest.mark.celerybase(task_eager_propagates={propagates})
def test_it(eager_app):
    @eager_app.task(bind=True, max_retries=5)
    def flaky(self):
        if self.request.retries < 2:
            raise self.retry(countdown=0)
        return "ok"
    if {propagates}:
        with pytest.raises(Retry):
            flaky.delay()
    else:
        result = flaky.delay()
        assert result.get() == "ok"
        # eager retries reuse the task id: the result covers the whole chain
        assert_hooks_called(result, {expected})
    assert_hooks_called(flaky, {expected})
"""
    )
    run().assert_outcomes(passed=1)


def test_retries_exhausted_and_autoretry(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_max_retries(eager_app):
    @eager_app.task(bind=True, max_retries=2)
    def hopeless(self):
        raise self.retry(exc=ConnectionError("down"), countdown=0)
    assert hopeless.delay().state == "FAILURE"
    assert_hooks_called(hopeless, [
        "before_start", "on_retry", "before_start", "on_retry",
        "before_start", "on_failure", "after_return",
    ])
    assert isinstance(hook_calls(hopeless)[-2].exc, ConnectionError)

def test_autoretry_for(eager_app):
    calls = []
    @eager_app.task(bind=True, autoretry_for=(ConnectionError,), max_retries=1,
                    retry_backoff=False, default_retry_delay=0)
    def auto(self):
        calls.append(self.request.retries)
        raise ConnectionError("down")
    assert auto.delay().state == "FAILURE"
    assert calls == [0, 1]
    assert_hooks_called(auto, [
        "before_start", "on_retry", "before_start", "on_failure", "after_return",
    ])
"""
    )
    run().assert_outcomes(passed=2)


def test_interleaved_tasks_and_per_result_filtering(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_it(eager_app):
    @eager_app.task
    def ok(x):
        return x
    @eager_app.task(base=Custom)
    def bad(x):
        raise ValueError(x)
    r1 = ok.delay(1); bad.delay(1); r2 = ok.delay(2); bad.delay(2); r3 = ok.delay(3)
    assert_hooks_called(ok, ["before_start", "on_success", "after_return"] * 3)
    assert_hooks_called(bad, ["before_start", "on_failure", "after_return"] * 2)
    for r, arg in [(r1, 1), (r2, 2), (r3, 3)]:
        assert_hooks_called(r, ["before_start", "on_success", "after_return"])
        assert [list(c.args) for c in hook_calls(r)] == [[arg]] * 3
    assert_hooks_called(ok, ["before_start", "on_success", "after_return"], task_id=r2.id)
    assert_hooks_called("test_interleaved_tasks_and_per_result_filtering.ok",
                        ["before_start", "on_success", "after_return"] * 3)
    assert len(hook_calls()) == 15
"""
    )
    run().assert_outcomes(passed=1)


def test_chain_and_group_run_eagerly(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_it(eager_app):
    @eager_app.task
    def inc(x):
        return x + 1
    @eager_app.task
    def double(x):
        return x * 2
    assert chain(inc.s(1), double.s(), inc.s()).apply_async().get() == 5
    assert_hooks_called(inc, ["before_start", "on_success", "after_return"] * 2)
    assert_hooks_called(double, ["before_start", "on_success", "after_return"])
    assert group(inc.s(i) for i in range(3)).apply_async().get() == [1, 2, 3]
    assert_hooks_called(inc, ["before_start", "on_success", "after_return"] * 5)
"""
    )
    run().assert_outcomes(passed=1)


def test_mocker_spy_on_a_hook_is_recorded_once(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_spy_before_first_run(eager_app, mocker):
    @eager_app.task(base=Custom)
    def add(x):
        return x
    spy = mocker.spy(add, "on_success")
    add.delay(1); add.delay(2)
    assert spy.call_count == 2
    assert_hooks_called(add, ["before_start", "on_success", "after_return"] * 2)

def test_spy_after_first_run(eager_app, mocker):
    @eager_app.task
    def add(x):
        return x
    add.delay(1)
    spy = mocker.spy(add, "after_return")
    add.delay(2)
    assert spy.call_count == 1
    assert spy.call_args.args[0] == "SUCCESS"
    assert_hooks_called(add, ["before_start", "on_success", "after_return"] * 2)
"""
    )
    run().assert_outcomes(passed=2)


def test_hooks_fired_from_threads_are_complete(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        HEADER
        + """
from concurrent.futures import ThreadPoolExecutor

def test_it(eager_app):
    @eager_app.task(base=Custom)
    def work(i):
        if i % 3 == 0:
            raise ValueError(i)
        return i
    # Create the task before the threads do: on every Celery version, threads that make
    # the app finalize at once can see the task registered but not yet bound (an
    # AttributeError in Celery's tracer), with or without this plugin.
    work.name
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: work.apply((i,)), range(200)))
    for i, r in enumerate(results):
        outcome = "on_failure" if i % 3 == 0 else "on_success"
        assert_hooks_called(r, ["before_start", outcome, "after_return"])
    assert len(hook_calls(work)) == 600
"""
    )
    run().assert_outcomes(passed=1)


def test_recording_context_manager_without_pytest_fixture() -> None:
    from celery import Celery

    from pytest_celerybase import HookRecorder, recording

    app = Celery(set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(shared=False)
    def add(x: int) -> int:
        return x

    with recording() as recorder:
        add.delay(1)
    assert isinstance(recorder, HookRecorder)
    assert recorder.hooks_for(add.name) == ["before_start", "on_success", "after_return"]
