"""Placing an order: the code around the tasks, which sends them and runs none.

``place_order`` stores the order, then sends the receipt now and a review request three
days later; a worker runs both.  Its tests (``examples/tests/test_shop_orders.py``) use
the ``sent_tasks`` fixture: assert what was sent, with which options, then run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Engine

from shop import db
from shop.tasks import ask_for_review, line_total_cents, send_receipt

#: How long after the order the customer is asked for a review.
REVIEW_DELAY = timedelta(days=3)


def place_order(engine: Engine, user_id: int, lines: Iterable[tuple[str, int]]) -> int:
    """Store an order of ``(sku, qty)`` lines for ``user_id``; return its id.

    Raises ``LookupError`` for an unknown sku (nothing is stored or sent then).
    """
    with engine.begin() as conn:
        total = 0
        for sku, qty in lines:
            unit_cents = conn.execute(db.UNIT_PRICE, {"sku": sku}).scalar_one_or_none()
            if unit_cents is None:
                raise LookupError(f"unknown sku {sku!r}")
            total += line_total_cents(unit_cents, qty)
        inserted = conn.execute(
            db.INSERT_ORDER, {"user_id": user_id, "total_cents": total}
        )
        order_id = int(inserted.lastrowid)
    # Sent after the commit: a worker must find the order when it runs.
    send_receipt.delay(order_id)
    ask_for_review.apply_async((order_id,), countdown=REVIEW_DELAY.total_seconds())
    return order_id
