"""How to test a time limit and a lost child with live_worker on the prefork pool.

Executed by the plugin's test suite (tests/test_docs_examples.py).
"""

import os
import time

import pytest
from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded, WorkerLostError

from pytest_celerybase import assert_hooks_called, hook_calls

# Tasks are declared at module level: a prefork child has the tasks its app had when it
# was forked, and live_worker forks its children when it starts.


class Audited(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        print(f"task {task_id} failed: {exc!r}")


@shared_task(base=Audited, time_limit=0.2)
def export_report():
    time.sleep(10)  # stuck on a slow query


@shared_task(base=Audited)
def resize_image(path):
    time.sleep(10)  # the OOM killer strikes while this runs


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
def test_hard_time_limit(live_worker):
    result = export_report.delay()
    with pytest.raises(TimeLimitExceeded):
        result.get(timeout=5)
    # On Celery 5.7 the parent runs on_failure and after_return after killing the child;
    # the assertion waits for them.
    assert_hooks_called(result, ["before_start", "on_failure", "after_return"])
    before_start, on_failure, _ = hook_calls(export_report)
    assert before_start.pid != os.getpid()  # ran in the child
    assert on_failure.pid == os.getpid()  # ran in the worker's parent: this process


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
def test_lost_child(live_worker):
    result = resize_image.delay("/tmp/huge.png")
    live_worker.kill_child(result.id)  # SIGKILL, mid-task
    with pytest.raises(WorkerLostError):
        result.get(timeout=5)
    assert_hooks_called(result, ["before_start"])  # no failure hook runs for a lost child
