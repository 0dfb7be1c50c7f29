"""Hook assertions used wrongly: each test shows the error a user gets."""

import pytest
from celery import group
from celery.result import EagerResult
from pytest_celerybase import (
    apply_and_raise,
    assert_hooks_called,
    assert_hooks_called_in_order,
    assert_hooks_not_called,
)

SUCCESS = ["before_start", "on_success", "after_return"]


@pytest.fixture
def ship(eager_app):
    @eager_app.task(name="shop.ship_order")
    def ship_order(order_id):
        return order_id

    return ship_order


def test_unknown_hook(ship):
    ship.delay(1)
    assert_hooks_called(ship, ["before_start", "on_sucess", "after_return"])


def test_hooks_as_a_string(ship):
    ship.delay(1)
    assert_hooks_called(ship, "on_success")


def test_hooks_as_a_set(ship):
    ship.delay(1)
    assert_hooks_called(ship, {"on_success"})


def test_hook_not_a_str(ship):
    ship.delay(1)
    assert_hooks_called(ship, [1])


def test_empty_in_order(ship):
    ship.delay(1)
    assert_hooks_called_in_order(ship, [])


def test_not_a_task(ship):
    assert_hooks_called(ship.s(1), SUCCESS)


def test_group_result(ship):
    result = group(ship.s(1), ship.s(2)).apply_async()
    assert_hooks_called(result, SUCCESS)


def test_empty_task_name(ship):
    assert_hooks_called("", SUCCESS)


def test_misspelled_task_name(ship):
    ship.delay(1)
    assert_hooks_called("shop.ship_ordr", SUCCESS)


def test_result_as_task_id(ship):
    result = ship.delay(1)
    assert_hooks_called(ship, SUCCESS, task_id=result)


def test_result_and_another_task_id(ship):
    result = ship.delay(1)
    assert_hooks_called(result, SUCCESS, task_id="other")


def test_task_never_ran(eager_app, ship):
    @eager_app.task(name="shop.refund")
    def refund(order_id):
        return order_id

    ship.delay(1)
    assert_hooks_called(refund, SUCCESS)


@pytest.mark.celerybase(task_always_eager=False)
def test_sent_but_never_run(ship):
    ship.delay(1)
    assert_hooks_called(ship, SUCCESS)


def test_apply_and_raise_not_a_task(ship):
    apply_and_raise(3)


def test_apply_and_raise_with_throw(ship):
    apply_and_raise(ship, args=(1,), throw=True)


def test_none_as_the_task(eager_app, ship):
    ship.delay(1)
    wanted = eager_app.tasks.get("shop.ship")  # a typo: None
    assert_hooks_called(wanted, SUCCESS)


def test_not_called_with_no_hooks(ship):
    ship.delay(1)
    assert_hooks_not_called(ship, [])


def test_task_id_never_seen(ship):
    ship.delay(1)
    assert_hooks_not_called(ship, ["on_failure"], task_id="a-typo")


class RefundResult(EagerResult):
    name = "shop.refund"  # what the result says it is a result of


def test_result_of_another_task(ship):
    result = ship.delay(1)
    assert_hooks_not_called(RefundResult(result.id, None, "SUCCESS"), ["on_failure"])
