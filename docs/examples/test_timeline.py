import pytest
from celery import signals
from pytest_celerybase import assert_lifecycle, timeline

SENT = []


@pytest.fixture
def audit_handler():
    """A project's signal handler, connected the way a project would connect it."""

    def on_failure(sender=None, task_id=None, exception=None, **kwargs):
        SENT.append((sender.name, repr(exception)))

    signals.task_failure.connect(on_failure)
    yield SENT
    signals.task_failure.disconnect(on_failure)
    SENT.clear()


def test_the_whole_lifecycle(eager_app):
    @eager_app.task(name="shop.charge")
    def charge(amount):
        if amount <= 0:
            raise ValueError(f"bad amount {amount}")
        return amount

    charge.delay(30)
    assert_lifecycle(
        charge,
        [
            "task_prerun",
            "before_start",
            "on_success",
            "task_success",
            "after_return",
            "task_postrun",
        ],
    )


def test_a_signal_handler_sees_the_failure(eager_app, audit_handler):
    @eager_app.task(name="shop.refund")
    def refund(amount):
        raise ValueError("refunds are closed")

    result = refund.delay(5)
    assert audit_handler == [("shop.refund", "ValueError('refunds are closed')")]
    events = timeline(result)
    failure = next(e for e in events if e.name == "task_failure")
    assert failure.kind == "signal" and isinstance(failure.exc, ValueError)
    assert [e.name for e in events if e.kind == "hook"] == [
        "before_start",
        "on_failure",
        "after_return",
    ]


@pytest.mark.celerybase(task_eager_propagates=True)
def test_propagation_skips_the_failure_signal(eager_app, audit_handler):
    @eager_app.task(name="shop.refund")
    def refund(amount):
        raise ValueError("refunds are closed")

    with pytest.raises(ValueError):
        refund.delay(5)
    assert audit_handler == []  # celery#5666: neither on_failure nor task_failure ran
    assert_lifecycle(
        refund, ["task_prerun", "before_start", "task_postrun", "task_internal_error"]
    )


def test_on_a_worker_the_message_comes_first(live_worker):
    @live_worker.app.task(name="shop.ship")
    def ship(order_id):
        return f"shipped {order_id}"

    result = ship.delay(7)
    assert result.get(timeout=10) == "shipped 7"
    # no sleep: the assertion waits until the worker has finished the task
    assert_lifecycle(
        result,
        [
            "before_task_publish",
            "after_task_publish",
            "task_received",
            "task_prerun",
            "before_start",
            "on_success",
            "task_success",
            "after_return",
            "task_postrun",
        ],
    )
    first, last = timeline(result)[0], timeline(result)[-1]
    assert first.thread == "MainThread" and last.thread != first.thread
