from celery import Task
from pytest_celerybase import (
    assert_hooks_called,
    assert_hooks_called_in_order,
    assert_hooks_not_called,
    hook_calls,
)

AUDIT_LOG = []


class AuditTask(Task):
    """A custom class: writes what finished to an audit log."""

    def on_success(self, retval, task_id, args, kwargs):
        AUDIT_LOG.append(task_id)
        super().on_success(retval, task_id, args, kwargs)


def test_exact_order(eager_app):
    @eager_app.task(base=AuditTask)
    def ship(order_id):
        return f"shipped {order_id}"

    ship.delay(7)

    assert_hooks_called(ship, ["before_start", "on_success", "after_return"])
    assert_hooks_not_called(ship, ["on_failure", "on_retry"])


def test_part_of_the_order(eager_app):
    @eager_app.task(base=AuditTask)
    def ship(order_id):
        return f"shipped {order_id}"

    ship.delay(7)

    # Other hooks may come in between: only these two, in this order.
    assert_hooks_called_in_order(ship, ["before_start", "after_return"])


def test_one_execution_and_its_records(eager_app):
    @eager_app.task(base=AuditTask)
    def ship(order_id):
        return f"shipped {order_id}"

    ship.delay(1)
    second = ship.delay(2)

    # A result narrows the assertion to that execution.
    assert_hooks_called(second, ["before_start", "on_success", "after_return"])
    last = hook_calls(ship)[-1]
    assert (last.hook, last.args, last.status, last.retval) == (
        "after_return",
        [2],
        "SUCCESS",
        "shipped 2",
    )
    assert AUDIT_LOG[-1] == second.id


def test_start_over_mid_test(eager_app, hook_recorder):
    @eager_app.task
    def warm_up():
        return "ready"

    warm_up.delay()
    hook_recorder.clear()  # forget the set-up work

    warm_up.delay()
    assert len(hook_recorder.calls) == 3


def test_a_spy_on_a_hook_still_counts(eager_app, mocker):
    @eager_app.task(base=AuditTask)
    def ship(order_id):
        return f"shipped {order_id}"

    spy = mocker.spy(ship, "on_success")
    ship.delay(3)

    spy.assert_called_once()
    assert_hooks_called(ship, ["before_start", "on_success", "after_return"])
