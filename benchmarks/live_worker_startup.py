"""Per-test cost of ``live_worker`` vs Celery's own ``celery_app`` + ``celery_worker``.

Writes three tiny test files (each test: one ``delay().get()`` through a real worker
started for that test: ``live_worker`` on the solo pool, ``live_worker`` on the prefork
pool with two children, Celery's fixtures), runs them in pytest subprocesses, interleaved
over a few rounds in the same run, and prints one JSON object: the median per-test cost
(setup + call + teardown, as pytest reports it) of each and the ratios (``ratio``: solo,
``prefork_ratio``: prefork, each over Celery's).  Run:

    python benchmarks/live_worker_startup.py [--rounds 3] [--live-tests 20] [--celery-tests 1]

Celery's tests take ~6 s each (its ``start_worker`` waits out the solo loop's 2 s drain
timeout twice when stopping, and ``get()`` polls every 0.5 s), so the default run takes
about 20-25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFTEST = """
import json, os

_TOTALS = {}


def pytest_runtest_logreport(report):
    _TOTALS[report.nodeid] = _TOTALS.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    with open(os.environ["CELERYBASE_BENCH_OUT"], "w") as f:
        json.dump(_TOTALS, f)
"""

TASKS = """
from celery import shared_task


@shared_task
def add(x, y):
    return x + y
"""

LIVE_TEST = """
from bench_tasks import add


def test_live_{i}(live_worker):
    assert add.delay(1, 2).get(timeout=10) == 3
"""

PREFORK_TEST = """
import pytest
from bench_tasks import add


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
def test_prefork_{i}(live_worker):
    assert add.delay(1, 2).get(timeout=10) == 3
"""

CELERY_HEAD = """
import pytest
from bench_tasks import add


@pytest.fixture(scope="session")
def celery_config():
    # The same in-memory broker and backend (and polling) live_worker uses.
    return {
        "broker_url": "memory://",
        "broker_transport_options": {"polling_interval": 0.005},
        "result_backend": "cache+memory://",
    }
"""

CELERY_TEST = """
def test_celery_{i}(celery_app, celery_worker):
    assert add.delay(1, 2).get(timeout=10) == 3
"""


def _write(directory: Path, live_tests: int, celery_tests: int) -> None:
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "bench_tasks.py").write_text(TASKS)
    (directory / "test_live.py").write_text(
        "\n".join(LIVE_TEST.format(i=i) for i in range(live_tests))
    )
    (directory / "test_prefork.py").write_text(
        "\n".join(PREFORK_TEST.format(i=i) for i in range(live_tests))
    )
    (directory / "test_celery.py").write_text(
        CELERY_HEAD + "\n".join(CELERY_TEST.format(i=i) for i in range(celery_tests))
    )


def _plugin_args() -> list[str]:
    return ["-p", "celerybase", "-p", "celery.contrib.pytest"]


def _run(directory: Path, test_file: str) -> list[float]:
    out = directory / "durations.json"
    env = dict(
        os.environ,
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        CELERYBASE_BENCH_OUT=str(out),
        # this checkout's package, not whichever copy is installed
        PYTHONPATH=os.pathsep.join([str(directory), str(Path(__file__).resolve().parents[1])]),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *_plugin_args(),
         test_file],
        cwd=directory, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{test_file} failed:\n{proc.stdout}\n{proc.stderr}")
    return list(json.loads(out.read_text()).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--live-tests", type=int, default=20, help="live_worker tests per round")
    parser.add_argument("--celery-tests", type=int, default=1, help="celery_worker tests per round")
    args = parser.parse_args()

    import celery

    live: list[float] = []
    prefork: list[float] = []
    native: list[float] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="celerybase-bench-") as tmp:
        directory = Path(tmp)
        _write(directory, args.live_tests, args.celery_tests)
        for _ in range(args.rounds):  # interleaved: both see the same machine load
            live += _run(directory, "test_live.py")
            prefork += _run(directory, "test_prefork.py")
            native += _run(directory, "test_celery.py")
    live_median = statistics.median(live)
    native_median = statistics.median(native)
    print(
        json.dumps(
            {
                "benchmark": "per-test cost: setup + call + teardown, one delay().get()",
                "celery": celery.__version__,
                "rounds": args.rounds,
                "live_worker_tests": len(live),
                "celery_worker_tests": len(native),
                "live_worker_median_s": round(live_median, 4),
                "celery_app_celery_worker_median_s": round(native_median, 4),
                "ratio": round(live_median / native_median, 4),
                "prefork_live_worker_median_s": round(statistics.median(prefork), 4),
                "prefork_ratio": round(statistics.median(prefork) / native_median, 4),
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
