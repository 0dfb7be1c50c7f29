"""Assertions on sent task messages: ``assert_task_sent``/``assert_task_not_sent``.

The same checks serve the module-level functions (on the current test's ``sent_tasks``)
and the fixture's methods (on its own messages); the failure texts come from
:mod:`.explain` (no pytest import).
"""

from __future__ import annotations

from typing import Any

from pytest_celerybase.sent_tasks import capture
from pytest_celerybase.sent_tasks.capture import Sink
from pytest_celerybase.sent_tasks.explain import not_sent_message, sent_anyway_message
from pytest_celerybase.sent_tasks.query import Query

__all__ = ["assert_task_not_sent", "assert_task_sent", "check_task_not_sent", "check_task_sent"]


def assert_task_sent(
    task: Any, args: Any = None, kwargs: Any = None, *, count: int | None = None, **options: Any
) -> None:
    """Assert a message of ``task`` was sent in this test (``sent_tasks`` captures them).

    ``task`` is a task or a task name.  ``args``/``kwargs`` must equal the message's
    exactly, each value as its own type at every depth (``True`` is not ``1`` nor
    ``1.0``; only the serializer's round trip is allowed for, e.g. JSON's tuples as
    lists); omitted: any.  Options match what the caller meant: ``countdown=10`` a
    message whose eta is 10 s after it was sent (within 1 s), ``eta=``, ``expires=``,
    ``queue=`` (where Celery routed it), ``priority=``, ``headers=`` (a subset), ``link=``
    ... (``sent_tasks.filter`` takes the same); ``None`` (and ``[]`` for ``link=`` /
    ``link_error=``) means the message has none.  ``count=n``: exactly ``n`` messages
    match; by default at least one.
    """
    __tracebackhide__ = True
    check_task_sent(capture.current_sink(), task, args, kwargs, count, options)


def assert_task_not_sent(task: Any, args: Any = None, kwargs: Any = None, **options: Any) -> None:
    """Assert no message of ``task`` matching ``args``/``kwargs``/options was sent."""
    __tracebackhide__ = True
    check_task_not_sent(capture.current_sink(), task, args, kwargs, options)


def check_task_sent(
    sent: Sink, task: Any, args: Any, kwargs: Any, count: Any, options: dict[str, Any]
) -> None:
    """:func:`assert_task_sent` on the messages of ``sent``."""
    __tracebackhide__ = True
    _check_target(task, "assert_task_sent()")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise TypeError(f"assert_task_sent(): count must be an int >= 0, got {count!r}")
    query = Query.build(task, args, kwargs, options, sent, "assert_task_sent()")
    sent.settle()
    records = list(sent)
    matched = [i for i, r in enumerate(records) if query.matches(r)]
    if len(matched) == count or (count is None and matched):
        return
    raise AssertionError(not_sent_message(query, records, matched, count))


def check_task_not_sent(
    sent: Sink, task: Any, args: Any, kwargs: Any, options: dict[str, Any]
) -> None:
    """:func:`assert_task_not_sent` on the messages of ``sent``."""
    __tracebackhide__ = True
    _check_target(task, "assert_task_not_sent()")
    query = Query.build(task, args, kwargs, options, sent, "assert_task_not_sent()")
    sent.settle()
    records = list(sent)
    matched = [i for i, r in enumerate(records) if query.matches(r)]
    if matched:
        raise AssertionError(sent_anyway_message(query, records, matched))


def _check_target(task: Any, caller: str) -> None:
    # filter(task=None) means "any task"; an assertion about None is a mistake
    # (``app.tasks.get("typo")`` is None), never "any task".
    __tracebackhide__ = True
    if task is None:
        raise TypeError(
            f"{caller}: expected a Celery task or a task name (str), got NoneType: None"
        )
