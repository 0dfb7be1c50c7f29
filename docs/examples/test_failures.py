import pytest
from pytest_celerybase import apply_and_raise, assert_hooks_called, hook_calls


def test_failure_is_stored_and_hooks_run(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")

    result = charge.delay(42)

    assert result.failed()
    assert isinstance(result.result, ValueError)
    assert_hooks_called(result, ["before_start", "on_failure", "after_return"])
    on_failure = hook_calls(charge)[1]
    assert str(on_failure.exc) == "card declined"
    assert hook_calls(charge)[2].status == "FAILURE"


def test_pytest_raises_and_the_failure_hooks(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")

    # Runs every hook first (no propagation), then raises the task's exception.
    with pytest.raises(ValueError, match="card declined"):
        apply_and_raise(charge, args=(42,))

    assert_hooks_called(charge, ["before_start", "on_failure", "after_return"])
