"""False-pass catalogue, hook and lifecycle side (issue 20): each test runs a user's test
through the plugin that passed although what it asserts did not happen (each was seen to
pass before the fix), and shows it now fails or errors with the message a user reads.

Numbers are the issue's items; the sent-task and configuration items are in the sibling
modules of this package.
"""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

PLAIN_TASKS = """
import pytest
from celery.result import AsyncResult, EagerResult
from pytest_celerybase import (
    assert_hooks_called, assert_hooks_called_in_order, assert_hooks_cooperative,
    assert_hooks_not_called, assert_lifecycle, assert_task_sent, hook_calls, timeline,
)

@pytest.fixture
def tasks(eager_app):
    @eager_app.task(name="proj.other")
    def other():
        return 1

    @eager_app.task(name="proj.fail")
    def fail():
        raise ValueError("boom")

    return other, fail
"""


# -- 1. None (or another non-target) as the task -------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        'assert_hooks_called(wanted, ["before_start", "on_success", "after_return"])',
        'assert_hooks_called_in_order(wanted, ["before_start"])',
        'assert_hooks_not_called(wanted, ["on_retry"])',
        'assert_hooks_not_called(wanted)',
        'assert_lifecycle(wanted, ["task_prerun"])',
        "assert_hooks_cooperative(wanted)",
        'assert_hooks_called(wanted, ["before_start"], task_id=r.id)',
        "hook_calls(wanted)",
        "timeline(wanted)",
    ],
)
def test_01_none_as_the_task_is_a_type_error(
    pytester: pytest.Pytester, run: RunPytest, call: str
) -> None:
    pytester.makepyfile(
        PLAIN_TASKS
        + f"""
def test_it(eager_app, tasks):
    other, _ = tasks
    r = other.delay()
    wanted = eager_app.tasks.get("proj.charge")  # not registered: None
    {call}
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*TypeError: expected a Celery task, a registered task name (str) or a task result*"
         "got NoneType: None*"]
    )


def test_01_none_as_the_task_of_assert_task_sent(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        PLAIN_TASKS
        + """
def test_it(eager_app, tasks, sent_tasks):
    other, _ = tasks
    other.delay()
    assert_task_sent(eager_app.tasks.get("proj.charge"), count=1)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*TypeError: assert_task_sent(): expected a Celery task or a task name (str), got "
         "NoneType: None*"]
    )


