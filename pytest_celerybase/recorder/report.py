"""The ``celerybase timeline`` section of a test report, as text (no pytest import).

One block per execution (task id): the task, its final state and exception, then one line
per hook or signal with its offset from the start of the test.  A test that ran hundreds
of tasks gets the unusual executions first (failures, retries, tasks never finished) and
a count of what was left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_celerybase.recorder.hook_recorder import HookRecorder
from pytest_celerybase.recorder.records import LifecycleEvent

__all__ = ["MAX_EXECUTIONS", "format_timeline"]

#: Executions shown in full in one report section; the rest are counted.
MAX_EXECUTIONS = 12
# Events shown per execution (a task retried many times): the first and last ones.
_MAX_EVENTS = 40


@dataclass(eq=False)
class _Execution:
    task_id: str | None
    task_name: str
    events: list[LifecycleEvent] = field(default_factory=list)

    @property
    def state(self) -> str:
        for event in reversed(self.events):
            if event.name == "task_internal_error":
                return "RAISED"  # eager, task_eager_propagates=True: out of the call
            if event.state is not None:
                return event.state
        names = {e.name for e in self.events}
        if names <= {"before_task_publish", "after_task_publish"}:
            return "SENT"
        return "RUNNING" if "task_prerun" in names else "RECEIVED"

    @property
    def exc(self) -> BaseException | None:
        for event in reversed(self.events):
            if event.exc is not None:
                return event.exc
        return None


def _executions(events: list[LifecycleEvent]) -> list[_Execution]:
    by_id: dict[str | None, _Execution] = {}
    for event in events:
        execution = by_id.get(event.task_id)
        if execution is None:
            execution = by_id[event.task_id] = _Execution(event.task_id, event.task_name)
        execution.events.append(event)
    return list(by_id.values())


def _shown(executions: list[_Execution], limit: int) -> list[_Execution]:
    """At most ``limit`` executions, unusual ones first, kept in their original order."""
    if len(executions) <= limit:
        return executions
    picked = [e for e in executions if e.state != "SUCCESS"][:limit]
    room = limit - len(picked)
    if room:
        picked += [e for e in executions if e.state == "SUCCESS"][-room:]
    keep = {id(e) for e in picked}
    return [e for e in executions if id(e) in keep]


def _event_line(event: LifecycleEvent, main_thread: str, pid: int) -> str:
    detail = ""
    if event.exc is not None:
        detail = repr(event.exc)
    elif event.state is not None:
        detail = event.state
    where = []
    if event.pid != pid:
        where.append(f"pid {event.pid}")
    if event.thread != main_thread:
        where.append(event.thread)
    place = f"  [{', '.join(where)}]" if where else ""
    line = f"  {event.time * 1000:9.2f} ms  {event.kind:<6}  {event.name:<19} {detail}"
    return line.rstrip() + place


def format_timeline(
    recorder: HookRecorder, *, main_thread: str = "MainThread", limit: int = MAX_EXECUTIONS
) -> str:
    """The report text for everything ``recorder`` recorded ("" when nothing was)."""
    events = recorder.events_for()
    if not events:
        return ""
    executions = _executions(events)
    shown = _shown(executions, limit)
    lines = [
        f"{len(executions)} execution(s), {len(events)} event(s); "
        "times in ms from the start of the test"
    ]
    for execution in shown:
        state, exc = execution.state, execution.exc
        header = f"{execution.task_name or '?'}[{execution.task_id}] {state}"
        shown_exc = exc is not None and state != "SUCCESS"  # not a retry's reason
        lines.append(header + (f" {exc!r}" if shown_exc else ""))
        events_of = execution.events
        if len(events_of) > _MAX_EVENTS:
            half = _MAX_EVENTS // 2
            left_out = len(events_of) - 2 * half
            body = [_event_line(e, main_thread, recorder.pid) for e in events_of[:half]]
            body.append(f"  ... {left_out} event(s) not shown ...")
            body += [_event_line(e, main_thread, recorder.pid) for e in events_of[-half:]]
        else:
            body = [_event_line(e, main_thread, recorder.pid) for e in events_of]
        lines.extend(body)
    shown_ids = {id(e) for e in shown}
    hidden = [e for e in executions if id(e) not in shown_ids]
    if hidden:
        states: dict[str, int] = {}
        for execution in hidden:
            states[execution.state] = states.get(execution.state, 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        lines.append(f"... {len(hidden)} more execution(s) not shown ({counts})")
    return "\n".join(lines)
