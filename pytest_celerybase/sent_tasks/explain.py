"""Failure messages of the sent-task assertions (no pytest import).

In the style of the hook assertions': every message the test sent is listed (numbered,
``*`` marking the ones that matched), the closest message of the task is diffed field by
field (``- expected``, ``+ sent``), and a task never sent says which were.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pytest_celerybase.recorder.active import STACK

if TYPE_CHECKING:
    from pytest_celerybase.sent_tasks.message import SentTask
    from pytest_celerybase.sent_tasks.query import Query

__all__ = ["not_sent_message", "sent_anyway_message"]


def sent_anyway_message(query: Query, records: list[SentTask], matched: list[int]) -> str:
    """``assert_task_not_sent`` failed: ``matched`` are the indexes that matched."""
    expected = f"Expected task {query.name!r} not to be sent{query.describe()}"
    return _these_matched(expected, records, matched)


def _these_matched(expected: str, records: list[SentTask], matched: list[int]) -> str:
    what = "1 message" if len(matched) == 1 else f"{len(matched)} messages"
    return "\n".join([f"{expected}, but {what} matched (marked *):",
                      *_listing(records, matched)])  # fmt: skip


def _listing(records: list[SentTask], matched: list[int]) -> list[str]:
    lines = [f"Messages sent in this test ({len(records)}):"]
    lines.extend(
        f"  {'*' if i in matched else ' '}#{i + 1} {r.describe()}" for i, r in enumerate(records)
    )
    return lines


def not_sent_message(
    query: Query, records: list[SentTask], matched: list[int], count: int | None
) -> str:
    """``assert_task_sent`` failed: no match, or not ``count`` of them."""
    times = "" if count is None else f" {count} time(s)"
    expected = f"Expected task {query.name!r} to be sent{times}{query.describe()}"
    same_task = [i for i, r in enumerate(records) if r.name == query.name]
    if matched:  # a count mismatch
        return _these_matched(expected, records, matched)
    if not same_task:
        lines = [f"{expected}, but it was never sent in this test."]
        names = Counter(r.name for r in records)
        if names:
            shown = ", ".join(f"{n!r} x{c}" if c > 1 else repr(n) for n, c in names.items())
            lines.append(f"Tasks sent in this test: {shown}")
            lines.extend(_listing(records, matched))
        else:
            lines.append("No task was sent in this test at all.")
        lines.extend(f"Hint: {hint}" for hint in _not_sent_hints(query))
        return "\n".join(lines)
    lines = [f"{expected}, but no message matched.", *_listing(records, matched)]
    closest = min(same_task, key=lambda i: len(query.differences(records[i])))
    lines.append(f"Diff of the closest message, #{closest + 1} (- expected, + sent):")
    for want, got in query.differences(records[closest]):
        lines.extend((f"  - {want}", f"  + {got}"))
    return "\n".join(lines)


def _not_sent_hints(query: Query) -> list[str]:
    if not STACK or query.name not in STACK[-1].task_names():
        return []
    return [
        "the task ran in this test without a message: task.apply() and calling the task "
        "run it in place; delay(), apply_async(), send_task() and canvas send a message"
    ]
