"""Placing an order sends two tasks: assert what was sent, then run it as a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from celery import Celery
from pytest_celerybase import (
    LiveWorker,
    SentTasks,
    assert_hooks_called,
    assert_task_not_sent,
    assert_task_sent,
)
from sqlalchemy import Engine, text

from shop.orders import REVIEW_DELAY, place_order
from shop.tasks import ask_for_review, send_receipt

if TYPE_CHECKING:
    from conftest import FakeSMTP


SUCCESS = ["before_start", "on_success", "after_return"]


def test_an_order_sends_the_receipt_now_and_a_review_request_later(
    eager_app: Celery, shop_db: Engine, sent_tasks: SentTasks, smtp: type[FakeSMTP]
) -> None:
    order = place_order(shop_db, user_id=1, lines=[("mug", 2), ("tee", 1)])

    assert_task_sent(send_receipt, (order,), countdown=None)
    assert_task_sent(ask_for_review, (order,), countdown=REVIEW_DELAY.total_seconds())
    assert len(sent_tasks) == 2
    assert smtp.outbox == []  # sent, not run: nothing was mailed


def test_the_sent_tasks_mail_the_customer(
    eager_app: Celery, shop_db: Engine, sent_tasks: SentTasks, smtp: type[FakeSMTP]
) -> None:
    order = place_order(shop_db, user_id=1, lines=[("mug", 12)])

    results = sent_tasks.run()  # the review request runs now: run() waits for no ETA

    assert [r.get() for r in results] == [True, True]
    receipt, review = smtp.outbox
    assert receipt["Subject"] == f"Your receipt for order {order}"
    assert "you paid 136.80 EUR" in receipt.get_content()  # 12 mugs, 5 % off
    assert review["Subject"] == f"How was your order {order}?"
    assert_hooks_called(send_receipt, SUCCESS)
    assert_hooks_called(ask_for_review, SUCCESS)
    with shop_db.connect() as conn:
        sent = conn.execute(
            text("SELECT receipt_sent FROM orders WHERE id = :id"), {"id": order}
        )
        assert sent.scalar_one() == 1


def test_an_unknown_product_sends_nothing(
    eager_app: Celery, shop_db: Engine, sent_tasks: SentTasks
) -> None:

    with pytest.raises(LookupError, match="unknown sku 'cup'"):
        place_order(shop_db, user_id=1, lines=[("mug", 1), ("cup", 1)])

    assert_task_not_sent(send_receipt)
    assert_task_not_sent(ask_for_review)


def test_on_a_live_worker_the_messages_are_recorded_and_delivered(
    live_worker: LiveWorker,
    shop_db: Engine,
    sent_tasks: SentTasks,
    smtp: type[FakeSMTP],
) -> None:
    order = place_order(shop_db, user_id=1, lines=[("tee", 1)])

    assert_task_sent(ask_for_review, (order,), countdown=REVIEW_DELAY.total_seconds())
    receipt, review = sent_tasks
    assert live_worker.app.AsyncResult(receipt.id).get(timeout=10) is True
    assert_hooks_called(send_receipt, SUCCESS)
    assert (
        live_worker.app.AsyncResult(review.id).state == "PENDING"
    )  # due in three days