# -- 2. the wait ran out and the assertion judged partial records ---------------------------
@pytest.mark.parametrize(
    "call",
    [
        'assert_hooks_not_called(slow, ["on_failure"])',
        'assert_hooks_called(slow, ["before_start"])',
        'assert_lifecycle(slow, ["before_task_publish", "after_task_publish", "task_received", '
        '"task_prerun", "before_start"])',
        "assert not [c for c in hook_calls(slow) if c.hook == 'on_failure']",
    ],
)
def test_02_an_execution_still_running_when_the_wait_ends_is_not_judged(
    pytester: pytest.Pytester, run: RunPytest, call: str
) -> None:
    pytester.makeini("[pytest]\ncelerybase_wait_timeout = 0.05\n")
    pytester.makepyfile(
        f"""
import threading
from pytest_celerybase import (
    assert_hooks_called, assert_hooks_not_called, assert_lifecycle, hook_calls,
)

RELEASE = threading.Event()

def test_it(live_worker):
    @live_worker.app.task(name="proj.slow")
    def slow():
        RELEASE.wait(5)  # then fails: on_failure comes after the wait gave up
        raise ValueError("late")
    result = slow.delay()
    try:
        {call}
    finally:
        RELEASE.set()
        result.get(timeout=5, propagate=False)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: Cannot judge task 'proj.slow': the live worker was still running"
            " (or had not yet started) 1 execution(s) of it after waiting 0.05 s: proj.slow[[]*]. "
            "Its records are incomplete*raise celerybase_wait_timeout in the ini file.",
        ]
    )


# -- 3. a thread started by a fixture feeds the next test -----------------------------------
STOP_THREADS_AT_EXIT = """
import sys

def pytest_unconfigure(config):
    for module in list(sys.modules.values()):
        stop = getattr(module, "stop_background_work", None)
        if stop is not None and getattr(module, "__file__", "").startswith(str(config.rootpath)):
            stop()
"""


def test_03_a_thread_a_fixture_left_running_does_not_feed_the_next_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeconftest(STOP_THREADS_AT_EXIT)
    pytester.makepyfile(
        """
import threading
import pytest
from celery import current_app, shared_task
from pytest_celerybase import assert_hooks_called

GO, DONE, QUIT = threading.Event(), threading.Event(), threading.Event()

@shared_task(name="proj.fail")
def fail():
    raise ValueError("boom")

def stop_background_work():
    QUIT.set()
    GO.set()

@pytest.fixture
def background(eager_app):
    def later():  # runs the task when told, long after the test that started it
        GO.wait(10)
        if not QUIT.is_set():
            current_app.tasks["proj.fail"].apply()
        DONE.set()
    threading.Thread(target=later, name="late-worker", daemon=True).start()
    yield  # forgets to stop it

def test_1_starts_a_background_thread(eager_app, background):
    pass

def test_2_asserts_on_what_it_did_not_run(eager_app):
    GO.set()
    assert DONE.wait(10)
    assert_hooks_called("proj.fail", ["before_start", "on_failure", "after_return"])
"""
    )
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: Cannot judge task 'proj.fail': some of its hook/signal records"
            " in this test came from threads an earlier test left running (* from thread "
            "'late-worker', which *test_1_starts_a_background_thread started and left "
            "running). Such records are not counted for this test*",
        ]
    )


# -- 4. a pool thread first created in an earlier test ---------------------------------------
def test_04_work_a_test_submits_to_a_pool_made_earlier_counts_for_it(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeconftest(STOP_THREADS_AT_EXIT)
    pytester.makepyfile(
        PLAIN_TASKS
        + """
from concurrent.futures import ThreadPoolExecutor

POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="module-pool")

def stop_background_work():
    POOL.shutdown()

def test_1_creates_the_pool_thread(eager_app, tasks):
    other, _ = tasks
    POOL.submit(other.apply).result()

def test_2_submits_a_failing_task(eager_app, tasks):
    _, fail = tasks
    POOL.submit(fail.apply).result()
    assert_hooks_not_called(fail, ["on_failure"])
"""
    )
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: Expected task 'proj.fail' not to call any of [[]'on_failure'], "
            "but 1 call(s) were recorded:",
        ]
    )


def test_04_records_of_a_foreign_thread_never_make_an_assertion_pass(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Work handed to a thread an earlier test left running, not through an executor: the
    # records cannot be told apart from that test's late work, so they are not counted, and
    # an assertion about the task refuses to judge instead of passing.
    pytester.makeconftest(STOP_THREADS_AT_EXIT)
    pytester.makepyfile(
        PLAIN_TASKS
        + """
import queue
import threading

JOBS = queue.Queue()

def stop_background_work():
    JOBS.put(None)

def serve():
    while (job := JOBS.get()) is not None:
        job()

def test_1_starts_a_worker_thread(eager_app, tasks):
    threading.Thread(target=serve, name="queue-worker", daemon=True).start()

def test_2_hands_it_a_failing_task(eager_app, tasks):
    _, fail = tasks
    done = threading.Event()
    JOBS.put(lambda: (fail.apply(), done.set()))
    assert done.wait(10)
    assert_hooks_not_called(fail, ["on_failure"])
