"""The whole lifecycle of a task: hooks and Celery signals in one timeline (no pytest).

:func:`timeline` returns the :class:`~pytest_celerybase.LifecycleEvent` records of a task
(or of the test), :func:`assert_lifecycle` checks their exact sequence, and
:func:`assert_hooks_cooperative` checks that a composed task class passes every hook call
through every override along its MRO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_celerybase.recorder.explain import mismatch_message
from pytest_celerybase.recorder.records import LifecycleEvent
from pytest_celerybase.recorder.targets import ALL, check_events, settled
from pytest_celerybase.sent_tasks.collection import held_now

__all__ = ["assert_hooks_cooperative", "assert_lifecycle", "timeline"]


def timeline(task: Any = ALL, *, task_id: str | None = None) -> list[LifecycleEvent]:
    """The hook and signal events of the current test, all or those of one task.

    ``task`` is a task, a registered task name or a result (then only that execution);
    ``task_id`` narrows to one execution.  On a live worker this first waits (bounded)
    until the worker has finished the task.
    """
    recorder, target = settled(task, task_id)
    return recorder.events_for(target.name, target.task_id)


def assert_lifecycle(task: Any, events: Sequence[str], *, task_id: str | None = None) -> None:
    """Assert the hooks and signals recorded for ``task`` are exactly ``events``, in order.

    E.g. an eager success: ``["task_prerun", "before_start", "on_success", "task_success",
    "after_return", "task_postrun"]``.  Same targets, diff and hints as
    :func:`~pytest_celerybase.assert_hooks_called`.
    """
    __tracebackhide__ = True
    expected = check_events(events)
    recorder, target = settled(task, task_id)
    recorded = recorder.events_for(target.name, target.task_id)
    if [e.name for e in recorded] != expected:
        raise AssertionError(
            mismatch_message(
                recorder, target, expected, recorded, "exactly", held_now(), lifecycle=True
            )
        )


def assert_hooks_cooperative(task: Any, *, task_id: str | None = None) -> None:
    """Assert every override of every hook along ``task``'s class MRO ran once per call.

    For each hook recorded for ``task`` in this test: when its class has several
    overrides of that hook (``class ShopTask(LoggingTask, MetricsTask, AuditTask)``),
    each of them ran exactly once per hook call.  Fails naming, per hook, the class whose
    override did not pass control on (a forgotten ``super()``) and the classes skipped.
    """
    __tracebackhide__ = True
    recorder, target = settled(task, task_id)
    calls = recorder.calls_for(target.name, target.task_id)
    if not calls:
        raise AssertionError(
            f"Expected {target.description} to have run in this test, but no hook of it "
            "was recorded: run the task first, then check that its hooks cooperate"
        )
    problems: dict[str, dict[str, int]] = {}
    checked: dict[str, int] = {}
    for hook, chain, ran in recorder.cooperation_for(target.name, target.task_id):
        checked[hook] = checked.get(hook, 0) + 1
        problem = _cooperation_problem(hook, chain, ran)
        if problem:
            per_hook = problems.setdefault(hook, {})
            per_hook[problem] = per_hook.get(problem, 0) + 1
    if problems:
        lines = [f"Expected every override of each hook of {target.description} to run once "
                 "per hook call, but:"]  # fmt: skip
        for hook, found in problems.items():
            for problem, count in found.items():
                lines.append(f"  {hook}: {problem} ({count} of {checked[hook]} call(s))")
        lines.append(
            "Each override of a hook in a composed task class must call "
            "super().<hook>(...) exactly once, or the bases after it in the MRO never run."
        )
        raise AssertionError("\n".join(lines))


def _cooperation_problem(hook: str, chain: tuple[str, ...], ran: tuple[str, ...]) -> str:
    """What went wrong in one hook call of a composed class (class names), or ``""``."""
    skipped = [cls for cls in chain if cls not in ran]
    if skipped:
        first = chain.index(skipped[0])
        stopper = chain[first - 1] if first else None
        names = ", ".join(f"{cls}.{hook}" for cls in skipped)
        if stopper is None:  # pragma: no cover - the recording wrapper calls the first
            return f"{names} did not run"
        return (
            f"{stopper}.{hook} did not pass control on (no super().{hook}() call); "
            f"skipped: {names}"
        )
    repeated = [cls for cls in chain if ran.count(cls) > 1]
    if repeated:
        return ", ".join(f"{cls}.{hook} ran {ran.count(cls)} times in one call" for cls in repeated)
    return ""
