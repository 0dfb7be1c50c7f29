import pytest
from pytest_celerybase import apply_and_raise, assert_hooks_called


@pytest.mark.celerybase(task_eager_propagates=True)
def test_propagation_skips_the_failure_hooks(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")

    with pytest.raises(ValueError):
        charge.delay(42)

    # Celery raised before on_failure and after_return could run (celery#5666).
    assert_hooks_called(charge, ["before_start"])


@pytest.mark.celerybase(task_eager_propagates=True)
def test_apply_and_raise_gets_both(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")

    with pytest.raises(ValueError):
        apply_and_raise(charge, args=(42,))

    assert_hooks_called(charge, ["before_start", "on_failure", "after_return"])
