import pytest
from celery import shared_task
from pytest_celerybase import assert_hooks_called


@shared_task
def double(x):
    return 2 * x


def test_shared_task_on_a_real_worker(live_worker):
    result = double.delay(21)

    assert result.get(timeout=10) == 42
    # No sleep: the assertion waits until the worker has run after_return.
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])


def test_task_declared_in_the_test(live_worker):
    @live_worker.app.task
    def greet(name):
        return f"hello {name}"

    assert greet.delay("ada").get(timeout=10) == "hello ada"


@pytest.mark.celerybase(worker_pool="threads", worker_concurrency=4)
def test_on_the_threads_pool(live_worker):
    results = [double.delay(i) for i in range(8)]

    assert [r.get(timeout=10) for r in results] == [2 * i for i in range(8)]
    assert live_worker.pool == "threads" and live_worker.concurrency == 4