"""
    )
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: Cannot judge task 'proj.fail': some of its hook/signal records"
            " in this test came from threads an earlier test left running (* from thread "
            "'queue-worker', which *test_1_starts_a_worker_thread started and left running)*",
        ]
    )


# -- 6. vacuous assertions -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            "assert_hooks_not_called(fail, [])",
            "ValueError: assert_hooks_not_called(): hooks must name at least one hook, got an "
            "empty list; omit hooks to assert that no hook ran at all",
        ),
        (
            "assert_hooks_not_called(fail, (h for h in []))",
            "ValueError: assert_hooks_not_called(): hooks must name at least one hook*",
        ),
        (
            'assert_hooks_not_called(fail, ["on_failure"], task_id="no-such-id")',
            "ValueError: task id 'no-such-id' was never sent, run or scheduled in this test "
            "(1 task id(s) were recorded)",
        ),
        (
            'assert_hooks_not_called(AsyncResult("no-such-id"), ["on_failure"])',
            "ValueError: task id 'no-such-id' was never sent, run or scheduled in this test*",
        ),
        (
            'assert_hooks_called(fail, [], task_id="typo")',
            "ValueError: task id 'typo' was never sent, run or scheduled in this test*",
        ),
        (
            'assert_lifecycle(fail, [], task_id="typo")',
            "ValueError: task id 'typo' was never sent, run or scheduled in this test*",
        ),
        (
            # (a result class naming its task: Celery 5.3.0's EagerResult takes no name=)
            'assert_hooks_not_called(type("R", (EagerResult,), {"name": "proj.other"})'
            '(r.id, None, "FAILURE"), ["on_failure"])',
            "ValueError: the result given names task 'proj.other', but its id '*' is an "
            "execution of task 'proj.fail' in this test*",
        ),
        (
            'hook_calls(task_id=r.id[:-1] + "x")',
            "ValueError: task id '*' was never sent, run or scheduled in this test*did you mean*",
        ),
    ],
)
def test_06_vacuous_assertions_are_errors(
    pytester: pytest.Pytester, run: RunPytest, call: str, error: str
) -> None:
    pytester.makepyfile(
        PLAIN_TASKS
        + f"""
def test_it(eager_app, tasks):
    _, fail = tasks
    r = fail.delay()  # it raised: on_failure was called
    {call}
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E *{error}"])


# -- 7. waiting out the timeout for what a worker will not run now ---------------------------
def test_07_messages_a_worker_will_not_run_now_are_not_waited_for(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Before: each assertion below waited out celerybase_wait_timeout (30 s here), then
    # judged the task as never run.  Now the bookkeeping knows at once.
    pytester.makeini("[pytest]\ncelerybase_wait_timeout = 30\n")
    pytester.makepyfile(
        """
from datetime import datetime, timedelta, timezone
import pytest
from celery.worker import state
from pytest_celerybase import assert_hooks_called, assert_hooks_not_called

@pytest.fixture
def later(live_worker):
    @live_worker.app.task(name="proj.later")
    def later():
        return 1
    return later

def test_countdown_is_not_waited_for(later, hook_recorder):
    later.apply_async(countdown=60)
    assert hook_recorder.inflight.busy() == []
    assert_hooks_not_called(later)
    assert_hooks_called(later, ["before_start", "on_success", "after_return"])

def test_expired_is_not_waited_for(later, hook_recorder):
    later.apply_async(expires=datetime.now(timezone.utc) - timedelta(minutes=1))
    assert_hooks_not_called(later)
    assert hook_recorder.inflight.busy() == []

def test_revoked_is_not_waited_for(later, hook_recorder):
    state.revoked.add("revoked-id")  # as app.control.revoke does on a worker
    later.apply_async(task_id="revoked-id")
    assert_hooks_not_called(later)
    assert hook_recorder.inflight.busy() == []
"""
    )
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_countdown_is_not_waited_for*",
            "E *Hint: the task was sent 1 time(s) during this test, scheduled for later "
            "(countdown/eta: *): a worker keeps such a message until then, and assertions do "
            "not wait for it",
        ]
    )


