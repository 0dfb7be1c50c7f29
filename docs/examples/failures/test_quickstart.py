from pytest_celerybase import assert_hooks_called


def test_charge_runs_all_hooks(eager_app):
    @eager_app.task
    def charge(amount):
        raise ValueError("card declined")

    charge.delay(42)
    assert_hooks_called(charge, ["before_start", "on_success", "after_return"])
