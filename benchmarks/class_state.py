"""The per-test cost of restoring users' task classes (``ClassState``), in microseconds.

    python benchmarks/class_state.py [--quick]     # or as part of benchmarks/run.py

What the plugin does around every test for users' classes: ``begin()`` as setup starts
and ``end()`` once teardown is over, here with 50 tasks registered over 10 user bases
(each base with a class-level cache dict and a lazy attribute, the guide's patterns), and
no change made by the test (the common case).  Measured in-process, interleaved blocks,
thread CPU clock, medians over rounds:

* ``managed``: the tasks' app is restored by ``eager_app``/``live_worker`` (an
  ``AppState`` exists): the 10 bases are checked, the app checks its own task classes.
* ``unmanaged``: an app no fixture restores (a module-level app whose tasks a test
  calls directly): the 50 generated task classes and task instances are checked too.
* ``recording``: for scale, what every test already pays to turn hook recording on and
  off (``recording()``), measured in the same run.

Printed: microseconds per test for each, and each as a ratio of ``recording``.
Target: ``managed`` <= 20 us per test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

__all__ = ["TARGETS", "bench_class_state"]

TARGETS = {"class_state_managed_us": 20.0}

TASKS = 50
BASES = 10


def _app_with_tasks(name: str) -> Any:
    from celery import Celery, Task

    app = Celery(name, set_as_current=False)
    bases = [
        type(f"Base{i}", (Task,), {"__module__": "bench_own_bases", "_cache": {}, "_db": None})
        for i in range(BASES)
    ]
    for i in range(TASKS):

        def run(self: Any, x: int) -> int:
            return x

        run.__module__ = "bench_own_tasks"
        app.task(run, base=bases[i % BASES], bind=True, name=f"{name}.t{i}", shared=False)
    app.finalize()
    return app


def bench_class_state(rounds: int, n: int) -> dict[str, Any]:
    """Median microseconds per test of begin()+end(), and ratios to recording()."""
    from pytest_celerybase import recording
    from pytest_celerybase.apps.class_state import MANAGED, ClassState

    clock = time.thread_time
    app = _app_with_tasks("bench_own")
    state = ClassState()

    def cycles(managed: bool) -> float:
        # Whether an AppState restores the app (eager_app/live_worker use it) decides
        # what ClassState follows; switching costs one discovery, outside the timing.
        if managed:
            MANAGED.add(app)
        else:
            MANAGED.discard(app)
        state.begin()
        state.end()
        start = clock()
        for _ in range(n):
            state.begin()
            state.end()
        return clock() - start

    def record() -> float:
        start = clock()
        for _ in range(n):
            with recording():
                pass
        return clock() - start

    cycles(True)
    followed_managed = len(state)
    cycles(False)
    followed_unmanaged = len(state)
    funcs = {"managed": lambda: cycles(True), "unmanaged": lambda: cycles(False),
             "recording": record}  # fmt: skip
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for index in range(rounds):
        order = list(funcs) if index % 2 == 0 else list(reversed(funcs))
        for name in order:
            samples[name].append(funcs[name]() / n * 1e6)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    MANAGED.discard(app)
    return {
        "class_state_managed_us": round(medians["managed"], 2),
        "class_state_unmanaged_us": round(medians["unmanaged"], 2),
        "recording_us": round(medians["recording"], 2),
        "class_state_managed_ratio_to_recording": round(
            medians["managed"] / medians["recording"], 3
        ),
        "class_state_unmanaged_ratio_to_recording": round(
            medians["unmanaged"] / medians["recording"], 3
        ),
        "followed_objects_managed": followed_managed,
        "followed_objects_unmanaged": followed_unmanaged,
        "tasks": TASKS,
        "bases": BASES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (~2 s)")
    args = parser.parse_args()
    rounds, n = (7, 500) if args.quick else (21, 2000)
    result = bench_class_state(rounds, n)
    print(json.dumps(result, indent=2))
    if result["class_state_managed_us"] > TARGETS["class_state_managed_us"]:
        raise SystemExit(
            f"class_state_managed_us {result['class_state_managed_us']} > "
            f"{TARGETS['class_state_managed_us']}"
        )


if __name__ == "__main__":
    main()
