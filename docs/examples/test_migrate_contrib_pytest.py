import pytest
from celery import shared_task
from pytest_celerybase import assert_hooks_called

# Only for the "before" test: Celery's own plugin (usually loaded with
# `-p celery.contrib.pytest`).  Both plugins can stay loaded while you migrate.
pytest_plugins = ["celery.contrib.pytest"]


@shared_task
def add(x, y):
    return x + y


# Before: celery.contrib.pytest
@pytest.fixture
def celery_config():
    return {"broker_url": "memory://", "result_backend": "cache+memory://"}


@pytest.mark.celery(task_always_eager=True)
def test_add_before(celery_app):
    @celery_app.task
    def mul(x, y):
        return x * y

    assert mul.delay(2, 3).get() == 6


# After: pytest-celerybase (eager, in-memory and isolated by default; a @shared_task
# runs on eager_app, the current app during the test)
@pytest.fixture
def celerybase_config():
    return {"task_default_queue": "billing"}


@pytest.mark.celerybase(task_eager_propagates=False)
def test_add_after(eager_app):
    assert add.delay(2, 3).get() == 5
    assert eager_app.conf.task_default_queue == "billing"
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
