"""The cost of lifecycle coverage (``--celerybase-coverage``) for recording, as ratios.

    python benchmarks/lifecycle_coverage.py            # 21 rounds of 2,000 calls
    python benchmarks/lifecycle_coverage.py --quick

Measured in-process like ``bench_recorder`` of ``benchmarks/run.py`` (the recorder
benchmark): ``task.apply()`` of a task on a custom base, blocks of calls, coverage on and
off interleaved (alternating which goes first), timed with the thread's CPU clock, each
block after a garbage collection and without one (when the collector runs is the largest
noise between two blocks).  Unlike ``bench_recorder`` each block times the whole
recording: activation, the calls, deactivation, and with coverage on what the plugin does
at the end of a test (read the recorder's log into a ``TestTally`` and add it to the
session's ``LifecycleCoverage``):

* ``on``: ``recording(watch_overrides=True)`` plus that tally; ``off``: ``recording()``,
  which is all a test pays when the option is not given.
* ``recorder_benchmark``: 2,000 calls per recording (the recorder benchmark's shape; the
  target: at most 1 % slower).  ``small_tests``: 3 calls per recording, so the per-test
  part (tally object, class lookup, merge) weighs as it does in a suite of small tests.
* bases: ``custom_base`` (the recorder benchmark's class overriding four hooks),
  ``logging_base`` (the project's ``LoggingTask``), and ``call_base`` (a base overriding
  ``__call__``, whose every run is noted while coverage is on: the only extra work during
  the calls themselves).
* ``pytest_per_test``: whole pytest runs (subprocesses, as in ``benchmarks/run.py``'s
  ``eager_app_per_test``): the marginal CPU time of a test using ``eager_app`` and making
  one eager call, ``(time of 600 tests - time of 100) / 500``, with and without
  ``--celerybase-coverage``, interleaved; what a user's suite pays per test, the plugin's
  hooks for the option included.  ``--no-pytest`` skips it.

Printed: JSON with, per shape and base, ``ratio``: the median of the per-round ratios
on/off; ``min_ratio``: the fastest "on" block over the fastest "off" block (the machine's
noise only ever adds time, so the fastest blocks are the least disturbed); the per-call
microseconds behind them; and ``tally_us``: the part of an "on" call spent reading and
adding up the records (timed inside the same blocks), with ``tally_share``, that time over
an "off" call.  On a busy machine the ratio of two whole blocks moves by several percent
from run to run; the tally's share is the steadier figure of what coverage adds.  For the
recorder benchmark's bases the calls themselves run the same code with coverage on (no
base ``__call__``/``run`` to note, the same hook wrappers): the target is judged on
``1 + tally_share``, the whole-block ratios printed beside it.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from run import custom_base

TARGET = 1.01


def _bases() -> dict[str, type]:
    from celery import Task

    from pytest_celerybase.bases import LoggingTask

    class CallBase(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return super().__call__(*args, **kwargs)

    # The same custom base as the recorder benchmark's, so the figures compare.
    return {"custom_base": custom_base(), "logging_base": LoggingTask, "call_base": CallBase}


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

    counting: list[float] = []  # per call: the tally's share of each "on" block

    def on() -> float:
        start = clock()
        spent = 0.0
        for _ in range(blocks):
            with recording(watch_overrides=True) as recorder:
                for _ in range(per):
                    task.apply((1, 2))
                # what the plugin does when the test's teardown is over
                begin = clock()
                tally = TestTally()
                tally.read(recorder)
                classes = {str(t.name): c for t, c, _ in recorder.instrumented.values()}
                coverage.add_test(tally, classes)
                spent += clock() - begin
        counting.append(spent / (per * blocks))
        return (clock() - start) / (per * blocks)

    result = _interleaved(off, on, rounds)
    assert coverage.classes, "coverage counted nothing: the measurement would be void"
    # The tally alone, timed inside the same blocks: a figure the machine's noise hardly
    # moves (the ratio of two whole blocks moves by a percent or more on a busy machine).
    result["tally_us"] = round(statistics.median(counting) * 1e6, 3)
    result["tally_share"] = round(statistics.median(counting) / (result["off_us"] / 1e6), 4)
    return result


def _interleaved(
    off: Callable[[], float], on: Callable[[], float], rounds: int
) -> dict[str, float]:
    offs: list[float] = []
    ons: list[float] = []

    def quiet(block: Callable[[], float]) -> float:
        # The garbage collector runs when allocations say so, in one block or the other:
        # each block starts from a collection and runs without one.
        gc.collect()
        gc.disable()
        try:
            return block()
        finally:
            gc.enable()

    for i in range(rounds):
        if i % 2:
            a, b = quiet(off), quiet(on)
        else:
            b, a = quiet(on), quiet(off)
        offs.append(a)
        ons.append(b)
    return {
        "ratio": round(statistics.median(b / a for a, b in zip(offs, ons, strict=True)), 4),
        "min_ratio": round(min(ons) / min(offs), 4),
        "off_us": round(statistics.median(offs) * 1e6, 2),
        "on_us": round(statistics.median(ons) * 1e6, 2),
    }


def bench_pytest(rounds: int, small: int = 100, large: int = 600) -> dict[str, Any]:
    """Marginal CPU time per test of an eager suite, with the option and without."""
    import tempfile
    from pathlib import Path

    from run import _check, _env, _passed, _run, _write_suite

    with tempfile.TemporaryDirectory(prefix="celerybase-coverage-") as tmp:
        dirs = {n: _write_suite(Path(tmp) / f"suite_{n}", "eager", n) for n in (small, large)}
        out = Path(tmp) / "loop.json"
        env = _env({"CELERYBASE_BENCH_OUT": str(out)})
        common = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "celerybase"]
        variants = {"off": common, "on": [*common, "--celerybase-coverage"]}
        per_test: dict[str, list[float]] = {k: [] for k in variants}
        for i in range(rounds):
            for name in list(variants) if i % 2 == 0 else list(reversed(variants)):
                loops = {}
                for n in (small, large):
                    res = _run(variants[name], dirs[n], env)
                    _check(res, f"lifecycle coverage {name} x {n}")
                    assert _passed(res["output"]) == n, res["output"][-500:]
                    loops[n] = json.loads(out.read_text())["loop_cpu_s"]
                per_test[name].append((loops[large] - loops[small]) / (large - small))
    on, off = per_test["on"], per_test["off"]
    return {
        "ratio": round(statistics.median(b / a for a, b in zip(off, on, strict=True)), 4),
        "off_us": round(statistics.median(off) * 1e6, 1),
        "on_us": round(statistics.median(on) * 1e6, 1),
        "added_us": round(statistics.median(b - a for a, b in zip(off, on, strict=True)) * 1e6, 1),
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds of 1,000 calls")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--no-pytest", action="store_true", help="skip the pytest runs")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 21)
    calls = args.calls or (1000 if args.quick else 2000)
    shapes = {"recorder_benchmark": calls, "small_tests": 3}
    results = bench(rounds, calls, shapes)
    if not args.no_pytest:
        results["pytest_per_test"] = bench_pytest(2 if args.quick else 4)
    # The recorder benchmark's bases: coverage adds nothing to their calls (no base
    # __call__/run to note, the same hook wrappers), only the end-of-test tally.
    bench_bases = [results["recorder_benchmark"][b] for b in ("custom_base", "logging_base")]
    worst = max(1 + r["tally_share"] for r in bench_bases)
    print(json.dumps({
        "rounds": rounds, "calls": calls, "results": results,
        "target": {
            "recorder_benchmark_ratio": TARGET,
            "measured": round(worst, 4),
            "measured_as": "1 + tally_share (whole-block ratios: see ratio, min_ratio)",
            "met": worst <= TARGET,
        },
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
