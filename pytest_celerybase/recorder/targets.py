"""What an assertion is about: a task, a task name or a result, checked and resolved.

Shared by every assertion and query of the records, so they accept the same things and
reject the same mistakes with the same messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from pytest_celerybase.apps.names import unknown_name_hint
from pytest_celerybase.recorder.active import current_recorder
from pytest_celerybase.recorder.hook_recorder import HookRecorder
from pytest_celerybase.recorder.records import HOOKS, SIGNALS

__all__ = [
    "ALL",
    "Target",
    "check_events",
    "check_hooks",
    "resolve",
    "settled",
]


class _AllTasks:
    """The default of the queries' ``task``: every task (not ``None``, which is a mistake:
    ``app.tasks.get("typo")`` returns it)."""

    def __repr__(self) -> str:
        return "<all tasks>"


#: ``hook_calls()``/``timeline()`` without a task: the records of every task.
ALL: Any = _AllTasks()


@dataclass(slots=True)
class Target:
    """A task name, optionally narrowed to one task id, and how to name it in messages."""

    name: str | None
    task_id: str | None
    description: str


def resolve(task: Any, task_id: str | None, recorder: HookRecorder | None = None) -> Target:
    """The :class:`Target` for a task, a registered task name or a result object."""
    __tracebackhide__ = True
    from celery import Task
    from celery.result import AsyncResult, ResultBase

    recorder = recorder or current_recorder()
    _check_task_id(task_id)
    if isinstance(task, str):
        if not task:
            raise ValueError("task name must not be empty")
        check_known_name(task, recorder)
        return Target(task, task_id, f"task {task!r}")
    if isinstance(task, AsyncResult):  # EagerResult is one too
        if task_id is not None and task_id != task.id:
            raise ValueError(
                f"task_id={task_id!r} contradicts the result given, whose id is {task.id!r}"
            )
        recorded = recorded_name_of(task.id, recorder)
        name = getattr(task, "name", None) or recorded
        if name and recorded and name != recorded:
            raise ValueError(
                f"the result given names task {name!r}, but its id {task.id!r} is an "
                f"execution of task {recorded!r} in this test: an assertion would look for "
                "records that cannot exist"
            )
        label = f"task {name!r}" if name else "task"
        return Target(name, task.id, f"{label} (execution {task.id})")
    if isinstance(task, ResultBase):
        raise TypeError(
            f"expected a single task's result, got {type(task).__name__}: assert on each "
            "child result (e.g. `for r in result.results: ...`) or on the task itself"
        )
    if isinstance(task, Task) or is_task_proxy(task):
        return Target(task.name, task_id, f"task {task.name!r}")
    raise TypeError(
        f"expected a Celery task, a registered task name (str) or a task result "
        f"(AsyncResult/EagerResult), got {type(task).__name__}: {task!r}"
    )


def _check_task_id(task_id: Any) -> None:
    """``TypeError`` unless ``task_id`` is ``None`` or a str (ids are compared as str)."""
    __tracebackhide__ = True
    if task_id is not None and not isinstance(task_id, str):
        raise TypeError(f"task_id must be a str, got {type(task_id).__name__} {task_id!r}")


def settled(task: Any, task_id: str | None) -> tuple[HookRecorder, Target]:
    """The current recorder and the resolved target, once a live worker has finished it.

    A live worker stores the result before ``on_success``/``after_return`` run: waiting
    (bounded by ``celerybase_wait_timeout``) means the test needs no sleep.  An execution
    still running when the wait ends has incomplete records: judging them could pass
    falsely (``on_failure`` may come next), so that is an ``AssertionError`` naming it.
    """
    __tracebackhide__ = True
    recorder = current_recorder()
    if task is ALL:
        _check_task_id(task_id)  # hook_calls(task_id=42) would select nothing, silently
        described = "the test's executions" if task_id is None else f"execution {task_id}"
        target = Target(None, task_id, described)
        strays: dict[tuple[str, str], int] = {}
        for per_task in recorder.stray_tasks.values():
            for key, count in per_task.items():
                strays[key] = strays.get(key, 0) + count
    else:
        target = resolve(task, task_id, recorder)
        strays = recorder.stray_tasks.get(target.name or "", {})
    if strays:
        raise AssertionError(strays_message(target, strays))
    by_name = target.name if target.task_id is None else None
    waited = recorder.wait_idle(by_name, target.task_id)
    if target.task_id is not None:
        check_known_id(target.task_id, recorder)
    if not waited:
        busy = recorder.inflight.busy(by_name, target.task_id)
        if busy:
            raise AssertionError(still_running_message(recorder, target, busy))
    return recorder, target


def strays_message(target: Target, strays: dict[tuple[str, str], int]) -> str:
    """Why an assertion refuses to judge a task some of whose records were not counted."""
    threads = "; ".join(
        f"{count} from thread {thread!r}, which {test} started and left running"
        for (thread, test), count in strays.items()
    )
    return (
        f"Cannot judge {target.description}: some of its hook/signal records in this test "
        f"came from threads an earlier test left running ({threads}). Such records are not "
        "counted for this test, and they may be what the assertion is about. Join (or shut "
        "down) the threads and pools a test starts before it ends; work submitted to a "
        "concurrent.futures.ThreadPoolExecutor is counted for the test that submitted it."
    )


def still_running_message(recorder: HookRecorder, target: Target, busy: list[str]) -> str:
    """Why an assertion refuses to judge executions a live worker has not finished."""
    names = {tid: recorder.inflight.name_of(tid) for tid in busy}
    shown = ", ".join(f"{names[tid] or '?'}[{tid}]" for tid in busy)
    return (
        f"Cannot judge {target.description}: the live worker was still running (or had "
        f"not yet started) {len(busy)} execution(s) of it after waiting "
        f"{recorder.wait_timeout:g} s: {shown}. Its records are incomplete (on_failure, "
        "after_return... may still come). Wait for it in the test (result.get(timeout=...)) "
        "or raise celerybase_wait_timeout in the ini file."
    )


def is_task_proxy(obj: Any) -> bool:
    """Whether ``obj`` is the lazy proxy ``@app.task`` returns before the app finalizes."""
    from celery.local import Proxy

    if not isinstance(obj, Proxy):
        return False
    from celery import Task

    return isinstance(obj._get_current_object(), Task)


def recorded_name_of(task_id: str, recorder: HookRecorder) -> str | None:
    """The task name recorded for ``task_id`` (executed, called a hook, or sent)."""
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


def check_known_id(task_id: str, recorder: HookRecorder) -> None:
    """Reject a task id never sent, run or scheduled in this test: a typo, or a result of
    another test (records for it cannot exist, so any negative assertion would pass)."""
    __tracebackhide__ = True
    known = recorder.task_ids()
    if task_id in known:
        return
    close = difflib.get_close_matches(task_id, sorted(known), n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    seen = f"{len(known)} task id(s) were" if known else "no task id was"
    raise ValueError(
        f"task id {task_id!r} was never sent, run or scheduled in this test ({seen} "
        f"recorded){hint}"
    )


def check_known_name(name: str, recorder: HookRecorder) -> None:
    """Reject a task name no app registers and nothing recorded: most likely a typo."""
    __tracebackhide__ = True
    # A misspelled name would otherwise make `assert_hooks_not_called("x")` pass silently.
    recorded = recorder.task_names()
    published = {p.task_name for p in recorder.published}
    hint = unknown_name_hint(name, {*recorded, *published}, recorded)
    if hint is not None:
        raise ValueError(
            f"no task named {name!r} is registered on any Celery app, ran, or was sent in "
            f"this test{hint}"
        )


def check_hooks(hooks: Any, *, ordered: bool = True) -> list[str]:
    """``hooks`` as a list of valid hook names; ``TypeError``/``ValueError`` otherwise."""
    __tracebackhide__ = True
    return _check_names(hooks, HOOKS, "hooks", "hook", ordered=ordered)


def check_events(events: Any) -> list[str]:
    """``events`` as a list of hook and signal names; ``TypeError``/``ValueError`` otherwise."""
    __tracebackhide__ = True
    return _check_names(events, (*HOOKS, *SIGNALS), "events", "hook or signal", ordered=True)


def _check_names(
    names: Any, valid: tuple[str, ...], argname: str, what: str, *, ordered: bool
) -> list[str]:
    __tracebackhide__ = True
    if ordered and isinstance(names, (AbstractSet, Mapping)):
        # A set has no order: the comparison would depend on string hashing.
        raise TypeError(
            f"{argname} must be a list of {what} names in call order, got a "
            f"{type(names).__name__} {names!r}, which has no order; write a list"
        )
    if isinstance(names, str):
        raise TypeError(
            f"{argname} must be a list of {what} names, got the str {names!r}; "
            f"write [{names!r}]"
        )
    if not isinstance(names, Iterable):
        raise TypeError(
            f"{argname} must be a list of {what} names, got {type(names).__name__}: {names!r}"
        )
    checked = list(names)
    for name in checked:
        if not isinstance(name, str):
            raise TypeError(
                f"{what} names must be str, got {type(name).__name__} {name!r} in {argname}"
            )
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown {what} {name!r}{hint}; valid {argname} are: {', '.join(valid)}"
            )
    return checked
