"""Assertions on recorded hook calls, and their failure messages (no pytest import)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

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


class _Target:
    """What an assertion is about: a task name, optionally narrowed to one task id."""

    __slots__ = ("description", "name", "still_running", "task_id")

    def __init__(self, name: str | None, task_id: str | None, description: str) -> None:
        self.name = name
        self.task_id = task_id
        self.description = description
        self.still_running = False  # a live worker had not finished it when we gave up


def _resolve(task: Any, task_id: str | None) -> _Target:
    __tracebackhide__ = True
    from celery import Task
    from celery.result import AsyncResult, ResultBase

    if task_id is not None and not isinstance(task_id, str):
        raise TypeError(f"task_id must be a str, got {type(task_id).__name__} {task_id!r}")
    if isinstance(task, str):
        if not task:
            raise ValueError("task name must not be empty")
        _check_known_name(task)
        return _Target(task, task_id, f"task {task!r}")
    if isinstance(task, AsyncResult):  # EagerResult is one too
        name = getattr(task, "name", None) or _recorded_name_of(task.id)
        if task_id is not None and task_id != task.id:
            raise ValueError(
                f"task_id={task_id!r} contradicts the result given, whose id is {task.id!r}"
            )
        label = f"task {name!r}" if name else "task"
        return _Target(name, task.id, f"{label} (execution {task.id})")
    if isinstance(task, ResultBase):
        raise TypeError(
            f"expected a single task's result, got {type(task).__name__}: assert on each "
            "child result (e.g. `for r in result.results: ...`) or on the task itself"
        )
    if isinstance(task, Task) or _is_task_proxy(task):
        return _Target(task.name, task_id, f"task {task.name!r}")
    raise TypeError(
        f"expected a Celery task, a registered task name (str) or a task result "
        f"(AsyncResult/EagerResult), got {type(task).__name__}: {task!r}"
    )


def _is_task_proxy(obj: Any) -> bool:
    # ``@app.task`` returns a lazy Proxy until the app is finalized; resolving it is safe.
    from celery.local import Proxy

    if not isinstance(obj, Proxy):
        return False
    from celery import Task

    return isinstance(obj._get_current_object(), Task)


def _recorded_name_of(task_id: str) -> str | None:
    recorder = current_recorder()
    info = recorder.executions.get(task_id)
    if info is not None:
        return info.task_name
    for call in recorder.calls:
        if call.task_id == task_id:
            return call.task_name
    for pub in recorder.published:
        if pub.task_id == task_id:
            return pub.task_name
    return None


def _check_known_name(name: str) -> None:
    __tracebackhide__ = True
    # A misspelled name would otherwise make `assert_hooks_not_called("x")` pass silently.
    recorder = current_recorder()
    if name in recorder.task_names() or any(p.task_name == name for p in recorder.published):
        return
    registered = _registered_names(include_builtin=True)
    if name in registered:
        return
    close = difflib.get_close_matches(name, sorted(set(registered) | set(recorder.task_names())))
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"no task named {name!r} is registered on any Celery app, ran, or was sent in "
        f"this test{hint}"
    )


def _check_hooks(hooks: Any, *, argname: str = "hooks", ordered: bool = True) -> list[str]:
    __tracebackhide__ = True
    if ordered and isinstance(hooks, (AbstractSet, Mapping)):
        # A set has no order: the comparison would depend on string hashing.
        raise TypeError(
            f"{argname} must be a list of hook names in call order, got a "
            f"{type(hooks).__name__} {hooks!r}, which has no order; write a list"
        )
    if isinstance(hooks, str):
        raise TypeError(
            f"{argname} must be a list of hook names, got the str {hooks!r}; write [{hooks!r}]"
        )
    if not isinstance(hooks, Iterable):
        raise TypeError(
            f"{argname} must be a list of hook names, got {type(hooks).__name__}: {hooks!r}"
        )
    names = list(hooks)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"hook names must be str, got {type(name).__name__} {name!r} in {argname}"
            )
        if name not in HOOKS:
            close = difflib.get_close_matches(name, HOOKS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown hook {name!r}{hint}; valid hooks are: {', '.join(HOOKS)}")
    return names


def _settle(recorder: HookRecorder, target: _Target) -> None:
    # A live worker stores the result before on_success/after_return run: wait until
    # it has finished the task so the test needs no sleep.
    idle = recorder.wait_idle(target.name if target.task_id is None else None, target.task_id)
    target.still_running = not idle


def _selected(recorder: HookRecorder, target: _Target) -> list[HookCall]:
    return recorder.calls_for(target.name, target.task_id)


def hook_calls(task: Any = None, *, task_id: str | None = None) -> list[HookCall]:
    """The :class:`HookCall` records of the current test, all or those of one task.

    ``task`` is a task, a registered task name or a result (then only that execution).
    """
    recorder = current_recorder()
    if task is None and task_id is None:
        recorder.wait_idle()
        return list(recorder.calls)
    if task is None:
        target = _Target(None, task_id, f"execution {task_id}")
    else:
        target = _resolve(task, task_id)
    _settle(recorder, target)
    return _selected(recorder, target)


def assert_hooks_called(task: Any, hooks: Sequence[str], *, task_id: str | None = None) -> None:
    """Assert the hooks recorded for ``task`` in this test are exactly ``hooks``, in order.

    ``task`` is a task, a registered task name, or a result object (then only that
    execution counts); ``task_id`` narrows a task or name to one execution.
    """
    __tracebackhide__ = True
    expected = _check_hooks(hooks)
    target = _resolve(task, task_id)
    recorder = current_recorder()
    _settle(recorder, target)
    calls = _selected(recorder, target)
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
    expected = _check_hooks(hooks)
    if not expected:
        raise ValueError("hooks must name at least one hook for an in-order check")
    target = _resolve(task, task_id)
    recorder = current_recorder()
    _settle(recorder, target)
    calls = _selected(recorder, target)
    remaining = iter(c.hook for c in calls)
    if not all(any(h == a for a in remaining) for h in expected):
        raise AssertionError(_mismatch_message(recorder, target, expected, calls, "in order"))


def assert_hooks_not_called(
    task: Any, hooks: Sequence[str] | None = None, *, task_id: str | None = None
) -> None:
    """Assert none of ``hooks`` (default: no hook at all) was recorded for ``task``."""
    __tracebackhide__ = True
    forbidden = list(HOOKS) if hooks is None else _check_hooks(hooks, ordered=False)
    target = _resolve(task, task_id)
    recorder = current_recorder()
    _settle(recorder, target)
    calls = _selected(recorder, target)
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
    target: _Target,
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
    recorder: HookRecorder, target: _Target, expected: list[str], calls: list[HookCall]
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
    # A difference listed in the README's "Eager vs worker" table: say so.
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


def _never_ran_hints(recorder: HookRecorder, target: _Target) -> list[str]:
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


def _registered_names(*, include_builtin: bool = False) -> list[str]:
    from celery import _state, current_app

    names: dict[str, None] = {}
    try:
        names.update(dict.fromkeys(current_app.tasks))
    except Exception:  # an app that cannot finalize must not hide the real failure
        pass
    for app in list(_state._get_active_apps()):
        names.update(dict.fromkeys(app._tasks))
    return [n for n in names if include_builtin or not n.startswith("celery.")]
