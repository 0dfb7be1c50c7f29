"""The cost of holding task messages and running them (``sent_tasks``), as ratios.

    python benchmarks/sent_tasks.py [--quick]     # or as part of benchmarks/run.py

Measured in-process, interleaved blocks (alternating which side goes first), timed with
the thread's CPU clock, both sides inside ``recording()`` as every test runs:

* ``held_delay``: ``add.delay(i, i)`` on an ``eager_app``-configured app inside
  ``capture_sent_tasks()`` (the message is built, serialized and held) vs the same call on
  an app that is not eager, publishing to the in-memory broker (``memory://``; the queue
  is purged between blocks, outside the timing).  Target: <= 1.0.
* ``run``: ``sent_tasks.run()`` of N held messages vs N eager ``add.apply((i, i))``.
  Target: <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

__all__ = ["TARGETS", "bench_sent_tasks"]

TARGETS = {"sent_tasks_held_delay_ratio": 1.0, "sent_tasks_run_ratio": 1.3}


def bench_sent_tasks(rounds: int, n: int) -> dict[str, Any]:
    """Median ratios (and per-message microseconds) of held vs real sends and runs."""
    from pytest_celerybase import capture_sent_tasks, recording
    from pytest_celerybase.apps import isolated_app

    clock = time.thread_time
    with isolated_app(None, {"task_always_eager": False}) as real_app:

        @real_app.task(name="bench.sent.add", shared=False)
        def real_add(x: int, y: int) -> int:
            return x + y

        with isolated_app() as eager_app:

            @eager_app.task(name="bench.sent.add", shared=False)
            def add(x: int, y: int) -> int:
                return x + y

            def real_delay() -> float:
                start = clock()
                for i in range(n):
                    real_add.delay(i, i)
                elapsed = clock() - start
                with real_app.connection_for_write() as conn:
                    conn.default_channel.queue_purge("celery")
                return elapsed

            def held_delay() -> float:
                with capture_sent_tasks():
                    start = clock()
                    for i in range(n):
                        add.delay(i, i)
                    return clock() - start

            def eager_apply() -> float:
                start = clock()
                for i in range(n):
                    add.apply((i, i))
                return clock() - start

            def held_run() -> float:
                with capture_sent_tasks() as sent:
                    for i in range(n):
                        add.delay(i, i)
                    start = clock()
                    results = sent.run(max_tasks=n)
                    elapsed = clock() - start
                assert [r.result for r in results] == [2 * i for i in range(n)]
                return elapsed

            pairs = {"held_delay": (real_delay, held_delay), "run": (eager_apply, held_run)}
            samples: dict[str, dict[str, list[float]]] = {
                name: {"base": [], "held": [], "ratio": []} for name in pairs
            }
            with recording():
                for base, held in pairs.values():  # warm up: imports, caches, tracers
                    base(), held()
                for i in range(rounds):
                    for name, (base, held) in pairs.items():
                        if i % 2:
                            b, h = base(), held()
                        else:
                            h, b = held(), base()
                        samples[name]["base"].append(b)
                        samples[name]["held"].append(h)
                        samples[name]["ratio"].append(h / b)
    return {
        name: {
            "ratio": statistics.median(s["ratio"]),
            "base_us": statistics.median(s["base"]) / n * 1e6,
            "held_us": statistics.median(s["held"]) / n * 1e6,
        }
        for name, s in samples.items()
    } | {"rounds": rounds, "messages": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    quick = parser.parse_args().quick
    result = bench_sent_tasks(9 if quick else 31, 200)
    figures = {
        "sent_tasks_held_delay_ratio": round(result["held_delay"]["ratio"], 3),
        "sent_tasks_run_ratio": round(result["run"]["ratio"], 3),
    }
    targets = {k: {"target": f"<= {v}", "met": figures[k] <= v} for k, v in TARGETS.items()}
    print(json.dumps({**figures, "targets": targets, "absolute": result}, indent=2))


if __name__ == "__main__":
    main()
