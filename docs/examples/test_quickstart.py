# test_quickstart.py - no conftest needed
from pytest_celerybase import assert_hooks_called


def test_add_runs_all_hooks(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y

    assert add.delay(2, 3).get() == 5
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
