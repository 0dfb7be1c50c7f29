"""Code that sends Celery tasks, as the guide "Test code that sends tasks" tests it.

Three shapes of sending code: a view that sends a task and answers at once, a service
that chains tasks with countdowns, and a registration that sends only once the database
transaction commits (Django's ``transaction.on_commit``; a stand-in here, so the example
runs without Django).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from celery import chain, shared_task

DAY = 24 * 60 * 60


@shared_task
def send_welcome(user_id: int) -> str:
    return f"welcome mail to user {user_id}"


@shared_task
def send_tip(user_id: int, topic: str) -> str:
    return f"tip {topic!r} to user {user_id}"


@shared_task
def end_trial(user_id: int) -> str:
    return f"trial of user {user_id} ended"


class Accounts:
    """A tiny user store standing in for the database."""

    def __init__(self) -> None:
        self.emails: dict[int, str] = {}

    def create(self, email: str) -> int:
        user_id = len(self.emails) + 1
        self.emails[user_id] = email
        return user_id


# -- 1. a view that sends --------------------------------------------------------------
def signup_view(accounts: Accounts, email: str) -> dict[str, Any]:
    """Create the account, send the welcome mail, answer without waiting for it."""
    if "@" not in email:
        return {"status": 400, "error": "invalid email"}
    user_id = accounts.create(email)
    send_welcome.delay(user_id)
    return {"status": 201, "user_id": user_id}


# -- 2. a service that chains tasks with countdowns ------------------------------------
def start_trial(user_id: int) -> None:
    """A tip now, another a day later, the end of the trial two weeks in."""
    chain(
        send_tip.si(user_id, "getting-started"),
        send_tip.si(user_id, "invite-your-team").set(countdown=DAY),
        end_trial.si(user_id).set(countdown=13 * DAY),
    ).apply_async()


# -- 3. sending once the transaction commits -------------------------------------------
class transaction:  # lower case, like the module it stands in for
    """Stands in for ``django.db.transaction``: ``on_commit`` callbacks wait for the
    commit (and inside a test's rolled-back transaction, that never comes)."""

    callbacks: ClassVar[list[Callable[[], Any]]] = []

    @classmethod
    def on_commit(cls, func: Callable[[], Any]) -> None:
        cls.callbacks.append(func)


def register(accounts: Accounts, email: str) -> int:
    """Create the account; the welcome mail is sent once the account is committed."""
    user_id = accounts.create(email)
    transaction.on_commit(lambda: send_welcome.delay(user_id))
    return user_id
