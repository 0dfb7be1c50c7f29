"""How to test a time limit and a lost child with live_worker on the prefork pool."""

import os
import time

import pytest
from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from pytest_celerybase import assert_hooks_called, hook_calls, timeline

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
    # The worker's parent kills the child and reports the failure: timeline() waits
    # for it.
    events = {e.name: e for e in timeline(result)}
    assert events["before_start"].pid != os.getpid()  # ran in the child
    assert events["task_failure"].pid == os.getpid()  # sent by the parent: this process
    # Celery 5.7 also runs on_failure and after_return in the parent (5.6 and older: no
    # hook at all after before_start).
    assert hook_calls(result)[0].hook == "before_start"


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
def test_lost_child(live_worker):
    result = resize_image.delay("/tmp/huge.png")
    live_worker.kill_child(result.id)  # SIGKILL, mid-task
    with pytest.raises(WorkerLostError):
        result.get(timeout=5)
    assert_hooks_called(
        result, ["before_start"]
    )  # no failure hook runs for a lost child
