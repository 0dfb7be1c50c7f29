"""Render (and read back) the eager/worker/prefork parity table as Markdown.

    python scripts/parity_table.py      # print the table between its marker comments

The rows come from ``pytest_celerybase.recorder.parity.PARITY`` (measured by
tests/worker/test_parity.py); this module only formats them, for the README and the manual.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pytest_celerybase.recorder.parity import PARITY, Outcome, Scenario

__all__ = ["TABLE_END", "TABLE_START", "parse_table", "render_lifecycle_table", "render_table"]

#: Marker comments around the table in a Markdown document.
TABLE_START = "<!-- parity-table:start -->"
TABLE_END = "<!-- parity-table:end -->"

_HEADER = (
    "| Scenario | Eager hooks | Eager outcome | Worker hooks | Worker outcome "
    "| Prefork hooks and outcome | Note |",
    "|---|---|---|---|---|---|---|",
)
_SAME = "same as the worker"


def render_table(scenarios: Sequence[Scenario] = PARITY) -> str:
    """The Markdown table of ``scenarios`` (without the marker comments)."""
    rows = [
        f"| {s.title} | {s.eager.render_hooks()} | {s.eager.render_outcome()} "
        f"| {s.worker.render_hooks()} | {s.worker.render_outcome()} "
        f"| {_prefork(s, lambda o: f'{o.render_hooks()}; {o.render_outcome()}')} "
        f"| {s.note} |"
        for s in scenarios
    ]
    return "\n".join([*_HEADER, *rows])


def render_lifecycle_table(scenarios: Sequence[Scenario] = PARITY) -> str:
    """The Markdown table of each scenario's hooks and signals, eager, worker and prefork."""
    rows = [
        f"| {s.title} | {s.eager.render_lifecycle()} | {s.worker.render_lifecycle()} "
        f"| {_prefork(s, Outcome.render_lifecycle)} |"
        for s in scenarios
    ]
    header = (
        "| Scenario | Eager: hooks and signals | Worker: hooks and signals "
        "| Prefork: hooks and signals |",
        "|---|---|---|---|",
    )
    return "\n".join([*header, *rows])


def _prefork(scenario: Scenario, cell: Callable[[Outcome], str]) -> str:
    return _SAME if scenario.prefork is None else cell(scenario.prefork)


def parse_table(markdown: str) -> dict[str, tuple[str, ...]]:
    """Rows of the table between the markers in ``markdown``: title -> measured cells.

    The cells are eager hooks, eager outcome, worker hooks, worker outcome and the
    prefork cell (the note column is prose and not returned).  Raises ``ValueError`` if
    the markers are missing.
    """
    match = re.search(
        re.escape(TABLE_START) + r"(.*?)" + re.escape(TABLE_END), markdown, re.DOTALL
    )
    if match is None:
        raise ValueError(f"no table between {TABLE_START!r} and {TABLE_END!r}")
    rows: dict[str, tuple[str, ...]] = {}
    for line in match.group(1).strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or cells[0] == "Scenario" or set(cells[0]) <= set("-: "):
            continue
        rows[cells[0]] = tuple(cells[1:6])
    return rows


if __name__ == "__main__":
    print(TABLE_START)
    print(render_table())
    print(TABLE_END)
    print()
    print(render_lifecycle_table())
