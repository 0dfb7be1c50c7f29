"""The tests of the how-to guide "Test code that sends tasks"."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from accounts import (
    DAY,
    Accounts,
    end_trial,
    register,
    send_tip,
    send_welcome,
    signup_view,
    start_trial,
    transaction,
)
from celery import Celery
from pytest_celerybase import SentTasks, assert_task_not_sent, assert_task_sent


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


# -- 1. a view that sends: assert what it sent -----------------------------------------
def test_signup_sends_the_welcome_mail(
    eager_app: Celery, sent_tasks: SentTasks, accounts: Accounts
) -> None:
    response = signup_view(accounts, "ada@example.com")

    assert response == {"status": 201, "user_id": 1}
    assert_task_sent(send_welcome, (1,))


def test_a_bad_email_sends_nothing(
    eager_app: Celery, sent_tasks: SentTasks, accounts: Accounts
) -> None:
    response = signup_view(accounts, "not-an-email")

    assert response["status"] == 400
    assert_task_not_sent(send_welcome)


# -- 2. a service that chains with countdowns: assert the options, then run() ----------
def test_the_trial_sends_its_mails_a_day_and_two_weeks_apart(
    eager_app: Celery, sent_tasks: SentTasks
) -> None:
    start_trial(7)

    assert len(sent_tasks) == 1  # a chain is one message, carrying the rest
    assert_task_sent(send_tip, (7, "getting-started"), countdown=None)

    results = sent_tasks.run()  # each step is sent when the previous one ran

    assert [r.get() for r in results] == [
        "tip 'getting-started' to user 7",
        "tip 'invite-your-team' to user 7",
        "trial of user 7 ended",
    ]
    assert_task_sent(send_tip, (7, "invite-your-team"), countdown=DAY)
    assert_task_sent(end_trial, (7,), countdown=13 * DAY)


# -- 3. on commit: capture the callbacks, run them, then assert ------------------------
@pytest.fixture
def capture_on_commit_callbacks() -> Callable[..., Any]:
    """What pytest-django's ``django_capture_on_commit_callbacks`` fixture does."""

    @contextlib.contextmanager
    def capture(*, execute: bool = False) -> Iterator[list[Callable[[], Any]]]:
        captured: list[Callable[[], Any]] = []
        saved, transaction.callbacks = transaction.callbacks, captured
        try:
            yield captured
        finally:
            transaction.callbacks = saved
        if execute:
            for callback in captured:
                callback()

    return capture


def test_the_welcome_mail_waits_for_the_commit(
    eager_app: Celery,
    sent_tasks: SentTasks,
    accounts: Accounts,
    capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with capture_on_commit_callbacks(execute=True) as callbacks:
        user_id = register(accounts, "ada@example.com")
        assert_task_not_sent(send_welcome)  # not before the commit

    assert len(callbacks) == 1
    assert_task_sent(send_welcome, (user_id,))  # the callback sent it, and it is held
