"""The recorder's cost per eager ``apply()`` in instructions, here and at another revision.

    python benchmarks/recorder_instructions.py              # this checkout only
    python benchmarks/recorder_instructions.py HEAD~3       # and HEAD~3, side by side

Wall-clock timings on a shared machine swing by tens of percent; instruction counts do
not.  Each figure comes from two runs of a child process under ``valgrind
--tool=callgrind`` (``PYTHONHASHSEED=0``): one making ``CALLS`` eager ``apply()`` calls of
a task on a custom base after its warm-up, one making none; the difference divided by
``CALLS`` is what one call costs, with recording (``recording()`` active) and without.
Printed as JSON: per revision the instructions per call off and on and the overhead,
and the ratio of this checkout's overhead to the other revision's.  Needs valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS = 200
_CHILD = """
import sys
calls, recording_on = int(sys.argv[1]), sys.argv[2] == "on"
from celery import Task
from pytest_celerybase import recording
from pytest_celerybase.apps import isolated_app

class Base(Task):
    def before_start(self, task_id, args, kwargs): pass
    def on_success(self, retval, task_id, args, kwargs): pass
    def on_failure(self, exc, task_id, args, kwargs, einfo): pass
    def after_return(self, status, retval, task_id, args, kwargs, einfo): pass

with isolated_app() as app:
    @app.task(base=Base, name="bench.add")
    def add(x, y):
        return x + y

    for _ in range(50):
        add.apply((1, 2))
    with recording():
        for _ in range(50):  # the recording's one-time costs (instrumenting the task)
            add.apply((1, 2))
        if recording_on:
            for _ in range(calls):
                add.apply((1, 2))
    if not recording_on:
        for _ in range(calls):
            add.apply((1, 2))
"""


def instructions(tree: Path, calls: int, mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", _CHILD, str(calls), mode],
        env=env, capture_output=True, text=True, check=True, cwd=tree,
    )  # fmt: skip
    found = re.findall(r"Collected : (\d+)", done.stderr)
    if not found:
        raise SystemExit(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found[-1])


def per_call(tree: Path) -> dict[str, float]:
    result = {}
    for mode in ("off", "on"):
        base = instructions(tree, 0, mode)
        result[mode] = (instructions(tree, CALLS, mode) - base) / CALLS
    result["overhead"] = result["on"] - result["off"]
    result["overhead_ratio"] = result["on"] / result["off"]
    return {k: round(v, 4 if k == "overhead_ratio" else 0) for k, v in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="a git revision to compare with")
    args = parser.parse_args()
    report: dict[str, object] = {"calls": CALLS, "this checkout": per_call(ROOT)}
    if args.revision:
        with tempfile.TemporaryDirectory(prefix="celerybase-rev-") as tmp:
            old = Path(tmp) / "old"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                            args.revision], check=True, capture_output=True)  # fmt: skip
            try:
                report[args.revision] = other = per_call(old)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(old)], check=False, capture_output=True)  # fmt: skip
        mine = report["this checkout"]
        assert isinstance(mine, dict)
        report["overhead, this checkout / revision"] = round(
            mine["overhead"] / other["overhead"], 4
        )
        report["recording call, this checkout / revision"] = round(mine["on"] / other["on"], 4)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
