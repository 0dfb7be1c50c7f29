"""The lifecycle coverage report: the terminal section and the JSON document (no pytest).

Classes with an override no execution ran come first, and in each class its never-run
overrides first, each with why: which tasks would have to succeed, fail or retry, which
override before it does not call ``super()``, or that none of the class's tasks ran.
"""

from __future__ import annotations

from typing import Any

from pytest_celerybase.coverage.collect import ClassCoverage, LifecycleCoverage, MethodCoverage
from pytest_celerybase.coverage.tally import MODES
from pytest_celerybase.recorder.overrides import CALLS, METHODS

__all__ = ["SECTION", "document", "render"]

#: The title of the terminal summary section.
SECTION = "celerybase lifecycle coverage"

# What an execution of the task does for the hook to be called.
_OUTCOME = {
    "before_start": "started",
    "on_success": "succeeded",
    "on_failure": "failed",
    "on_retry": "retried",
    "after_return": "returned or failed",
    "__call__": "reached it",
    "run": "reached it",
}
_SHOWN_TASKS = 3


def render(
    coverage: LifecycleCoverage, *, failing: bool, tests_failed: int, summary_only: bool = False
) -> list[str]:
    """The section's lines; ``failing``: the run fails for lifecycle coverage (an override
    never ran, or the counts are incomplete); ``summary_only``: the count line without
    the classes (only JSON was asked for)."""
    classes = coverage.classes
    total = sum(len(c.methods) for c in classes.values())
    never = coverage.never_ran()
    lines = [f"{problem} (the counts may be incomplete)" for problem in coverage.problems]
    if not classes:
        lines.append(
            "no task class with lifecycle overrides ran, and none is registered on the "
            "project app (the celerybase_app ini key)"
        )
    else:
        lines.append(
            f"{total} overrides in {len(classes)} task classes, {len(never)} never ran "
            "(count: executions that ran the override, by mode)"
        )
        if not summary_only:
            lines += _classes(classes)
    if failing:
        reasons = [f"{len(never)} of {total} overrides never ran"] if never else []
        reasons += ["the counts are incomplete"] if coverage.problems else []
        passed = "; every test passed" if tests_failed == 0 else ""
        lines += ["", f"FAILED (--celerybase-coverage-fail): {' and '.join(reasons)}{passed}"]
    return lines


def _classes(classes: dict[str, ClassCoverage]) -> list[str]:
    """A block per class (those with an override that never ran first), a line per
    override (the never-run ones first)."""
    lines: list[str] = []
    ordered = sorted(classes, key=lambda k: (not _gaps(classes[k]), k))
    width = max(len(m) for c in classes.values() for m in c.methods)
    digits = max(len(str(m.runs)) for c in classes.values() for m in c.methods.values())
    for key in ordered:
        lines += ["", _headline(key, classes[key])]
        methods = classes[key].methods
        for method in sorted(methods, key=lambda m: (methods[m].runs > 0, METHODS.index(m))):
            m = methods[method]
            detail = _never_ran(method, m, classes[key]) if m.runs == 0 else _ran(m)
            lines.append(f"  {method:<{width}}  {m.runs:>{digits}}  {detail}".rstrip())
    return lines


def _gaps(c: ClassCoverage) -> bool:
    return any(m.runs == 0 for m in c.methods.values())


def _names(tasks: set[str]) -> str:
    shown = sorted(tasks)[:_SHOWN_TASKS]
    more = len(tasks) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def _headline(key: str, c: ClassCoverage) -> str:
    tasks = f"(tasks: {_names(c.tasks)})" if c.tasks else ""
    if c.tasks and not c.ran:
        return f"{key}: none of its tasks ran {tasks}"
    missing = sum(1 for m in c.methods.values() if m.runs == 0)
    state = "every override ran"
    if missing:
        state = f"{missing} of {len(c.methods)} overrides never ran"
    return f"{key}: {state} {tasks}".rstrip()


def _modes(m: MethodCoverage) -> str:
    return ", ".join(f"{mode} {m.modes[mode]}" for mode in MODES if m.modes.get(mode))


def _stoppers(m: MethodCoverage) -> str:
    ranked = sorted(m.stopped_by.items(), key=lambda item: (-item[1], item[0]))
    return "; ".join(f"{name} does not call super() in {n}" for name, n in ranked)


def _ran(m: MethodCoverage) -> str:
    text = _modes(m)
    skipped = sum(m.stopped_by.values())
    if skipped:
        text += f" (skipped in {skipped} of {m.calls} calls: {_stoppers(m)})"
    return text


def _never_ran(method: str, m: MethodCoverage, c: ClassCoverage) -> str:
    if m.stopped_by:
        return f"never ran: called {m.calls} times, skipped each time: {_stoppers(m)}"
    reachable = m.tasks - m.shadowed
    if method in CALLS and m.tasks and not reachable:
        return (
            f"never ran: the tasks' own {method}() replaces it (only super().{method}() "
            f"reaches it): {_names(m.shadowed)}"
        )
    tasks = reachable or m.tasks
    if not tasks:
        return "never ran"
    if not tasks & c.ran:
        return f"never ran: no test ran {_names(tasks)}"
    return f"never ran: no execution of {_names(tasks)} {_OUTCOME[method]}"


def document(coverage: LifecycleCoverage) -> dict[str, Any]:
    """The JSON document: ``{"classes": {"module.Class": {"hook": count, ...}}, ...}``,
    one key per override (0 included), then the counts per mode, the tasks per class,
    and the never-run overrides."""
    keys = sorted(coverage.classes)

    def methods(key: str) -> list[str]:
        return [m for m in METHODS if m in coverage.classes[key].methods]

    return {
        "classes": {key: {m: coverage.classes[key].methods[m].runs for m in methods(key)}
                    for key in keys},
        "modes": {
            key: {
                m: {mode: coverage.classes[key].methods[m].modes.get(mode, 0) for mode in MODES}
                for m in methods(key)
            }
            for key in keys
        },
        "tasks": {key: {"known": sorted(coverage.classes[key].tasks),
                        "ran": sorted(coverage.classes[key].ran)} for key in keys},
        "never_ran": [f"{key}.{method}" for key, method in coverage.never_ran()],
        "incomplete": list(coverage.problems),
    }  # fmt: skip
