"""assert_hooks_cooperative: every override along a composed class's MRO runs once per call."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from pytest_celerybase import assert_hooks_cooperative, hook_calls
from pytest_celerybase.bases import (
    APIClientTask,
    CachedTask,
    DatabaseTask,
    LoggingTask,
    MetricsTask,
    ProductionTask,
    ResourcePoolTask,
)
from tests.conftest import RunPytest

COMPOSED = """
from celery import Task
from pytest_celerybase import assert_hooks_cooperative

class LoggingBase(Task):
    def on_success(self, retval, task_id, args, kwargs):
        super().on_success(retval, task_id, args, kwargs)

    def after_return(self, *args, **kwargs):
        super().after_return(*args, **kwargs)
        super().after_return(*args, **kwargs)  # twice: the bases after it run twice

class MetricsBase(Task):
    def on_success(self, retval, task_id, args, kwargs):
        pass  # forgot super(): AuditBase.on_success never runs

    def after_return(self, *args, **kwargs):
        super().after_return(*args, **kwargs)

class AuditBase(Task):
    def on_success(self, retval, task_id, args, kwargs):
        super().on_success(retval, task_id, args, kwargs)

    def after_return(self, *args, **kwargs):
        super().after_return(*args, **kwargs)

class ShopTask(LoggingBase, MetricsBase, AuditBase):
    pass
"""


def test_a_forgotten_super_and_a_double_call_are_named_per_hook(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        COMPOSED
        + """
def test_shop(eager_app):
    @eager_app.task(base=ShopTask)
    def buy():
        return 1

    buy.delay()
    buy.delay()
    assert_hooks_cooperative(buy)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected every override of each hook of task '*.buy' "
            "to run once per hook call, but:",
            "E         on_success: MetricsBase.on_success did not pass control on (no "
            "super().on_success() call); skipped: AuditBase.on_success (2 of 2 call(s))",
            "E         after_return: MetricsBase.after_return ran 2 times in one call, "
            "AuditBase.after_return ran 2 times in one call (2 of 2 call(s))",
        ]
    )


def test_cooperative_composition_passes_also_on_a_worker(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        COMPOSED
        + """
class Fixed(Task):
    def on_success(self, retval, task_id, args, kwargs):
        super().on_success(retval, task_id, args, kwargs)

class Other(Task):
    def on_success(self, retval, task_id, args, kwargs):
        super().on_success(retval, task_id, args, kwargs)

class Good(Fixed, Other):
    pass

def test_eager(eager_app):
    @eager_app.task(base=Good)
    def fine():
        return 1
    fine.delay()
    assert_hooks_cooperative(fine)

def test_worker(live_worker):
    @live_worker.app.task(base=Good)
    def fine():
        return 1
    fine.delay().get(timeout=10)
    assert_hooks_cooperative(fine)

def test_not_composed_passes(eager_app):
    @eager_app.task
    def plain():
        return 1
    plain.delay()
    assert_hooks_cooperative(plain)
"""
    )
    run().assert_outcomes(passed=3)


def test_a_task_that_did_not_run_cannot_be_checked(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        COMPOSED
        + """
def test_it(eager_app):
    @eager_app.task(base=ShopTask)
    def buy():
        return 1
    assert_hooks_cooperative(buy)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task '*.buy' to have run in this test, but no "
            "hook of it was recorded: run the task first, then check that its hooks cooperate"
        ]
    )


def test_classes_are_restored_and_spies_still_see_every_call(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        COMPOSED
        + """
def test_spied(eager_app, mocker):
    spy = mocker.spy(AuditBase, "after_return")
    @eager_app.task(base=ShopTask)
    def buy():
        return 1
    buy.delay()
    assert spy.call_count == 2  # LoggingBase.after_return calls super() twice

def test_after():
    # what the first test's recording wrapped is the original function again
    assert ShopTask.__mro__[1].on_success.__qualname__ == "LoggingBase.on_success"
    assert not hasattr(LoggingBase.__dict__["on_success"], "__celerybase_counted__")
    assert not hasattr(AuditBase.__dict__["after_return"], "__celerybase_counted__")
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    "base",
    [LoggingTask, MetricsTask, CachedTask, DatabaseTask, APIClientTask, ResourcePoolTask,
     ProductionTask],
    ids=lambda base: base.__name__,
)
def test_every_reference_base_is_cooperative(
    base: type, eager_app: Celery, sqlite_engine: Any, fake_redis: Any, metrics_sink: Any
) -> None:
    @eager_app.task(base=base, bind=True, default_retry_delay=0)
    def job(self: Any, fail: bool = False) -> int:
        if fail and self.request.retries < 1:
            raise self.retry(exc=KeyError("again"))
        if fail:
            raise ValueError("failed")
        return 1

    job.delay()
    job.delay(fail=True)
    assert {c.hook for c in hook_calls(job)} == {
        "before_start", "on_success", "on_retry", "on_failure", "after_return",
    }  # fmt: skip
    assert_hooks_cooperative(job)


def test_production_task_composes_several_bases_per_hook(eager_app: Celery) -> None:
    # ProductionTask is the composed class of the guide: the check has something to check
    composed = [
        hook
        for hook in ("before_start", "on_success", "on_failure", "after_return")
        if sum(hook in vars(klass) for klass in ProductionTask.__mro__[:-2]) >= 2
    ]
    assert composed  # several bases override the same hooks
