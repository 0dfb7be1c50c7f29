"""The plugin restores global state however a test ends; the leak guard proves it.

Each inner session loads ``tests.leak_guard``: any difference after a test (task classes,
tracer, apps, bindings, responses, fake Redis) would add an ``ERROR at teardown`` with
the text ``leak guard:``, so the expected outcomes below carry no errors.
"""

from __future__ import annotations

# Imported here so pytester's sys.modules snapshot keeps them between in-process runs
# (each inner session would otherwise import them afresh: seconds per test).
import fakeredis  # noqa: F401
import pytest
import requests  # noqa: F401
import responses  # noqa: F401
import sqlalchemy  # noqa: F401

import pytest_celerybase.bases.sinks
import pytest_celerybase.fixtures  # noqa: F401
from pytest_celerybase.apps.celery_globals import celery_globals_restored
from tests import leak_guard
from tests.conftest import RunPytest

USES_EVERYTHING = '''
import signal, time
import pytest
import requests
from celery import Task, current_app
from pytest_celerybase import assert_hooks_called

class Custom(Task):
    def after_return(self, *args):
        pass

def use_everything(app, engine=None, stub=None, redis=None):
    """Build tracers, instrument classes, patch HTTP, bind resources."""
    @app.task(base=Custom, name="guard.work")
    def work(x):
        if x < 0:
            raise ValueError(x)
        return x
    work.delay(1); work.delay(-1)
    assert current_app._get_current_object() is app
    if stub is not None:
        stub.get("http://svc.invalid/x", json={"ok": True})
        assert requests.get("http://svc.invalid/x").json() == {"ok": True}
    if redis is not None:
        redis.set("k", 1)
    if engine is not None:
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
    return work
'''


def _run_guarded(run: RunPytest, *args: str) -> pytest.RunResult:
    return run("-p", "tests.leak_guard", "-p", "no:cacheprovider", *args)


def _assert_no_leak(result: pytest.RunResult) -> None:
    result.stdout.no_fnmatch_line("*leak guard:*changed*")
    result.stdout.no_fnmatch_line("*ERROR at teardown*")


def test_restored_after_a_failing_test(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        USES_EVERYTHING
        + """
def test_1_fails(eager_app, sqlite_engine, http_stub, fake_redis, metrics_sink, mocker):
    work = use_everything(eager_app, sqlite_engine, http_stub, fake_redis)
    mocker.spy(work, "on_success")
    assert_hooks_called(work, ["before_start"])  # fails

def test_2_propagating_failure(eager_app, mocker):
    eager_app.conf.task_eager_propagates = True
    work = use_everything(eager_app)
    raise AssertionError("the test itself fails")
"""
    )
    result = _run_guarded(run)
    result.assert_outcomes(failed=2)
    _assert_no_leak(result)


