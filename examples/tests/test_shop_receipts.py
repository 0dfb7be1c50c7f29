"""Receipts: pooled SMTP connections (faked with mocker), sent exactly once."""

from __future__ import annotations

import smtplib
import threading
from typing import TYPE_CHECKING

from celery import Celery
from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import MemorySink
from pytest_mock import MockerFixture
from sqlalchemy import Engine, text

from shop.tasks import send_receipt

if TYPE_CHECKING:
    from conftest import FakeSMTP


def add_orders(engine: Engine, count: int) -> list[int]:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orders (id, user_id, total_cents) VALUES (:id, 1, :total)"
            ),
            [{"id": i, "total": 1000 + i} for i in range(1, count + 1)],
        )
    return list(range(1, count + 1))


def test_receipt_is_sent_once(
    eager_app: Celery, shop_db: Engine, smtp: type[FakeSMTP], metrics_sink: MemorySink
) -> None:
    [order] = add_orders(shop_db, 1)

    assert send_receipt.delay(order).get() is True
    assert send_receipt.delay(order).get() is False  # already sent

    [mail] = smtp.outbox
    assert mail["To"] == "ada@example.com"
    assert "you paid 10.01 EUR" in mail.get_content()
    assert len(smtp.opened) == 1  # the second run needed no connection
    assert_hooks_called(
        send_receipt, ["before_start", "on_success", "after_return"] * 2
    )
    assert metrics_sink.total("shop_receipts_sent_total") == 1


def test_a_dropped_smtp_connection_is_replaced(
    eager_app: Celery, shop_db: Engine, smtp: type[FakeSMTP], mocker: MockerFixture
) -> None:

    [order] = add_orders(shop_db, 1)
    send = mocker.patch.object(
        smtp,
        "send_message",
        autospec=True,
        side_effect=[smtplib.SMTPServerDisconnected("421 closing"), None],
    )

    assert send_receipt.delay(order).get() is True

    assert_hooks_called(
        send_receipt,
        ["before_start", "on_retry", "before_start", "on_success", "after_return"],
    )
    first, second = smtp.opened
    assert first.closed and not second.closed  # the broken one was discarded
    assert send.call_count == 2


def test_concurrent_receipts_share_at_most_four_connections(
    eager_app: Celery, shop_db: Engine, smtp: type[FakeSMTP]
) -> None:
    orders = add_orders(shop_db, 12)
    eager_app.finalize()  # Celery builds tasks lazily, not thread-safely: do it first
    threads = [
        threading.Thread(target=send_receipt.apply, args=((o,),)) for o in orders
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(smtp.outbox) == 12
    assert len(smtp.opened) <= 4
    with shop_db.connect() as conn:
        assert (
            conn.execute(text("SELECT sum(receipt_sent) FROM orders")).scalar_one()
            == 12
        )
