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
    # test: its hooks must not show in the second test's records, the second test warns,
    # naming the first, and a query of its records refuses to answer rather than show
    # records without them.  (A module-level task: one declared in the first test is no
    # longer registered once that test has ended.)
    pytester.makepyfile(
        """
import threading
import pytest
from celery import shared_task
from pytest_celerybase import hook_calls, timeline

go, stop, called = threading.Event(), threading.Event(), threading.Event()
left = {}

@shared_task(name="t.ping")
def ping():
    return 1

def test_a_leaves_a_thread(eager_app):
    def loop():
        go.wait(10)
        while not stop.is_set():
            ping.apply()
            called.set()

    left["thread"] = threading.Thread(target=loop, name="pinger", daemon=True)
    left["thread"].start()
    ping.apply()
    assert hook_calls("t.ping")

def test_b_is_not_blamed(eager_app, hook_recorder):
    go.set()
    assert called.wait(5)  # the thread called the task during this test
    stop.set()
    left["thread"].join(5)
    assert hook_recorder.calls == [] and hook_recorder.events_for() == []
    for query in (hook_calls, timeline, lambda: hook_calls("t.ping")):
        with pytest.raises(AssertionError, match="came from threads an earlier test left"):
            query()
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


# -- every restore point of eager_app, changed by one test and checked back in the next ----
# The inner sessions also load the leak guard, which checks the same points (and more)
# after every test: a leak would add an "ERROR at teardown" and fail the outcome below.

RESTORE_TASKS = '''
from celery import Task, shared_task


class Base(Task):
    pass


@shared_task(bind=True, base=Base, max_retries=3, name="{prefix}.flaky")
def flaky(self):
    raise self.retry(countdown=0)


@shared_task(name="{prefix}.add")
def add(x, y):
    return x + y
'''

CHANGE_EVERY_RESTORE_POINT = '''
from celery import _state, current_app, shared_task
from pytest_celerybase import hook_calls
from {tasks} import add, flaky

SEEN = {{}}


def caches(app):
    amqp = app.__dict__.get("amqp")
    return (
        app.__dict__.get("_backend_cache"),
        getattr(app._local, "backend", None),
        app.__dict__.get("_pool"),
        getattr(amqp, "_producer_pool", None),
    )


def on_retry_count():
    return [c.hook for c in hook_calls(flaky)].count("on_retry")


def test_0_baseline(eager_app):
    flaky.delay()
    assert on_retry_count() == 3
    SEEN.update(
        app=eager_app,
        caches=caches(eager_app),
        queue=eager_app.conf.task_default_queue,
        transport=dict(eager_app.conf.broker_transport_options),
        finalizers=set(_state._on_app_finalizers),
        tasks=set(eager_app.tasks),
        add_rate_limit=add.rate_limit,
        add_max_retries=add.max_retries,
    )


def test_1_changes_everything(eager_app):
    # Task attributes: an instance attribute through the module-level proxy, a class
    # attribute of the task's class, and one of the app's Task base class.
    flaky.max_retries = 0
    type(add._get_current_object()).rate_limit = "1/s"
    eager_app.Task.max_retries = 1
    flaky.delay()
    assert on_retry_count() == 0
    assert add.rate_limit == "1/s" and add.max_retries == 1
    # Settings: by attribute, by update(), in place, and a new defaults layer.
    eager_app.conf.task_default_queue = "changed"
    eager_app.conf.update(task_default_priority=9)
    eager_app.conf.broker_transport_options["visibility_timeout"] = 1
    eager_app.add_defaults({{"iso_custom_setting": 1}})
    assert eager_app.conf.iso_custom_setting == 1
    # Tasks declared in the test, on the app and shared.
    @eager_app.task(name="iso.declared")
    def declared():
        return 1
    @shared_task(name="iso.shared_in_test")
    def shared_in_test():
        return 2
    assert declared.delay().get() == 1 and shared_in_test.delay().get() == 2
    # Cached backend, connection pool and producer pool rebuilt (as after a fork).
    eager_app._pool = None
    eager_app.amqp._producer_pool = None
    del eager_app._local.backend
    eager_app.backend  # noqa: B018
    add.delay(1, 2)
    SEEN["changed"] = caches(eager_app)
    assert all(new is not None for new in SEEN["changed"][1:])
    assert not any(a is b for a, b in zip(SEEN["changed"][1:], SEEN["caches"][1:]))


def test_2_everything_is_back(eager_app):
    assert eager_app is {same_app}
    assert current_app._get_current_object() is eager_app
    flaky.delay()
    assert on_retry_count() == 3
    assert add.rate_limit == SEEN["add_rate_limit"]
    assert add.max_retries == SEEN["add_max_retries"] == 3
    assert eager_app.conf.task_default_queue == SEEN["queue"]
    assert eager_app.conf.task_default_priority is None
    assert dict(eager_app.conf.broker_transport_options) == SEEN["transport"]
    assert "iso_custom_setting" not in eager_app.conf
    assert set(eager_app.tasks) == SEEN["tasks"]
    assert set(_state._on_app_finalizers) == SEEN["finalizers"]
    assert not any(a is b for a, b in zip(caches(eager_app), SEEN["changed"]) if b is not None)
    {same_caches}
'''


def test_every_restore_point_of_the_plugins_app(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        iso_tasks=RESTORE_TASKS.format(prefix="iso"),
        test_restore=CHANGE_EVERY_RESTORE_POINT.format(
            tasks="iso_tasks",
            same_app='SEEN["app"]',
            # The app is reused: its backend, pools and producer pool are the same objects.
            same_caches='assert caches(eager_app) == SEEN["caches"]',
        ),
    )
    result = run("-p", "tests.leak_guard", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_every_restore_point_of_a_project_app(pytester: pytest.Pytester, run: RunPytest) -> None:
    # The case: `tasks.flaky.max_retries = 0` on a project app's task (here both a
    # shared task and an @app.task) must not reach the next test.
    pytester.makepyfile(
        proj=RESTORE_TASKS.format(prefix="proj")
        + '''
from celery import Celery

app = Celery("proj")
app.conf.broker_url = "redis://unreachable.invalid:6379/0"
app.conf.result_backend = "redis://unreachable.invalid:6379/1"


@app.task(bind=True, max_retries=2, name="proj.own_flaky")
def own_flaky(self):
    raise self.retry(countdown=0)
''',
        # A project app gets caches built from the test settings in each test (test_5
        # checks its own are back after the last one).
        test_restore=CHANGE_EVERY_RESTORE_POINT.format(
            tasks="proj", same_app="proj.app", same_caches=""
        )
        + '''

import proj
from pytest_celerybase import assert_hooks_called


def test_3_project_task_attribute(eager_app):
    proj.own_flaky.max_retries = 0
    proj.own_flaky.delay()
    assert_hooks_called(proj.own_flaky, ["before_start", "on_failure", "after_return"])


def test_4_project_task_attribute_is_back(eager_app):
    proj.own_flaky.delay()
    assert [c.hook for c in hook_calls(proj.own_flaky)].count("on_retry") == 2


def test_5_project_app_outside_eager_app():
    app = proj.app
    assert app.conf.broker_url == "redis://unreachable.invalid:6379/0"
    assert not app.conf.task_always_eager
    # Nothing built from the test settings stays cached on the project's app.
    assert caches(app) == SEEN["project_caches"]
''',
        conftest='''
import proj

from test_restore import SEEN, caches


def pytest_collection_finish(session):
    proj.app.tasks  # finalized, as a project's app is once its tasks are imported
    SEEN["project_caches"] = caches(proj.app)
''',
    )
    pytester.makeini("[pytest]\ncelerybase_app = proj:app\n")
    result = run("-p", "tests.leak_guard", "-p", "no:randomly")
    result.assert_outcomes(passed=6)


def test_apps_for_other_settings_are_restored_too(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # @shared_task adds a task to every finalized app: one declared in a test using the
    # default settings reaches the app kept for other settings, which must not keep it.
    pytester.makepyfile(
        """
import pytest
from celery import shared_task

@pytest.mark.celerybase(task_default_queue="other")
def test_0_other_settings(eager_app):
    assert "iso.stray" not in eager_app.tasks
    pytest.other_app = eager_app

def test_1_declares_a_shared_task(eager_app):
    @shared_task(name="iso.stray")
    def stray():
        return 1
    assert "iso.stray" in eager_app.tasks and "iso.stray" in pytest.other_app.tasks

@pytest.mark.celerybase(task_default_queue="other")
def test_2_other_settings_again(eager_app):
    assert eager_app is pytest.other_app
    assert "iso.stray" not in eager_app.tasks
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_shared_task_imported_later_is_on_the_app(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # A module imported outside any eager_app test registers its shared tasks for apps
    # finalized later: the app kept for the session is rebuilt to hold them, as a new app
    # would.
    pytester.makepyfile(
        late_tasks="""
from celery import shared_task

@shared_task(name="iso.late")
def late():
    return "late"
""",
        test_late="""
import importlib

def test_0(eager_app):
    assert "iso.late" not in eager_app.tasks

def test_1_import_without_fixture():
    importlib.import_module("late_tasks")

def test_2(eager_app):
    import late_tasks
    assert late_tasks.late.delay().get() == "late"
""",
    )
    run("-p", "no:randomly").assert_outcomes(passed=3)


@pytest.mark.parametrize("project_app", [False, True], ids=["plugins_app", "project_app"])
def test_an_undo_after_eager_app_teardown_does_not_reach_the_next_test(
    pytester: pytest.Pytester, run: RunPytest, project_app: bool
) -> None:
    # monkeypatch is set up before eager_app here, so its undo runs after eager_app's
    # teardown: it must find the app as it left it (pytest 9.2 deletes the attribute it
    # added, and fails if it is gone), and the next test must not see the patch.
    if project_app:
        pytester.makepyfile(proj="from celery import Celery\n\napp = Celery('proj')\n")
        pytester.makeini("[pytest]\ncelerybase_app = proj:app\n")
    pytester.makepyfile(
        """
def test_1(monkeypatch, eager_app):
    monkeypatch.setattr(eager_app, "send_task", lambda *a, **k: "patched")
    monkeypatch.setitem(eager_app.conf, "task_default_queue", "patched")
    assert eager_app.send_task("x") == "patched"

def test_2(eager_app):
    assert "send_task" not in vars(eager_app)
    assert eager_app.conf.task_default_queue == "celery"
"""
    )
    run("-p", "no:randomly", "-p", "tests.leak_guard").assert_outcomes(passed=2)
