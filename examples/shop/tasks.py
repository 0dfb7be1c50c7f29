"""The shop's tasks, each on a base composed from the reference bases.

Nothing here opens a connection at import: engines, HTTP sessions, Redis clients and
SMTP connections are made on first use in each worker process.
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage
from typing import Any

import requests
from celery import shared_task
from pytest_celerybase.bases import (
    APIClientTask,
    CachedTask,
    ProductionTask,
    ResourcePoolTask,
)
from sqlalchemy.exc import OperationalError

from shop import db

#: Failures worth another attempt later: the network or the database hiccuped.
TRANSIENT = (requests.ConnectionError, requests.Timeout, OperationalError)

#: (minimum quantity, percent off), largest first.
QUANTITY_DISCOUNTS = ((100, 15), (10, 5))


class ShopTask(ProductionTask):
    """Every shop task logs its hooks, emits metrics and has ``session_scope()``."""


class AccountsTask(ShopTask, APIClientTask):
    """A shop task that talks to the accounts service."""

    api_base_url = os.environ.get(
        "SHOP_ACCOUNTS_API", "https://accounts.example.com/api/"
    )
    api_timeout = (3.05, 10.0)


class PricingTask(ShopTask, CachedTask):
    """A shop task whose results are cached for ten minutes."""

    cache_ttl = 600


class MailTask(ShopTask, ResourcePoolTask):
    """A shop task sending mail over a pool of at most four SMTP connections."""

    pool_size = 4
    pool_acquire_timeout = 10.0

    def create_resource(self) -> smtplib.SMTP:
        host = self.app.conf.get("shop_smtp_host") or "localhost"
        return smtplib.SMTP(host, timeout=10)

    def close_resource(self, resource: smtplib.SMTP) -> None:
        try:
            resource.quit()
        except smtplib.SMTPException:
            resource.close()


@shared_task(
    base=AccountsTask,
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
)
def sync_users(self: AccountsTask, page: int = 1) -> int:
    """Copy one page of users from the accounts API into ``users``; return how many."""
    payload = self.make_api_call("users", params={"page": page})
    users = payload["users"]
    with self.session_scope() as session:
        for user in users:
            session.execute(
                db.UPSERT_USER,
                {"id": user["id"], "email": user["email"], "name": user["name"]},
            )
    self.emit_metric("shop_users_synced_total", len(users))
    return len(users)


@shared_task(base=PricingTask, bind=True)
def price_quote(self: PricingTask, sku: str, qty: int) -> dict[str, Any]:
    """Price ``qty`` units of ``sku`` with the quantity discount, in cents."""
    if qty < 1:
        raise ValueError(f"quantity must be at least 1, got {qty}")
    with self.session_scope() as session:
        unit_cents = session.execute(db.UNIT_PRICE, {"sku": sku}).scalar_one_or_none()
    if unit_cents is None:
        raise LookupError(f"unknown sku {sku!r}")
    return {
        "sku": sku,
        "qty": qty,
        "unit_cents": unit_cents,
        "discount_percent": discount_percent(qty),
        "total_cents": line_total_cents(unit_cents, qty),
    }


def discount_percent(qty: int) -> int:
    """The quantity discount for ``qty`` units, in percent."""
    return next((off for least, off in QUANTITY_DISCOUNTS if qty >= least), 0)


def line_total_cents(unit_cents: int, qty: int) -> int:
    """``qty`` units at ``unit_cents`` each, quantity discount applied."""
    return unit_cents * qty * (100 - discount_percent(qty)) // 100


def _send_mail(task: MailTask, to: str, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    # A connection whose send raised is closed by the pool, not reused.
    with task.acquire_resource() as smtp:
        smtp.send_message(message)


# Both mails retry a dropped SMTP connection the same way.
_MAIL_TASK = {
    "base": MailTask,
    "bind": True,
    "autoretry_for": (smtplib.SMTPServerDisconnected,),
    "retry_backoff": True,
    "max_retries": 2,
}


@shared_task(**_MAIL_TASK)
def send_receipt(self: MailTask, order_id: int) -> bool:
    """Email the receipt of ``order_id`` once; ``False`` if already sent or unknown."""
    with self.session_scope() as session:
        row = session.execute(db.ORDER_RECEIPT, {"order_id": order_id}).one_or_none()
        if row is None:
            return False
        _send_mail(
            self,
            row.email,
            f"Your receipt for order {row.id}",
            f"Hello {row.name}, you paid {row.total_cents / 100:.2f} EUR.",
        )
        # Marked in the same transaction: if the mail failed, nothing is marked.
        session.execute(db.MARK_SENT, {"order_id": order_id})
    self.emit_metric("shop_receipts_sent_total")
    return True


@shared_task(**_MAIL_TASK)
def ask_for_review(self: MailTask, order_id: int) -> bool:
    """Ask the customer of ``order_id`` for a review; ``False`` if it is unknown."""
    with self.session_scope() as session:
        row = session.execute(db.ORDER_CUSTOMER, {"order_id": order_id}).one_or_none()
    if row is None:
        return False
    _send_mail(
        self,
        row.email,
        f"How was your order {order_id}?",
        f"Hello {row.name}, tell us what you think of your order.",
    )
    self.emit_metric("shop_review_requests_sent_total")
    return True
