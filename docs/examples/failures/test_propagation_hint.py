import pytest
from pytest_celerybase import assert_hooks_called


@pytest.mark.celerybase(task_eager_propagates=True)
def test_failure_hooks_run(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")

    with pytest.raises(ValueError):
        charge.delay(42)

    assert_hooks_called(charge, ["before_start", "on_failure", "after_return"])
