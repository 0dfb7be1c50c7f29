"""The cost of lifecycle coverage (``--celerybase-coverage``) for recording, as ratios.

    python benchmarks/lifecycle_coverage.py            # 9 rounds of 2,000 calls
    python benchmarks/lifecycle_coverage.py --quick

Measured in-process like ``bench_recorder`` of ``benchmarks/run.py`` (the recorder
benchmark): ``task.apply()`` of a task on a custom base, blocks of calls, coverage on and
off interleaved (alternating which goes first), timed with the thread's CPU clock.  Unlike
``bench_recorder`` each block times the whole recording: activation, the calls,
deactivation, and with coverage on what the plugin does at the end of a test (read the
recorder's log into a ``TestTally`` and add it to the session's ``LifecycleCoverage``):

* ``on``: ``recording(watch_overrides=True)`` plus that tally; ``off``: ``recording()``,
  which is all a test pays when the option is not given.
* ``recorder_benchmark``: 2,000 calls per recording (the recorder benchmark's shape; the
  target: ratio <= 1.01).  ``small_tests``: 3 calls per recording, so the per-test part
  (tally object, class lookup, merge) weighs as it does in a suite of small tests.
* bases: ``custom_base`` (the recorder benchmark's class overriding four hooks),
  ``logging_base`` (the project's ``LoggingTask``), and ``call_base`` (a base overriding
  ``__call__``, whose every run is noted while coverage is on: the only extra work during
  the calls themselves).

Printed: JSON with, per shape and base, the median of the per-round ratios on/off and the
per-call microseconds behind them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

TARGET = 1.01


def _bases() -> dict[str, type]:
    from celery import Task

    from pytest_celerybase.bases import LoggingTask

    class Base(Task):  # type: ignore[misc]
        def before_start(self, task_id: Any, args: Any, kwargs: Any) -> None:
            pass

        def on_success(self, retval: Any, task_id: Any, args: Any, kwargs: Any) -> None:
            pass

        def on_failure(self, exc: Any, task_id: Any, args: Any, kwargs: Any, einfo: Any) -> None:
            pass

        def after_return(
            self, status: Any, retval: Any, task_id: Any, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            pass

    class CallBase(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return super().__call__(*args, **kwargs)

    return {"custom_base": Base, "logging_base": LoggingTask, "call_base": CallBase}


def bench(rounds: int, calls: int, shapes: dict[str, int]) -> dict[str, Any]:
    from pytest_celerybase.apps import isolated_app

    results: dict[str, Any] = {}
    for label, base in _bases().items():
        with isolated_app() as app:

            @app.task(base=base, name=f"bench.coverage.{label}")
            def add(x: int, y: int) -> int:
                return x + y

            for _ in range(200):  # warm up: imports, caches, the backend
                add.apply((1, 2))
            for shape, per in shapes.items():
                results.setdefault(shape, {})[label] = _measure(add, per, calls, rounds)
    return results


def _measure(task: Any, per: int, calls: int, rounds: int) -> dict[str, float]:
    from pytest_celerybase import recording
    from pytest_celerybase.coverage import LifecycleCoverage, TestTally

    clock = time.thread_time
    coverage = LifecycleCoverage()
    blocks = max(1, calls // per)

    def off() -> float:
        start = clock()
        for _ in range(blocks):
            with recording():
                for _ in range(per):
                    task.apply((1, 2))
        return (clock() - start) / (per * blocks)

    def on() -> float:
        start = clock()
        for _ in range(blocks):
            with recording(watch_overrides=True) as recorder:
                for _ in range(per):
                    task.apply((1, 2))
                # what the plugin does when the test's teardown is over
                tally = TestTally()
                tally.read(recorder)
                classes = {str(t.name): c for t, c, _ in recorder.instrumented.values()}
                coverage.add_test(tally, classes)
        return (clock() - start) / (per * blocks)

    result = _interleaved(off, on, rounds)
    assert coverage.classes, "coverage counted nothing: the measurement would be void"
    return result


def _interleaved(
    off: Callable[[], float], on: Callable[[], float], rounds: int
) -> dict[str, float]:
    offs: list[float] = []
    ons: list[float] = []
    for i in range(rounds):
        if i % 2:
            a, b = off(), on()
        else:
            b, a = on(), off()
        offs.append(a)
        ons.append(b)
    return {
        "ratio": round(statistics.median(b / a for a, b in zip(offs, ons, strict=True)), 4),
        "off_us": round(statistics.median(offs) * 1e6, 2),
        "on_us": round(statistics.median(ons) * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds of 1,000 calls")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 9)
    calls = args.calls or (1000 if args.quick else 2000)
    shapes = {"recorder_benchmark": calls, "small_tests": 3}
    results = bench(rounds, calls, shapes)
    worst = max(results["recorder_benchmark"][b]["ratio"] for b in ("custom_base", "logging_base"))
    print(json.dumps({
        "rounds": rounds, "calls": calls, "results": results,
        "target": {"recorder_benchmark_ratio": TARGET, "measured": worst, "met": worst <= TARGET},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
