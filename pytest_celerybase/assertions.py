"""Assertions on recorded hook calls, and their failure messages (no pytest import)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pytest_celerybase._targets import Target, check_hooks, resolve
from pytest_celerybase.recorder import HOOKS, HookCall, HookRecorder, current_recorder

__all__ = [
    "apply_and_raise",
    "assert_hooks_called",
    "assert_hooks_called_in_order",
    "assert_hooks_not_called",
    "hook_calls",
]

_FAILURE_HOOKS = ("on_failure", "on_retry", "after_return")
_ISSUE_5666 = "https://github.com/celery/celery/issues/5666"


def _recorded(task: Any, task_id: str | None) -> tuple[HookRecorder, Target, list[HookCall]]:
    """Resolve ``task``, wait for a live worker to finish it, and select its calls."""
    __tracebackhide__ = True
    recorder = current_recorder()
    if task is None:
        target = Target(None, task_id, f"execution {task_id}")
    else:
        target = resolve(task, task_id, recorder)
    # A live worker stores the result before on_success/after_return run: wait until
    # it has finished the task so the test needs no sleep.
    by_name = target.name if target.task_id is None else None
    target.still_running = not recorder.wait_idle(by_name, target.task_id)
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
        raise AssertionError(_mismatch_message(recorder, target, expected, calls, "exactly"))


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
        raise AssertionError(_mismatch_message(recorder, target, expected, calls, "in order"))


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
            *_per_execution(calls),
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


# -- failure messages --------------------------------------------------------------------
def _mismatch_message(
    recorder: HookRecorder,
    target: Target,
    expected: list[str],
    calls: list[HookCall],
    mode: str,
) -> str:
    actual = [c.hook for c in calls]
    lines = [
        f"Expected {target.description} to call {mode}:",
        f"  {expected}",
        "but the recorded hooks were:",
        f"  {actual}",
    ]
    if calls:
        lines.append("Per execution (task id):")
        lines.extend(_per_execution(calls))
        if mode == "exactly":
            lines.append("Diff (- expected, + actual):")
            lines.extend(
                f"  {line}"
                for line in difflib.ndiff(expected, actual)
                if line[:1] in "-+ " and not line.startswith("?")
            )
    lines.extend(f"Hint: {hint}" for hint in _hints(recorder, target, expected, calls))
    return "\n".join(lines)


def _per_execution(calls: list[HookCall]) -> list[str]:
    by_id: dict[str | None, list[HookCall]] = {}
    for call in calls:
        by_id.setdefault(call.task_id, []).append(call)
    return [
        f"  {tid} [{group[0].task_name}]: " + ", ".join(c.describe() for c in group)
        for tid, group in by_id.items()
    ]


def _hints(
    recorder: HookRecorder, target: Target, expected: list[str], calls: list[HookCall]
) -> list[str]:
    hints: list[str] = []
    if target.still_running:
        hints.append(
            f"the live worker was still running (or had not yet received) this task after "
            f"waiting {recorder.wait_timeout:g} s (celerybase_wait_timeout): the records "
            "may be incomplete"
        )
    if not calls:
        hints.extend(_never_ran_hints(recorder, target))
        return hints
    execution_ids = dict.fromkeys(c.task_id for c in calls)
    propagated = [
        tid
        for tid in execution_ids
        if tid is not None
        and (info := recorder.executions.get(tid)) is not None
        and info.eager
        and info.propagate
    ]
    if propagated and any(h in _FAILURE_HOOKS for h in expected):
        hints.append(
            f"{len(propagated)} execution(s) ran eagerly with exceptions propagating "
            "(task_eager_propagates=True, or apply(throw=True)): Celery raises before "
            f"on_failure/on_retry/after_return run ({_ISSUE_5666}). Keep "
            "task_eager_propagates=False (the eager_app default) or use "
            "pytest_celerybase.apply_and_raise() to get the exception after the hooks ran."
        )
    # A difference listed in the manual's "Eager vs worker" table: say so.
    modes = {
        info.eager
        for tid in execution_ids
        if tid is not None and (info := recorder.executions.get(tid)) is not None
    }
    if len(modes) == 1:
        from pytest_celerybase._parity import known_difference

        known = known_difference(expected, [c.hook for c in calls], eager=modes.pop())
        if known is not None:
            hints.append(known)
    return hints


def _never_ran_hints(recorder: HookRecorder, target: Target) -> list[str]:
    hints: list[str] = []
    sent = [
        p
        for p in recorder.published
        if (target.name is None or p.task_name == target.name)
        and (target.task_id is None or p.task_id == target.task_id)
    ]
    if sent:
        hints.append(
            f"the task was sent to a broker {len(sent)} time(s) during this test but never "
            "executed in this process: the app that sent it is not eager "
            "(task_always_eager=False) and no in-process worker (live_worker) consumed it"
        )
        return hints
    ran = recorder.task_names()
    if ran:
        hints.append(f"the task never ran in this test; tasks that ran: {', '.join(ran)}")
    else:
        hints.append("no task ran in this test at all")
    return hints