# -- 8. a dead worker is not reported --------------------------------------------------------
@pytest.mark.parametrize(
    ("pool", "raised", "shown"),
    [
        ("solo", "SystemExit(3)", "SystemExit(3)"),
        ("threads", "KeyboardInterrupt()", "KeyboardInterrupt()"),
        ("solo", "Halt('stop')", "Halt('stop')"),
    ],
)
def test_08_a_task_that_kills_the_worker_makes_its_test_error(
    pytester: pytest.Pytester, run: RunPytest, pool: str, raised: str, shown: str
) -> None:
    pytester.makepyfile(
        f"""
import pytest
from pytest_celerybase import assert_hooks_not_called

class Halt(BaseException):
    pass

@pytest.mark.celerybase(worker_pool={pool!r})
def test_it(live_worker):
    @live_worker.app.task(name="proj.die")
    def die():
        raise {raised}
    die.delay()
    assert_hooks_not_called(die, ["on_failure"])  # true: the worker died before it
"""
    )
    result = run("-W", "ignore::pytest.PytestUnhandledThreadExceptionWarning")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            f"*live_worker: the worker died: task proj.die[[]*] raised {shown} (*). Celery's "
            f"{pool} pool does not survive a BaseException that is not an Exception*",
        ]
    )


# -- 9. an exception the test process cannot unpickle ---------------------------------------
def test_09_an_exception_that_cannot_be_unpickled_crashes_nothing(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Before: the child-events thread died unpickling the child's on_failure record
    # (after_return was lost) and the failed test's report ended the session with an
    # INTERNALERROR.
    pytester.makepyfile(
        """
import pytest
from celery import shared_task
from pytest_celerybase import assert_hooks_called, hook_calls

class TwoArgError(Exception):
    def __init__(self, code, detail):  # pickles, but cannot be rebuilt from its args
        super().__init__(f"{code}: {detail}")

@shared_task(name="proj.picky")  # declared before the worker forks its child
def picky():
    raise TwoArgError(7, "no")

def test_names_the_hooks_and_fails_on_purpose(live_worker):
    picky.delay().get(timeout=10, propagate=False)
    assert_hooks_called(picky, ["before_start", "on_failure", "after_return"])
    exc = [c for c in hook_calls(picky) if c.hook == "on_failure"][0].exc
    assert "TwoArgError" in repr(exc) and "7: no" in str(exc)
    assert False, "the test fails: its report must not crash"

test_names_the_hooks_and_fails_on_purpose = pytest.mark.celerybase(
    worker_pool="prefork", worker_concurrency=1
)(test_names_the_hooks_and_fails_on_purpose)

def test_the_session_goes_on():
    pass
"""
    )
    result = run("-p", "no:randomly")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["E *AssertionError: the test fails: its report must not crash", "*celerybase timeline*"]
    )
    assert "INTERNALERROR" not in result.stdout.str()


# -- 10. logs lost, logs added ---------------------------------------------------------------
def test_10_a_prefork_child_s_logs_warnings_and_prints_reach_the_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import logging, sys, warnings
import pytest
from celery import shared_task

@shared_task(name="proj.noisy")
def noisy():
    logging.getLogger("proj").warning("charged %s", 7)
    warnings.warn("careful", DeprecationWarning)
    print("printed")
    print("to stderr", file=sys.stderr)
    return 1

@pytest.fixture
def warnings_logged(caplog):
    # Before live_worker: its children log at the levels of the test process when they
    # are forked (another test may have left the root logger at ERROR).
    caplog.set_level(logging.WARNING)

@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)
def test_it(warnings_logged, live_worker, caplog, recwarn, capsys):
    noisy.delay().get(timeout=10)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("proj", "charged 7")]
    assert [str(w.message) for w in recwarn] == ["careful"]
    assert capsys.readouterr() == ("printed\\n", "to stderr\\n")
"""
    )
    run().assert_outcomes(passed=1)


@pytest.mark.parametrize("pool", ["solo", "threads", "prefork"])
def test_10_the_plugin_adds_no_log_records_of_its_own(
    pytester: pytest.Pytester, run: RunPytest, pool: str
) -> None:
    # kombu warned "No hostname was supplied" on every worker test: "no warning logged"
    # assertions failed for something the user did not do.
    pytester.makepyfile(
        f"""
import logging
import pytest
from celery import shared_task

@shared_task(name="proj.quiet")
def quiet():
    return 1