def test_restored_when_a_fixture_raises_mid_setup(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        USES_EVERYTHING
        + """
@pytest.fixture
def half_built(eager_app, sqlite_engine, http_stub, fake_redis, metrics_sink):
    use_everything(eager_app, sqlite_engine, http_stub, fake_redis)
    raise ConnectionError("fixture fails after the resources were bound")

@pytest.fixture
def breaks_in_teardown(eager_app, fake_redis):
    use_everything(eager_app, redis=fake_redis)
    yield
    raise RuntimeError("teardown fails")

def test_1_setup_error(half_built, mocker):
    pass

def test_2_teardown_error(breaks_in_teardown, sqlite_engine):
    pass

def test_3_next_test_is_clean(eager_app):
    work = use_everything(eager_app)
    assert_hooks_called(work, ["before_start", "on_success", "after_return",
                               "before_start", "on_failure", "after_return"])
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*ERROR at setup of test_1_setup_error*",
            "*ERROR at teardown of test_2_teardown_error*",
        ]
    )
    result.stdout.no_fnmatch_line("*leak guard:*changed*")


def test_restored_after_a_timeout(pytester: pytest.Pytester, run: RunPytest) -> None:
    # pytest-timeout's default method on POSIX ("signal") raises pytest.fail() from a
    # SIGALRM handler wherever the test is; this does the same without the dependency
    # (its "thread" method os._exit()s the whole process: nothing left to restore).
    # The alarm fires inside the task body, i.e. between before_start and the outcome
    # hooks, with the recorder's wrappers installed and the task class swapped.
    pytester.makepyfile(
        USES_EVERYTHING
        + """
@pytest.fixture
def timeout():
    def on_alarm(signum, frame):
        pytest.fail("Timeout >0.2s", pytrace=False)
    previous = signal.signal(signal.SIGALRM, on_alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)

def test_1_times_out_inside_a_task(eager_app, sqlite_engine, http_stub, fake_redis, timeout):
    use_everything(eager_app, sqlite_engine, http_stub, fake_redis)
    @eager_app.task(base=Custom)
    def slow():
        # armed in the task body: however long the set-up took, it fires in here
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        time.sleep(5)
    slow.delay()

def test_2_next_test_is_clean(eager_app):
    work = use_everything(eager_app)
    assert_hooks_called(work, ["before_start", "on_success", "after_return",
                               "before_start", "on_failure", "after_return"])
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Timeout >0.2s*"])
    _assert_no_leak(result)


def test_restored_when_the_session_is_interrupted(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # KeyboardInterrupt (Ctrl-C) and pytest.exit() abort the run protocol: pytest tears
    # the fixtures down at session end, and the guard checks then.
    pytester.makepyfile(
        USES_EVERYTHING
        + """
def test_interrupted(eager_app, sqlite_engine, http_stub, fake_redis, metrics_sink):
    use_everything(eager_app, sqlite_engine, http_stub, fake_redis)
    raise KeyboardInterrupt

def test_never_runs():
    pass
"""
    )
    before = leak_guard.take()
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    with celery_globals_restored():
        # no_reraise_ctrlc: the inner Ctrl-C must not interrupt this (outer) session
        result = pytester.runpytest_inprocess(
            *("-p", "celerybase", "-p", "tests.leak_guard", "-p", "no:cacheprovider"),
            no_reraise_ctrlc=True,
        )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["leak guard: *test_interrupted was interrupted; state restored"])
    _assert_no_leak(result)
    assert leak_guard.compare(before, leak_guard.take()) == []


def test_pytest_exit_in_a_fixture(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        USES_EVERYTHING
        + """
@pytest.fixture
def bail_out(eager_app, fake_redis):
    use_everything(eager_app, redis=fake_redis)
    pytest.exit("stop here", returncode=3)

def test_it(bail_out):
    pass
"""
    )
    result = _run_guarded(run)
    assert result.ret == 3
    result.stdout.fnmatch_lines(["leak guard: *test_it was interrupted; state restored"])
    _assert_no_leak(result)


def test_guard_reports_a_real_leak_with_the_node_id(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # What the guard would say if the plugin (or a test) leaked; the next test is clean.
    pytester.makepyfile(
        """
import celery.app.trace as trace
from celery import Celery, _state
from pytest_celerybase.resources import bindings

def test_1_leaks_a_binding_and_the_tracer():
    bindings.push(bindings.REDIS, object())
    trace.build_tracer = lambda *a, **k: None

def test_2_leaks_the_current_app():
    Celery("stray").set_current()

def test_3_clean():
    assert bindings.current(bindings.REDIS) is None
    assert trace.build_tracer.__name__ == "build_tracer"
    assert _state.get_current_app().main != "stray"
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_1_leaks_a_binding_and_the_tracer*",
            "leak guard: test_guard_reports_a_real_leak_with_the_node_id.py::"
            "test_1_leaks_a_binding_and_the_tracer left global state changed (after teardown):",
            "  - celery.app.trace.build_tracer: <function *build_tracer*> -> <function*<lambda>*>",
            "  - pytest_celerybase.resources.bindings: redis: ()"
            " -> (Token(key=BindingKey(name='redis')*",
            "*ERROR at teardown of test_2_leaks_the_current_app*",
            "  - celery globals: current_app: * -> <Celery stray*>",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_guard_sees_a_task_class_left_swapped(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from celery import Celery

app = Celery("proj", set_as_current=False)

@app.task(shared=False)
def job():
    return 1

class Other(type(job._get_current_object())):
    pass

def test_swaps_the_class():
    job._get_current_object().__class__ = Other

def test_restored():
    assert type(job._get_current_object()) is not Other
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["  - task '*.job': class <class *> -> <class *Other*>"])


def test_guard_reports_a_child_process_left_running(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # A prefork pool's child that outlives its test is a leak like a thread is.
    pytester.makepyfile(
        """
import os, signal, time

CHILD = []

def test_1_leaves_a_child():
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    CHILD.append(pid)

def test_2_clean():
    os.kill(CHILD[0], signal.SIGKILL)
    os.waitpid(CHILD[0], 0)
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_1_leaves_a_child*",
            "  - child processes started by the test still running: *",
        ]
    )
    assert leak_guard.child_processes() == []


def test_restored_after_sent_tasks_tests_end_badly(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        USES_EVERYTHING
        + """
from celery import chain

def test_1_fails_with_messages_held(eager_app, sent_tasks, sqlite_engine):
    work = use_everything(eager_app, sqlite_engine)
    chain(work.s(1), work.s()).delay()
    raise AssertionError("the test fails with messages still held")

def test_2_fails_inside_run(eager_app, sent_tasks):
    work = use_everything(eager_app)
    eager_app.send_task("guard.unknown")
    sent_tasks.run()

def test_3_next_test_runs_eagerly(eager_app):
    work = use_everything(eager_app)
    assert type(work.delay(2)).__name__ == "EagerResult"
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(failed=2, passed=1)
    _assert_no_leak(result)


def test_guard_sees_an_outbox_left_active(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from pytest_celerybase.sent_tasks import SentTasks, capture

def test_1_leaves_the_outbox_active(eager_app):
    capture.activate(SentTasks())

def test_2_clean(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y
    assert add.delay(1, 2).get() == 3
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_1_leaves_the_outbox_active*",
            "  - celery.Celery.send_task: <function Celery.send_task *> -> <function "
            "_make_send_task.<locals>.send_task *>",
            "  - celery.app.utils.Settings.task_always_eager: None -> <property *>",
            "  - sent_tasks capture STACK: () -> (<SentTasks 0 sent, 0 held: ->,)",
            "  - before_task_publish receivers: (*) -> (*'pytest_celerybase.sent_tasks.before_"
            "publish'*)",
        ]
    )


def test_guard_sees_an_apps_state_left_changed(pytester: pytest.Pytester, run: RunPytest) -> None:
    # Every restore point of an app, changed by a test that uses no fixture to undo it:
    # the guard names each one, then puts it back for the next test.  (The plugin itself
    # restores the task's own attributes and class, and removes a task the test added to
    # the registry: the guard finds nothing there.)
    pytester.makepyfile(
        """
from celery import Celery

app = Celery("proj", set_as_current=False)
app.conf.task_default_queue = "proj"

@app.task(shared=False, max_retries=3)
def job():
    return 1

app.finalize()
POOL = object()

def test_1_changes_the_app():
    job.max_retries = 0
    type(job._get_current_object()).rate_limit = "1/s"
    app.conf.task_default_queue = "changed"
    app.conf.broker_transport_options["visibility_timeout"] = 1
    app.tasks["stray"] = job._get_current_object()
    app._pool = POOL

def test_2_restored():
    assert job.max_retries == 3 and job.rate_limit is None
    assert app.conf.task_default_queue == "proj"
    assert app.conf.broker_transport_options == {}
    assert "stray" not in app.tasks and app._pool is not POOL
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "  - app 'proj': setting task_default_queue: 'proj' -> 'changed'",
            "  - app 'proj': setting broker_transport_options changed in place: "
            "{} -> {'visibility_timeout': 1}",
            "  - app 'proj': connection pool None -> <object object at *>",
        ]
    )


