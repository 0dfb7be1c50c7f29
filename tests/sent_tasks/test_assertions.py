"""assert_task_sent / assert_task_not_sent: what matches, what a user reads when they fail,
and every bad-input error (the misuse catalogue's "Sent tasks" rows)."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

TASKS = """
import pytest
from datetime import datetime, timedelta, timezone
from pytest_celerybase import assert_task_not_sent, assert_task_sent

@pytest.fixture
def shop(eager_app):
    class Shop:
        @eager_app.task(name="shop.send_receipt")
        def send_receipt(order_id, total=None):
            pass

        @eager_app.task(name="shop.follow_up")
        def follow_up(order_id):
            pass

        @eager_app.task(name="shop.audit")
        def audit(value):
            pass

    return Shop
"""


def test_what_matches(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        TASKS
        + """
def test_it(shop, sent_tasks):
    at = datetime.now(timezone.utc) + timedelta(days=1)
    shop.send_receipt.delay(1, total=(9, 50))
    shop.follow_up.apply_async(
        (1,), countdown=3600, expires=7200, priority=7, headers={"tenant": "eu", "x": 1},
        link=shop.audit.s("done"), link_error=shop.audit.s(), queue="later",
    )
    shop.follow_up.apply_async((2,), eta=at)

    assert_task_sent(shop.send_receipt)
    assert_task_sent("shop.send_receipt", (1,), {"total": (9, 50)})  # JSON made it a list
    assert_task_sent(shop.send_receipt, [1], {"total": [9, 50]})
    assert_task_sent(shop.follow_up, count=2)
    assert_task_sent(shop.follow_up, (1,), countdown=3600, expires=7200, priority=7,
                     headers={"tenant": "eu"}, link=shop.audit.s("done"),
                     link_error="shop.audit", queue="later", routing_key="later")
    assert_task_sent(shop.follow_up, countdown=3600.4)  # within a second
    assert_task_sent(shop.follow_up, eta=at)
    assert_task_sent(shop.follow_up, eta=at.replace(tzinfo=None))  # naive: the app's zone
    assert_task_sent(shop.send_receipt, countdown=None, eta=None, expires=None)
    assert_task_sent(shop.audit, count=0)  # before the audit below was sent
    sent_tasks.assert_task_sent(shop.follow_up, (2,), count=1)

    shop.audit.apply_async(
        ("x",), time_limit=30, soft_time_limit=20, shadow="audit-x", ignore_result=True,
        exchange="events", routing_key="audit.x",
    )
    assert_task_sent(shop.audit, ("x",), time_limit=30, soft_time_limit=20, shadow="audit-x",
                     ignore_result=True, exchange="events", routing_key="audit.x",
                     queue=None, retries=0, parent_id=None)
    assert_task_not_sent(shop.audit, time_limit=31)
    assert_task_not_sent(shop.audit, ignore_result=False)
    assert_task_not_sent(shop.audit, exchange="celery")

    assert_task_not_sent(shop.follow_up, countdown=10)
    assert_task_not_sent(shop.follow_up, (3,))
    assert_task_not_sent(shop.send_receipt, headers={"tenant": "eu"})
    assert_task_not_sent(shop.follow_up, link="shop.send_receipt")
    sent_tasks.assert_task_not_sent(shop.send_receipt, (2,))
"""
    )
    run().assert_outcomes(passed=1)


def test_a_mismatch_lists_every_message_and_diffs_the_closest(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        TASKS
        + """
def test_it(shop, sent_tasks):
    shop.send_receipt.delay(41)
    shop.follow_up.apply_async((42,), countdown=86400)
    shop.send_receipt.apply_async((42,), countdown=20)
    assert_task_sent(shop.send_receipt, (42,), countdown=10)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_task_sent(shop.send_receipt, (42,), countdown=10)",
            "E       AssertionError: Expected task 'shop.send_receipt' to be sent with "
            "args=(42,), countdown=10, but no message matched.",
            "E       Messages sent in this test (3):",
            "E          #1 shop.send_receipt(41) [[]queue 'celery']",
            "E          #2 shop.follow_up(42) countdown=86400 [[]queue 'celery']",
            "E          #3 shop.send_receipt(42) countdown=20 [[]queue 'celery']",
            "E       Diff of the closest message, #3 (- expected, + sent):",
            "E         - countdown=10",
            "E         + countdown=20.0 (eta *)",
        ]
    )
    result.stdout.no_fnmatch_line("*pytest_celerybase/assertions.py*")


