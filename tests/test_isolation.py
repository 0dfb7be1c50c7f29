"""Nothing of the recorder or of eager_app leaks from one test into the next."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest


def test_classes_and_tracer_restored_after_passing_and_failing_tests(
    pytester: pytest.Pytester,
) -> None:
    # The conftest snapshots Celery's tracer and the task class around each whole test
    # (setup, call, teardown) from a hook wrapper outside the plugin's own.
    pytester.makeconftest(
        """
import pytest
import celery.app.trace as trace
from celery import Celery, Task

app = Celery("proj", set_as_current=False)
app.conf.task_always_eager = True

class Base(Task):
    pass

@app.task(base=Base, shared=False)
def work(x):
    if x < 0:
        raise ValueError(x)
    return x

def snapshot():
    task = work._get_current_object()
    return (type(task), trace.build_tracer, trace.trace_task, dict(task.__dict__))

PRISTINE = snapshot()
SEEN = []

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item):
    assert snapshot() == PRISTINE
    try:
        return (yield)
    finally:
        SEEN.append((item.name, snapshot() == PRISTINE))

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"RESTORED {SEEN}")
"""
    )
    pytester.makepyfile(
        """
import celery.app.trace as trace
from conftest import PRISTINE, work
from pytest_celerybase import assert_hooks_called

def test_1_passes():
    work.apply((1,))
    assert type(work._get_current_object()) is not PRISTINE[0]  # instrumented meanwhile
    assert trace.build_tracer is not PRISTINE[1]

def test_2_fails():
    work.apply((-1,))
    assert_hooks_called(work, ["before_start", "on_success", "after_return"])

def test_3_after_failure():
    work.apply((2,))
    assert_hooks_called(work, ["before_start", "on_success", "after_return"])
"""
    )
    # In a subprocess: in-process, the outer test's recorder would already be installed.
    result = pytester.runpytest_subprocess("-p", "celerybase", "-p", "no:randomly", "-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_2_fails FAILED*",
            "*test_3_after_failure PASSED*",
            "RESTORED [[](*test_1_passes*, True), (*test_2_fails*, True), "
            "(*test_3_after_failure*, True)[]]",
        ]
    )


def test_records_never_cross_tests(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from pytest_celerybase import hook_calls, assert_hooks_not_called

def test_1(eager_app):
    @eager_app.task(name="shared.job")
    def job():
        return 1
    job.delay(); job.delay()
    assert len(hook_calls()) == 6

def test_2(eager_app, hook_recorder):
    assert hook_calls() == [] and len(hook_recorder) == 0
    @eager_app.task(name="shared.job")
    def job():
        return 2
    assert_hooks_not_called(job)
"""
    )
    run().assert_outcomes(passed=2)


def test_task_declared_in_one_test_never_runs_in_the_next(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Celery's @app.task is shared by default and an app keeps the first task registered
    # under a name: without isolation test_2 would run test_1's body.
    pytester.makepyfile(
        """
from celery import current_app

def test_1(eager_app):
    @eager_app.task
    def bad():
        return "from test 1"
    assert bad.delay().get() == "from test 1"

def test_2(eager_app):
    @eager_app.task
    def bad():
        return "from test 2"
    assert bad.delay().get() == "from test 2"
    assert current_app._get_current_object() is eager_app
"""
    )
    run("-W", "error::celery.exceptions.CeleryWarning").assert_outcomes(passed=2)


def test_current_and_default_app_restored(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from celery import _state, current_app

BEFORE = {}

def test_0_remember():
    BEFORE["current"] = current_app._get_current_object()
    BEFORE["default"] = _state.default_app
    BEFORE["finalizers"] = set(_state._on_app_finalizers)

def test_1_uses(eager_app):
    assert current_app._get_current_object() is eager_app
    assert _state.default_app is eager_app
    @eager_app.task
    def t():
        return 1
    t.delay()

def test_2_restored():
    assert current_app._get_current_object() is BEFORE["current"]
    assert _state.default_app is BEFORE["default"]
    assert set(_state._on_app_finalizers) == BEFORE["finalizers"]
"""
    )
    run().assert_outcomes(passed=3)


def test_inner_pytester_session_sees_only_its_own_records(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        test_outer="""
import pytest
from pytest_celerybase import hook_calls, assert_hooks_called

pytest_plugins = ["pytester"]

INNER = '''
from pytest_celerybase import hook_calls, assert_hooks_called

def test_inner(eager_app):
    assert hook_calls() == []
    @eager_app.task(name="inner.task")
    def inner():
        return 1
    inner.delay()
    assert_hooks_called(inner, ["before_start", "on_success", "after_return"])
    assert {c.task_name for c in hook_calls()} == {"inner.task"}
'''

def test_outer(eager_app, pytester):
    @eager_app.task(name="outer.task")
    def outer():
        return 1
    outer.delay()
    pytester.makepyfile(test_inner=INNER)
    pytester.runpytest_inprocess("-p", "celerybase").assert_outcomes(passed=1)
    outer.delay()
    assert {c.task_name for c in hook_calls()} == {"outer.task"}
    assert_hooks_called(outer, ["before_start", "on_success", "after_return"] * 2)
"""
    )
    run("-p", "pytester").assert_outcomes(passed=1)


def test_a_thread_left_running_is_blamed_not_recorded(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # A thread the first test starts and leaves running calls a task during the second
    # test: its hooks must not show in the second test's records, and the second test
    # warns, naming the first.
    pytester.makepyfile(
        """
import threading
from pytest_celerybase import hook_calls, timeline

go, stop, called = threading.Event(), threading.Event(), threading.Event()
left = {}

def test_a_leaves_a_thread(eager_app):
    @eager_app.task(name="t.ping")
    def ping():
        return 1

    def loop():
        go.wait(10)
        while not stop.is_set():
            ping.apply()
            called.set()

    left["thread"] = threading.Thread(target=loop, name="pinger", daemon=True)
    left["thread"].start()
    ping.apply()
    assert hook_calls("t.ping")

def test_b_is_not_blamed(eager_app):
    go.set()
    assert called.wait(5)  # the thread called the task during this test
    stop.set()
    left["thread"].join(5)
    assert hook_calls() == [] and timeline() == []
"""
    )
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    warning = (
        "*CelerybaseWarning: * hook/signal record(s) came from thread 'pinger', which "
        "test_a_thread_left_running_is_blamed_not_recorded.py::test_a_leaves_a_thread "
        "started and left running; they were not recorded for this test. Join the "
        "threads a test starts before it ends."
    )
    result.stdout.fnmatch_lines(["*warnings summary*", "*::test_b_is_not_blamed", warning])
