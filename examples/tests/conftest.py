"""Fixtures shared by the shop's tests, built on the plugin's fixtures."""

from __future__ import annotations

import smtplib
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from pytest_mock import MockerFixture
from sqlalchemy import Engine, text

# The tests import the shop from the folder above them (examples/).  A project of your
# own would install itself, or name its folder in pytest's `pythonpath` ini option.
_EXAMPLES = str(Path(__file__).resolve().parent.parent)
if _EXAMPLES not in sys.path:
    sys.path.append(_EXAMPLES)

from shop.db import create_schema  # noqa: E402


@pytest.fixture
def shop_db(sqlite_engine: Engine) -> Engine:
    """The test's in-memory database with the shop schema and a small catalogue."""
    create_schema(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO products (sku, unit_cents) VALUES (:sku, :cents)"),
            [{"sku": "mug", "cents": 1200}, {"sku": "tee", "cents": 2500}],
        )
        conn.execute(
            text(
                "INSERT INTO users (id, email, name) "
                "VALUES (1, 'ada@example.com', 'Ada')"
            )
        )
    return sqlite_engine


class FakeSMTP:
    """Stands in for ``smtplib.SMTP``: records what it sends and whether it closed."""

    outbox: list[EmailMessage]
    opened: list[FakeSMTP]

    def __init__(self, host: str, timeout: float) -> None:
        self.host = host
        self.closed = False
        self.opened.append(self)

    def send_message(self, message: EmailMessage) -> None:
        if self.closed:
            raise smtplib.SMTPServerDisconnected("connection closed")
        self.outbox.append(message)

    def quit(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def smtp(mocker: MockerFixture) -> type[FakeSMTP]:
    """Replace ``smtplib.SMTP`` for the test; ``smtp.outbox`` holds the sent mail."""
    fake = type("FakeSMTP", (FakeSMTP,), {"outbox": [], "opened": []})
    mocker.patch.object(smtplib, "SMTP", fake)
    return fake
