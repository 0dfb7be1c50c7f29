"""sent_tasks and its assertions used wrongly: each test shows the error a user gets."""

import pytest
from pytest_celerybase import assert_hooks_called, assert_task_sent


@pytest.fixture
def receipt(eager_app):
    @eager_app.task(name="shop.send_receipt")
    def send_receipt(order_id):
        return order_id

    return send_receipt


def test_misspelled_task_name(receipt, sent_tasks):
    receipt.delay(1)
    assert_task_sent("shop.send_reciept", (1,))


def test_unknown_option(receipt, sent_tasks):
    receipt.apply_async((1,), countdown=10)
    assert_task_sent(receipt, (1,), countdwn=10)


def test_option_of_the_wrong_type(receipt, sent_tasks):
    receipt.apply_async((1,), countdown=10)
    assert_task_sent(receipt, (1,), countdown="10")


def test_args_as_a_string(receipt, sent_tasks):
    receipt.delay("A-1")
    assert_task_sent(receipt, "A-1")


def test_args_as_a_dict(receipt, sent_tasks):
    receipt.delay(order_id=1)
    assert_task_sent(receipt, {"order_id": 1})


def test_without_the_fixture(receipt):
    receipt.delay(1)
    assert_task_sent(receipt, (1,))


def test_argument_the_serializer_cannot_encode(receipt, sent_tasks):
    receipt.delay(object())


def test_result_of_a_held_message(receipt, sent_tasks):
    assert receipt.delay(1).get(timeout=10) == 1


def test_hooks_of_a_held_message(receipt, sent_tasks):
    receipt.delay(1)
    assert_hooks_called(receipt, ["before_start", "on_success", "after_return"])


def test_run_with_a_live_worker(live_worker, sent_tasks):
    @live_worker.app.task(name="shop.send_receipt")
    def send_receipt(order_id):
        return order_id

    send_receipt.delay(1).get(timeout=10)
    sent_tasks.run()


def test_tasks_that_keep_sending_tasks(eager_app, sent_tasks):
    @eager_app.task(name="shop.fan_out")
    def fan_out(depth):
        fan_out.delay(depth + 1)
        fan_out.delay(depth + 1)

    fan_out.delay(0)
    sent_tasks.run(max_tasks=10)


@pytest.mark.celerybase(task_serializer="pickle")  # accept_content stays ["json"]
def test_a_message_workers_refuse(receipt, sent_tasks):
    receipt.delay(1)
    sent_tasks.run()


def test_a_task_the_app_does_not_have(receipt, eager_app, sent_tasks):
    eager_app.send_task("shop.send_reciept", (1,))
    sent_tasks.run()
