"""Assertions on recorded hook calls and on sent task messages (no pytest import).

Their failure messages are built by :mod:`pytest_celerybase._messages` (hooks) and
:mod:`pytest_celerybase._sent_messages` (sent tasks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pytest_celerybase._messages import mismatch_message, per_execution
from pytest_celerybase._targets import Target, check_hooks, settled
from pytest_celerybase.recorder import HOOKS, HookCall, HookRecorder, current_recorder

if TYPE_CHECKING:
    from pytest_celerybase.outbox import SentTasks

__all__ = [
    "apply_and_raise",
    "assert_hooks_called",
    "assert_hooks_called_in_order",
    "assert_hooks_not_called",
    "assert_task_not_sent",
    "assert_task_sent",
    "check_task_not_sent",
    "check_task_sent",
    "hook_calls",
]


def _recorded(task: Any, task_id: str | None) -> tuple[HookRecorder, Target, list[HookCall]]:
    """Resolve ``task``, wait for a live worker to finish it, and select its calls."""
    __tracebackhide__ = True
    recorder, target = settled(task, task_id)
    return recorder, target, recorder.calls_for(target.name, target.task_id)


def hook_calls(task: Any = None, *, task_id: str | None = None) -> list[HookCall]:
    """The :class:`HookCall` records of the current test, all or those of one task.

    ``task`` is a task, a registered task name or a result (then only that execution).
    """
    if task is None and task_id is None:
        recorder = current_recorder()
        recorder.wait_idle()
        return list(recorder.calls)
    return _recorded(task, task_id)[2]


def assert_hooks_called(task: Any, hooks: Sequence[str], *, task_id: str | None = None) -> None:
    """Assert the hooks recorded for ``task`` in this test are exactly ``hooks``, in order.

    ``task`` is a task, a registered task name, or a result object (then only that
    execution counts); ``task_id`` narrows a task or name to one execution.
    """
    __tracebackhide__ = True
    expected = check_hooks(hooks)
    recorder, target, calls = _recorded(task, task_id)
    actual = [c.hook for c in calls]
    if actual != expected:
        raise AssertionError(mismatch_message(recorder, target, expected, calls, "exactly"))


def assert_hooks_called_in_order(
    task: Any, hooks: Sequence[str], *, task_id: str | None = None
) -> None:
    """Assert ``hooks`` were recorded for ``task`` in this order, others allowed between.

    ``assert_hooks_called_in_order(t, ["on_retry", "on_success"])`` passes for
    ``before_start, on_retry, before_start, on_success, after_return``.
    """
    __tracebackhide__ = True
    expected = check_hooks(hooks)
    if not expected:
        raise ValueError("hooks must name at least one hook for an in-order check")
    recorder, target, calls = _recorded(task, task_id)
    remaining = iter(c.hook for c in calls)
    if not all(any(h == a for a in remaining) for h in expected):
        raise AssertionError(mismatch_message(recorder, target, expected, calls, "in order"))


def assert_hooks_not_called(
    task: Any, hooks: Sequence[str] | None = None, *, task_id: str | None = None
) -> None:
    """Assert none of ``hooks`` (default: no hook at all) was recorded for ``task``."""
    __tracebackhide__ = True
    forbidden = list(HOOKS) if hooks is None else check_hooks(hooks, ordered=False)
    _, target, calls = _recorded(task, task_id)
    fired = [c for c in calls if c.hook in forbidden]
    if fired:
        which = "any hook" if hooks is None else f"any of {forbidden}"
        lines = [
            f"Expected {target.description} not to call {which}, "
            f"but {len(fired)} call(s) were recorded:",
            *per_execution(calls),
        ]
        raise AssertionError("\n".join(lines))


def apply_and_raise(
    task: Any,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    """Run ``task`` eagerly and re-raise its exception *after* its failure hooks ran.

    ``task_eager_propagates=True`` (or ``apply(throw=True)``) makes Celery raise before
    ``on_failure``/``after_return`` run (celery#5666); this runs the task without
    propagation, so every hook fires, then raises the task's exception for
    ``pytest.raises``.  Returns the :class:`~celery.result.EagerResult` on success.
    """
    if not hasattr(task, "apply"):
        raise TypeError(f"expected a Celery task, got {type(task).__name__}: {task!r}")
    if "throw" in options:
        raise TypeError("apply_and_raise() always raises after the hooks ran; drop throw=")
    result = task.apply(args, kwargs, throw=False, **options)
    if result.failed():
        exc = result.result
        if isinstance(exc, BaseException):
            raise exc
        raise RuntimeError(f"task {task.name!r} failed: {exc!r}")  # pragma: no cover
    return result


# -- sent task messages ------------------------------------------------------------------
def assert_task_sent(
    task: Any, args: Any = None, kwargs: Any = None, *, count: int | None = None, **options: Any
) -> None:
    """Assert a message of ``task`` was sent in this test (``sent_tasks`` captures them).

    ``task`` is a task or a task name.  ``args``/``kwargs`` must equal the message's
    exactly (omitted: any); options match what the caller meant: ``countdown=10`` a
    message whose eta is 10 s after it was sent (within 1 s), ``eta=``, ``expires=``,
    ``queue=`` (where Celery routed it), ``priority=``, ``headers=`` (a subset), ``link=``
    ... (``sent_tasks.filter`` takes the same).  ``count=n``: exactly ``n`` messages
    match; by default at least one.
    """
    __tracebackhide__ = True
    from pytest_celerybase.outbox import current_sent_tasks

    check_task_sent(current_sent_tasks(), task, args, kwargs, count, options)


def assert_task_not_sent(task: Any, args: Any = None, kwargs: Any = None, **options: Any) -> None:
    """Assert no message of ``task`` matching ``args``/``kwargs``/options was sent."""
    __tracebackhide__ = True
    from pytest_celerybase.outbox import current_sent_tasks

    check_task_not_sent(current_sent_tasks(), task, args, kwargs, options)


def check_task_sent(
    sent: SentTasks, task: Any, args: Any, kwargs: Any, count: Any, options: dict[str, Any]
) -> None:
    """:func:`assert_task_sent` on the messages of ``sent``."""
    __tracebackhide__ = True
    from pytest_celerybase._sent_match import Query

    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise TypeError(f"assert_task_sent(): count must be an int >= 0, got {count!r}")
    query = Query.build(task, args, kwargs, options, sent, "assert_task_sent()")
    sent.settle()
    records = list(sent)
    matched = [i for i, r in enumerate(records) if query.matches(r)]
    if len(matched) == count or (count is None and matched):
        return
    from pytest_celerybase._sent_messages import not_sent_message

    raise AssertionError(not_sent_message(query, records, matched, count))


def check_task_not_sent(
    sent: SentTasks, task: Any, args: Any, kwargs: Any, options: dict[str, Any]
) -> None:
    """:func:`assert_task_not_sent` on the messages of ``sent``."""
    __tracebackhide__ = True
    from pytest_celerybase._sent_match import Query

    query = Query.build(task, args, kwargs, options, sent, "assert_task_not_sent()")
    sent.settle()
    records = list(sent)
    matched = [i for i, r in enumerate(records) if query.matches(r)]
    if matched:
        from pytest_celerybase._sent_messages import sent_anyway_message

        raise AssertionError(sent_anyway_message(query, records, matched))
