"""Assertions on recorded hook calls (no pytest import).

Their failure messages are built by :mod:`pytest_celerybase.recorder.explain`; the
sent-task assertions are in :mod:`pytest_celerybase.sent_tasks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_celerybase.recorder.explain import mismatch_message, per_execution
from pytest_celerybase.recorder.hook_recorder import HookRecorder
from pytest_celerybase.recorder.records import HOOKS, HookCall
from pytest_celerybase.recorder.targets import ALL, Target, check_hooks, settled
from pytest_celerybase.sent_tasks.collection import held_now

__all__ = [
    "apply_and_raise",
    "assert_hooks_called",
    "assert_hooks_called_in_order",
    "assert_hooks_not_called",
    "hook_calls",
]


def _recorded(task: Any, task_id: str | None) -> tuple[HookRecorder, Target, list[HookCall]]:
    """Resolve ``task``, wait for a live worker to finish it, and select its calls."""
    __tracebackhide__ = True
    recorder, target = settled(task, task_id)
    return recorder, target, recorder.calls_for(target.name, target.task_id)


def hook_calls(task: Any = ALL, *, task_id: str | None = None) -> list[HookCall]:
    """The :class:`HookCall` records of the current test, all or those of one task.

    ``task`` is a task, a registered task name or a result (then only that execution).
    """
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
        raise AssertionError(
            mismatch_message(recorder, target, expected, calls, "exactly", held_now())
        )


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
        raise AssertionError(
            mismatch_message(recorder, target, expected, calls, "in order", held_now())
        )


def assert_hooks_not_called(
    task: Any, hooks: Sequence[str] | None = None, *, task_id: str | None = None
) -> None:
    """Assert none of ``hooks`` (default: no hook at all) was recorded for ``task``."""
    __tracebackhide__ = True
    forbidden = list(HOOKS) if hooks is None else check_hooks(hooks, ordered=False)
    if not forbidden:
        # "none of no hooks" holds whatever ran: a vacuous assertion is a mistake
        raise ValueError(
            "assert_hooks_not_called(): hooks must name at least one hook, got an empty "
            "list; omit hooks to assert that no hook ran at all"
        )
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