@pytest.mark.celerybase(worker_pool={pool!r}, worker_concurrency=1)
def test_it(live_worker, caplog):
    quiet.delay().get(timeout=10)
    records = [*caplog.get_records("setup"), *caplog.records]
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
"""
    )
    run().assert_outcomes(passed=1)


# -- 11. a @shared_task module first imported inside a test ----------------------------------
LATE_TASKS = """
from celery import shared_task

@shared_task(name="late.ping")
def ping():
    return "pong"
"""


def test_11_what_a_module_imported_in_a_test_declares_stays_declared(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(late_tasks=LATE_TASKS)
    pytester.makepyfile(
        test_late="""
from celery import Celery

def test_1_imports_the_module(eager_app):
    import late_tasks
    assert late_tasks.ping.delay().get() == "pong"

def test_2_later_test_with_eager_app(eager_app):
    from late_tasks import ping
    assert ping.delay().get() == "pong"

def test_3_later_test_with_a_plain_app():
    app = Celery("plain", set_as_current=False)
    app.finalize()
    assert "late.ping" in app.tasks
    app.close()
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=3)


def test_11_a_shared_task_a_function_fixture_declares_is_gone_after_its_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # The fixture runs before eager_app's snapshot: it took the task for the app's own.
    pytester.makepyfile(
        """
import pytest
from celery import Celery, shared_task

@pytest.fixture
def declares():
    @shared_task(name="fx.task")
    def task():
        return 1
    return task

@pytest.fixture(scope="module")
def declares_for_the_module():
    @shared_task(name="fx.module_task")
    def task():
        return 2
    return task

def test_1_uses_the_fixture(declares, declares_for_the_module, eager_app):
    assert "fx.task" in eager_app.tasks and declares.delay().get() == 1

def test_2_does_not_have_it(eager_app):
    assert "fx.task" not in eager_app.tasks
    assert "fx.module_task" in eager_app.tasks  # a module-scoped fixture's lasts

def test_3_nor_does_a_plain_app():
    app = Celery("plain", set_as_current=False)
    app.finalize()
    assert "fx.task" not in app.tasks
    app.close()
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=3)


# -- 12. left behind by a test: the recording class in a user's subclass registry ------------
def test_12_recording_does_not_register_classes_with_the_user_s_registries(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from celery import Task

REGISTRY = []

class Meta(type(Task)):
    seen = []
    def __init__(cls, name, bases, namespace, **kwargs):
        super().__init__(name, bases, namespace, **kwargs)
        Meta.seen.append(name)

class Base(Task, metaclass=Meta):
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        REGISTRY.append(cls)

@pytest.mark.parametrize("run", range(3))
def test_runs_a_task(eager_app, run):
    @eager_app.task(base=Base, name="proj.registered")
    def registered():
        return 1
    classes_before = (len(REGISTRY), len(Meta.seen))
    assert registered.delay().get() == 1
    # the task's own class was declared; running it declares nothing more
    assert (len(REGISTRY), len(Meta.seen)) == classes_before
"""
    )
    run().assert_outcomes(passed=3)


def test_10_a_prefork_child_logs_at_the_test_s_level_whatever_the_environment(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Celery's own start_worker leaves CELERY_LOG_LEVEL in the test process; a child set
    # its logging up from it (ERROR: the task's warning was dropped in the child).
    pytester.makepyfile(
        """
import logging
import pytest
from celery import shared_task

@shared_task(name="proj.chatty")
def chatty():
    logging.getLogger("proj").info("charged %s", 7)
    return 1

@pytest.fixture
def left_by_another_worker(monkeypatch, caplog):
    monkeypatch.setenv("CELERY_LOG_LEVEL", "40")
    caplog.set_level(logging.INFO)

@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)
def test_it(left_by_another_worker, live_worker, caplog):
    chatty.delay().get(timeout=10)
    assert [r.getMessage() for r in caplog.records if r.name == "proj"] == ["charged 7"]
"""
    )
    run().assert_outcomes(passed=1)
