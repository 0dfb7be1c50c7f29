"""Failure messages of the hook and lifecycle assertions: expected vs actual, per
execution, a diff, and hints that explain the usual causes (no pytest import).

What the hints need to know beyond the records (messages held by ``sent_tasks``) is
handed in by the assertion, so explaining imports nothing above the recorder."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Protocol

from pytest_celerybase.recorder.hook_recorder import HookRecorder
from pytest_celerybase.recorder.parity import known_difference
from pytest_celerybase.recorder.records import HookCall, LifecycleEvent
from pytest_celerybase.recorder.targets import Target

__all__ = ["HeldMessage", "mismatch_message", "per_execution"]

# Names Celery skips when an eager task raises with task_eager_propagates=True.
_SKIPPED_WHEN_PROPAGATING = (
    "on_failure",
    "on_retry",
    "after_return",
    "task_failure",
    "task_retry",
)
_ISSUE_5666 = "https://github.com/celery/celery/issues/5666"


class HeldMessage(Protocol):
    """A task message held by ``sent_tasks`` (a :class:`~pytest_celerybase.SentTask`)."""

    @property
    def name(self) -> str: ...

    @property
    def id(self) -> str: ...


class _Record(Protocol):
    @property
    def task_name(self) -> str: ...

    @property
    def task_id(self) -> str | None: ...

    def describe(self) -> str: ...


def _name(record: HookCall | LifecycleEvent) -> str:
    return record.hook if isinstance(record, HookCall) else record.name


def mismatch_message(
    recorder: HookRecorder,
    target: Target,
    expected: list[str],
    records: Sequence[HookCall] | Sequence[LifecycleEvent],
    mode: str,
    held: Sequence[HeldMessage] = (),
    *,
    lifecycle: bool = False,
) -> str:
    """Expected vs recorded names, per execution, a diff (``mode="exactly"``), hints.

    ``records`` are hook calls (``assert_hooks_*``) or lifecycle events
    (``assert_lifecycle``, with ``lifecycle=True``); ``mode`` is ``"exactly"`` or
    ``"in order"``; ``held`` are the messages ``sent_tasks`` holds now (a task never run
    may be one of them).
    """
    actual = [_name(r) for r in records]
    verb, noun = ("go through", "lifecycle") if lifecycle else ("call", "hooks")
    lines = [
        f"Expected {target.description} to {verb} {mode}:",
        f"  {expected}",
        f"but the recorded {noun} {'was' if lifecycle else 'were'}:",
        f"  {actual}",
    ]
    if records:
        lines.append("Per execution (task id):")
        lines.extend(per_execution(records))
        if mode == "exactly":
            lines.append("Diff (- expected, + actual):")
            lines.extend(
                f"  {line}"
                for line in difflib.ndiff(expected, actual)
                if line[:1] in "-+ " and not line.startswith("?")
            )
    lines.extend(
        f"Hint: {hint}" for hint in _hints(recorder, target, expected, records, held)
    )
    return "\n".join(lines)


def per_execution(records: Sequence[_Record]) -> list[str]:
    """One line per task id: ``  <id> [<task>]: before_start, on_failure(...), ...``."""
    by_id: dict[str | None, list[_Record]] = {}
    for record in records:
        by_id.setdefault(record.task_id, []).append(record)
    return [
        f"  {tid} [{group[0].task_name}]: " + ", ".join(r.describe() for r in group)
        for tid, group in by_id.items()
    ]


def _hints(
    recorder: HookRecorder,
    target: Target,
    expected: list[str],
    records: Sequence[HookCall] | Sequence[LifecycleEvent],
    held: Sequence[HeldMessage],
) -> list[str]:
    hints: list[str] = []
    if not records:
        hints.extend(_never_ran_hints(recorder, target, held))
        return hints
    lifecycle = isinstance(records[0], LifecycleEvent)
    execution_ids = dict.fromkeys(r.task_id for r in records)
    propagated = [
        tid
        for tid in execution_ids
        if tid is not None
        and (info := recorder.executions.get(tid)) is not None
        and info.eager
        and info.propagate
    ]
    if propagated and any(name in _SKIPPED_WHEN_PROPAGATING for name in expected):
        skipped = (
            "on_failure/on_retry/after_return run and before task_failure/task_retry are "
            "sent"
            if lifecycle
            else "on_failure/on_retry/after_return run"
        )
        hints.append(
            f"{len(propagated)} execution(s) ran eagerly with exceptions propagating "
            "(task_eager_propagates=True, or apply(throw=True)): Celery raises before "
            f"{skipped} ({_ISSUE_5666}). Keep "
            "task_eager_propagates=False (the eager_app default) or use "
            "pytest_celerybase.apply_and_raise() to get the exception after the hooks ran."
        )
    if hints:
        return hints  # the parity table's row for this says the same again (celery#5666)
    # A difference listed in the manual's "Eager vs worker" table: say so.
    modes = {
        info.eager
        for tid in execution_ids
        if tid is not None and (info := recorder.executions.get(tid)) is not None
    }
    if len(modes) == 1:
        actual = [_name(r) for r in records]
        known = known_difference(expected, actual, eager=modes.pop(), lifecycle=lifecycle)
        if known is not None:
            hints.append(known)
    return hints


def _never_ran_hints(
    recorder: HookRecorder, target: Target, held_now: Sequence[HeldMessage]
) -> list[str]:
    sent = [
        p
        for p in recorder.published
        if (target.name is None or p.task_name == target.name)
        and (target.task_id is None or p.task_id == target.task_id)
    ]
    held = [
        m
        for m in held_now
        if (target.name is None or m.name == target.name)
        and (target.task_id is None or m.id == target.task_id)
    ]
    if held:
        return [
            f"the task was sent {len(held)} time(s) during this test and the message is "
            "held by sent_tasks, which runs nothing by itself: call sent_tasks.run() to "
            "run the held messages the way a worker would"
        ]
    later = [p for p in sent if p.eta is not None]
    if later and len(later) == len(sent):
        return [
            f"the task was sent {len(sent)} time(s) during this test, scheduled for later "
            f"(countdown/eta: {', '.join(str(p.eta) for p in later)}): a worker keeps such a "
            "message until then, and assertions do not wait for it"
        ]
    if sent:
        return [
            f"the task was sent to a broker {len(sent)} time(s) during this test but never "
            "executed in this process: the app that sent it is not eager "
            "(task_always_eager=False) and no in-process worker (live_worker) consumed it"
        ]
    ran = recorder.task_names()
    if ran:
        return [f"the task never ran in this test; tasks that ran: {', '.join(ran)}"]
    return ["no task ran in this test at all"]