def test_guard_sees_the_lifecycle_recording_left_installed(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # What the guard would say if the signal recording or the cooperative-hooks watching
    # outlived a test: a tracer signal sender left patched, a composed class's hooks left
    # wrapped.  The next test finds both restored.
    pytester.makepyfile(
        """
import celery.app.trace as trace
from celery import Task
from pytest_celerybase.recorder import cooperative as _cooperative
from pytest_celerybase.recorder import signals as _signals

class A(Task):
    def on_success(self, *args):
        super().on_success(*args)

class B(Task):
    def on_success(self, *args):
        super().on_success(*args)

class Composed(A, B):
    pass

ORIGINAL = A.__dict__["on_success"]

def test_1_leaves_them_installed():
    _signals.connect(lambda module, name, value: setattr(module, name, value))
    _cooperative.chains(Composed, object())  # wrapped for an owner nobody deactivates

def test_2_clean():
    # (this test records: the sender is wrapped once, by its own recorder)
    assert not hasattr(trace.send_prerun.__wrapped__, "__wrapped__")
    assert A.__dict__["on_success"] is ORIGINAL
"""
    )
    result = _run_guarded(run, "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*ERROR at teardown of test_1_leaves_them_installed*",
            # (the outer test records too: its sender was in place before)
            "  - celery.app.trace.send_prerun: <function _tracer_sender.<locals>.send_and_record"
            " at *> -> <function _tracer_sender.<locals>.send_and_record at *>",
            "  - A.on_success is still wrapped by the recorder",
            "  - B.on_success is still wrapped by the recorder",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
