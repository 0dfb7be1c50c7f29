"""The bad-input catalogue (the manual's troubleshooting page): the entries not
already covered next to their feature (test_assertions.py, test_assertions_unit.py,
test_eager_app.py, test_loading.py, test_live_worker.py, test_resource_fixtures.py,
test_bases_*.py).  Each test pins the exact error a user gets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from celery import Celery, Task
from sqlalchemy.exc import OperationalError

from pytest_celerybase import assert_hooks_called, assert_hooks_not_called, hook_calls
from pytest_celerybase.bases import DatabaseTask
from tests.conftest import RunPytest

SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]
SENT_NOT_RUN = (
    "Hint: the task was sent to a broker 1 time(s) during this test but never executed in "
    "this process: the app that sent it is not eager (task_always_eager=False) and no "
    "in-process worker (live_worker) consumed it"
)


# -- what is asserted on ---------------------------------------------------------------------
def test_hooks_as_a_set(eager_app: Celery) -> None:
    @eager_app.task
    def t() -> int:
        return 1

    t.delay()
    with pytest.raises(TypeError) as excinfo:
        assert_hooks_called(t, {"before_start", "on_success"})
    assert str(excinfo.value).startswith(
        "hooks must be a list of hook names in call order, got a set {"
    )
    assert str(excinfo.value).endswith("}, which has no order; write a list")
    # "none of these" has no order: a set is fine there
    assert_hooks_not_called(t, {"on_failure", "on_retry"})


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda t: t.s(1), r"got Signature: .*t\(1\)$"),
        (lambda t: type(t), r"got type: <class '.*'>$"),
        (lambda t: t.run, r"got function: <function .*>$"),
        (lambda t: [t], r"got list: \[<@task: .*>\]$"),
    ],
    ids=["signature", "task-class", "task-function", "list-of-tasks"],
)
def test_not_a_task(eager_app: Celery, make: Any, error: str) -> None:
    @eager_app.task
    def t(x: int = 0) -> int:
        return x

    with pytest.raises(TypeError) as excinfo:
        assert_hooks_called(make(t), SUCCESS)
    message = str(excinfo.value)
    assert message.startswith(
        "expected a Celery task, a registered task name (str) or a task result "
        "(AsyncResult/EagerResult), got "
    )
    assert re.search(error, message), message


def test_result_passed_as_task_id(eager_app: Celery) -> None:
    @eager_app.task
    def t() -> int:
        return 1

    result = t.delay()
    with pytest.raises(TypeError) as excinfo:
        assert_hooks_called(t, SUCCESS, task_id=result)  # type: ignore[arg-type]
    assert str(excinfo.value) == f"task_id must be a str, got EagerResult {result!r}"


def test_task_from_another_app_that_is_not_eager(eager_app: Celery) -> None:
    # A task of some other app (here one with its own memory broker) is sent, not run.
    other = Celery("other", set_as_current=False)
    other.conf.broker_url = "memory://"

    @other.task(shared=False, name="other.job")
    def job() -> int:
        return 1

    job.delay()
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(job, SUCCESS)
    assert str(excinfo.value).splitlines()[-1] == SENT_NOT_RUN
    other.close()


@pytest.mark.celerybase(task_always_eager=False)
def test_eager_app_configured_not_eager(eager_app: Celery) -> None:
    @eager_app.task
    def t() -> int:
        return 1

    t.delay()
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(t, SUCCESS)
    assert str(excinfo.value).splitlines()[-1] == SENT_NOT_RUN


# -- configuration -----------------------------------------------------------------------------
def test_negative_wait_timeout_ini(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    pytester.makeini("[pytest]\ncelerybase_wait_timeout = -1\n")
    result = run()
    result.stderr.fnmatch_lines(["ERROR: celerybase_wait_timeout must be >= 0, got '-1'"])


def test_live_worker_solo_pool_with_concurrency(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.celerybase(worker_pool="solo", worker_concurrency=2)
def test_it(live_worker):
    pass

@pytest.mark.celerybase(celerybase_worker_start_timeout=0)
def test_timeout(live_worker):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "live_worker: ValueError: the solo pool runs one task at a time, got "
            "worker_concurrency=2; use worker_pool='threads' for concurrency",
            "live_worker: ValueError: celerybase_worker_start_timeout must be a positive "
            "number of seconds, got 0",
        ]
    )
    _assert_no_traceback_into_the_plugin(result)


def _assert_no_traceback_into_the_plugin(result: pytest.RunResult) -> None:
    out = result.stdout.str()
    assert "pytest_celerybase/" not in out, out
    assert "During handling of the above exception" not in out, out
    assert "raised in repr()" not in out, out


def test_misspelled_setting_gives_one_line_for_both_apps(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.celerybase(worker_concurency=2)
def test_worker(live_worker):
    pass

@pytest.mark.celerybase(worker_concurency=2)
def test_eager(eager_app):
    pass

@pytest.mark.celerybase(worker_pool="prefrok")
def test_pool(live_worker):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=3)
    typo = (
        "unknown Celery setting 'worker_concurency' (did you mean 'worker_concurrency'?); "
        "see https://docs.celeryq.dev/en/stable/userguide/configuration.html"
    )
    result.stdout.fnmatch_lines_random(
        [
            f"live_worker: ValueError: {typo}",
            f"eager_app: ValueError: {typo}",
            "live_worker: ValueError: live_worker runs in-process, so worker_pool must be one "
            "of 'solo', 'threads', 'prefork', got 'prefrok'; *",
        ]
    )
    # one line each: the message is not repeated after a chained exception
    report_lines = [line for line in result.outlines if line.endswith(typo) and " - " not in line]
    assert report_lines == [f"live_worker: ValueError: {typo}", f"eager_app: ValueError: {typo}"]
    _assert_no_traceback_into_the_plugin(result)


def test_live_worker_conflicting_with_eager_settings(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.celerybase(task_always_eager=True)
def test_eager_worker(live_worker):
    pass

def test_both_apps(eager_app, live_worker):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "live_worker: ValueError: task_always_eager=True would run every task in the test "
            "thread instead of on the worker; remove it from celerybase_config / "
            "@pytest.mark.celerybase (use eager_app for eager tests)",
            "live_worker: ValueError: eager_app and live_worker cannot be used in the same "
            "test: each "
            "makes its own app the current one. Use live_worker.app (not eager) or eager_app "
            "(eager), one per test.",
        ]
    )


# -- resources: unreachable database, non-JSON body, unregistered request ---------------------
def test_unreachable_database_url(eager_app: Celery, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing-dir/shop.db"

    @eager_app.task(base=DatabaseTask, bind=True, database_url=url)
    def count(self: Any) -> int:
        with self.session_scope() as session:
            return int(session.execute(__import__("sqlalchemy").text("select 1")).scalar())

    result = count.delay()
    assert result.failed()
    assert isinstance(result.result, OperationalError)
    assert "unable to open database file" in str(result.result)
    assert_hooks_called(count, FAILURE)
    assert isinstance(hook_calls(count)[1].exc, OperationalError)


def test_request_nobody_registered(http_stub: responses.RequestsMock) -> None:
    with pytest.raises(requests.ConnectionError) as excinfo:
        requests.get("http://api.invalid/v1/users", timeout=1)
    assert str(excinfo.value).startswith(
        "Connection refused by Responses - the call doesn't match any registered mock."
    )
    assert "- GET http://api.invalid/v1/users" in str(excinfo.value)


def test_task_class_instance_never_ran(eager_app: Celery) -> None:
    class Report(Task):  # type: ignore[misc]
        name = "reports.build"

        def run(self) -> int:
            return 1

    report = eager_app.register_task(Report())
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(report, SUCCESS)
    assert str(excinfo.value).splitlines()[-1] == "Hint: no task ran in this test at all"