def test_a_task_never_sent_says_which_were(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        TASKS
        + """
def test_others_were(shop, sent_tasks):
    shop.send_receipt.delay(1)
    shop.send_receipt.delay(2)
    shop.audit.delay("x")
    assert_task_sent(shop.follow_up, (1,))

def test_nothing_was(shop, sent_tasks):
    assert_task_sent(shop.follow_up)

def test_it_ran_without_a_message(shop, sent_tasks):
    shop.follow_up.apply((1,))
    assert_task_sent(shop.follow_up)
"""
    )
    result = run()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'shop.follow_up' to be sent with "
            "args=(1,), but it was never sent in this test.",
            "E       Tasks sent in this test: 'shop.send_receipt' x2, 'shop.audit'",
            "E       Messages sent in this test (3):",
            "E          #1 shop.send_receipt(1) [[]queue 'celery']",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'shop.follow_up' to be sent, but it was "
            "never sent in this test.",
            "E       No task was sent in this test at all.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       Hint: the task ran in this test without a message: task.apply() and "
            "calling the task run it in place; delay(), apply_async(), send_task() and "
            "canvas send a message",
        ]
    )


def test_count_and_not_sent_failures_mark_the_matches(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        TASKS
        + """
def test_count(shop, sent_tasks):
    shop.send_receipt.delay(1)
    shop.audit.delay("x")
    shop.send_receipt.delay(1)
    assert_task_sent(shop.send_receipt, (1,), count=1)

def test_not_sent(shop, sent_tasks):
    shop.audit.delay("x")
    shop.follow_up.apply_async((7,), countdown=60)
    assert_task_not_sent(shop.follow_up, (7,))
"""
    )
    result = run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'shop.send_receipt' to be sent 1 time(s) "
            "with args=(1,), but 2 messages matched (marked *):",
            "E       Messages sent in this test (3):",
            "E         *#1 shop.send_receipt(1) [[]queue 'celery']",
            "E          #2 shop.audit('x') [[]queue 'celery']",
            "E         *#3 shop.send_receipt(1) [[]queue 'celery']",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'shop.follow_up' not to be sent with "
            "args=(7,), but 1 message matched (marked *):",
            "E       Messages sent in this test (2):",
            "E          #1 shop.audit('x') [[]queue 'celery']",
            "E         *#2 shop.follow_up(7) countdown=60 [[]queue 'celery']",
        ]
    )


def test_bad_input_errors_say_what_is_valid(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        TASKS
        + """
import re

@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda s: assert_task_sent("shop.send_reciept"), ValueError,
     "assert_task_sent(): no task named 'shop.send_reciept' is registered on any Celery app "
     "or was sent in this test; did you mean 'shop.send_receipt'*?"),
    (lambda s: assert_task_sent(s.send_receipt, countdwn=10), TypeError,
     "assert_task_sent(): unknown option 'countdwn' (did you mean 'countdown'?); valid "
     "options are: countdown, eta, expires, queue, routing_key, exchange, priority, "
     "headers, link, link_error, serializer, shadow, time_limit, soft_time_limit, "
     "ignore_result, retries, parent_id"),
    (lambda s: assert_task_sent(s.audit, "hello"), TypeError,
     "assert_task_sent(): args must be a tuple or list of positional arguments, got the "
     "str 'hello'; write args=('hello',)"),
    (lambda s: assert_task_sent(s.send_receipt, {"order_id": 1}), TypeError,
     "assert_task_sent(): args must be a tuple or list of positional arguments, got a dict "
     "{'order_id': 1}; keyword arguments go in kwargs="),
    (lambda s: assert_task_not_sent(s.send_receipt, kwargs=[1]), TypeError,
     "assert_task_not_sent(): kwargs must be a dict of keyword arguments, got list: [1]"),
    (lambda s: assert_task_sent(s.send_receipt, countdown="10"), TypeError,
     "assert_task_sent(): countdown= takes a number of seconds, got str: '10'"),
    (lambda s: assert_task_sent(s.send_receipt, serializer="yml"), ValueError,
     "assert_task_sent(): unknown serializer 'yml'; registered: *"),
    (lambda s: assert_task_sent(s.send_receipt, count=True), TypeError,
     "assert_task_sent(): count must be an int >= 0, got True"),
    (lambda s: assert_task_sent(42), TypeError,
     "assert_task_sent(): expected a Celery task or a task name (str), got int: 42"),
    (lambda s: assert_task_sent(""), ValueError,
     "assert_task_sent(): task name must not be empty"),
])
def test_error(shop, sent_tasks, call, error, message):
    with pytest.raises(error) as excinfo:
        call(shop)
    pattern = re.escape(message).replace(r"\\*", ".*")
    assert re.fullmatch(pattern, str(excinfo.value)), str(excinfo.value)

def test_filter_checks_the_same(shop, sent_tasks):
    with pytest.raises(TypeError, match="sent_tasks.filter..: unknown option 'eta_'"):
        sent_tasks.filter(shop.audit, eta_=1)

def test_without_the_fixture():
    from pytest_celerybase import NoSentTasksError
    with pytest.raises(NoSentTasksError, match=(
        "no task messages are being captured: request the sent_tasks fixture in the test"
    )):
        assert_task_sent("shop.send_receipt")
"""
    )
    run().assert_outcomes(passed=12)
