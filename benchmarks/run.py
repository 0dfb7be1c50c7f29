"""Measure pytest-celerybase's costs as ratios, side by side in one run, and print JSON.

    python benchmarks/run.py            # full run (~3 min plus the live_worker part)
    python benchmarks/run.py --quick    # fewer rounds (~1.5 min)
    python benchmarks/run.py --no-live-worker   # skip the live_worker vs celery_worker part

Every figure is a ratio of two things measured interleaved in the same run (this is for
noisy shared machines: both sides see the same load), as the median over rounds.  The
absolute values behind each ratio are under ``"absolute"``; the ``"targets"`` block gives
each target with its measured value and whether it is met (also printed on stderr).
pytest runs are subprocesses with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` (no other installed
plugin adds noise) and ``-p celerybase`` (or nothing).  What is measured:

* ``recorder_overhead``: ``task.apply()`` of a task on a custom base (a ``Task`` subclass
  overriding ``before_start``/``on_success``/``on_failure``/``after_return``) inside
  ``pytest_celerybase.recording()`` vs the same call with nothing active.  In-process:
  blocks of calls, on and off alternating, timed with the thread's CPU clock (preemption
  by other processes is not counted); the ratio is the median of the per-round ratios.
  The first call of each "on" block (which instruments the task for that recorder, as the
  first call of a test does) is inside the timing.  ``..._logging_base`` is the same with
  the project's own ``LoggingTask`` base (hooks that do real work).
* ``eager_app_per_test``: the marginal cost of a test, (time of 600 tests - time of 100)
  / 500, so start-up, collection and one-time costs (Celery's import, building the app)
  cancel out.  Tests using ``eager_app`` and making one eager call (``add.delay(1,
  2).get()``) with ``-p celerybase`` vs trivial tests with no fixture and no plugin.  The
  time is the test loop's (``pytest_runtestloop``: every test's setup + call + teardown +
  pytest's per-test work) CPU time, so preemption by other processes is not counted;
  ``..._wall_ratio`` is the same with wall time.  For reference, in the same rounds: the
  same eager call with no plugin on an app built once at import
  (``eager_call_without_plugin``: Celery's own cost, the lower bound of any fixture), the
  same handed out by a bare yield fixture with a config fixture
  (``eager_call_from_a_bare_fixture``: eager_app's shape, nothing else), trivial tests with
  the plugin loaded (the recorder's cost for a test that uses nothing) and Celery's own
  ``celery_app`` fixture (a new app per test).
* ``sent_tasks_held_delay`` and ``sent_tasks_run``: run by ``benchmarks/sent_tasks.py``
  (imported; see its docstring): a ``delay()`` held by ``sent_tasks`` vs a real
  ``delay()`` publishing to the in-memory broker, and ``sent_tasks.run()`` of N held
  messages vs N eager ``apply()`` calls; interleaved in-process blocks, thread CPU time.
* ``class_state_managed_us`` / ``_unmanaged_us``: run by ``benchmarks/class_state.py``
  (imported; see its docstring): microseconds per test of restoring users' task classes
  with 50 tasks over 10 bases, on an app ``eager_app`` manages and on one no fixture does.
* ``live_worker_vs_celery_worker``: run by ``benchmarks/live_worker_startup.py`` (its own
  script, invoked as a subprocess; see its docstring): median per-test cost of one
  ``delay().get()`` through ``live_worker`` vs Celery's ``celery_app`` + ``celery_worker``.
* ``startup``: ``pytest --collect-only`` on a small directory (3 files, 30 tests) with
  ``-p celerybase``, with ``-p celery.contrib.pytest`` and with neither, many interleaved
  triples; the added cost of each is the median paired difference from the bare run, in
  CPU time of the child (the target: no more than celery.contrib.pytest's in the same run)
  and in wall time.
* ``scale``: 200 and 2,000 eager tests with the plugin; peak RSS of each run (from the
  child's own rusage, ``os.wait4``), next to the same numbers of trivial tests without the
  plugin and of the same eager tests on Celery's own ``celery_app`` fixture (which also
  builds an app per test); the number of ``HookCall``/``HookRecorder`` objects still alive
  after the last test (the recorder's memory: must be 0); and the 2,000 tests again under
  ``pytest -n 2`` (xdist) with the pass counts compared.
* ``user_suite``: a generated 2,000-test suite as a user would have: tasks on a custom
  base, a third of the tests running a task that fails after two retries; the same test
  bodies on ``eager_app`` and on Celery's ``celery_app`` fixture (``-p
  celery.contrib.pytest``).  Whole runs, interleaved: wall-time ratio and peak RSS of each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from class_state import TARGETS as CLASS_STATE_TARGETS
from class_state import bench_class_state
from sent_tasks import TARGETS as SENT_TASKS_TARGETS
from sent_tasks import bench_sent_tasks

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Fixed limits (a figure <= its limit).  Two more targets are relative to what is measured
# in the same run (see _targets): start-up no more than celery.contrib.pytest's own, and
# the scale checks.
TARGETS = {
    **SENT_TASKS_TARGETS,
    **CLASS_STATE_TARGETS,
    "recorder_overhead_ratio": 1.05,
    "eager_app_per_test_ratio": 2.0,
    "live_worker_vs_celery_worker_ratio": 0.05,
    "prefork_live_worker_vs_celery_worker_ratio": 0.05,
}

# -- generated test directories ------------------------------------------------------------

# A conftest used by the per-test and scale runs (the same in both sides of a ratio):
# times the test loop and, after it, counts recorder objects still alive.
TIMING_CONFTEST = """
import gc, json, os, sys, time
import pytest

_T = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        return (yield)
    finally:
        _T["loop_s"] = time.perf_counter() - start
        _T["loop_cpu_s"] = time.process_time() - start_cpu


def pytest_sessionfinish(session):
    out = os.environ.get("CELERYBASE_BENCH_OUT")
    if not out or hasattr(session.config, "workerinput"):
        return
    live = None
    if "pytest_celerybase.recorder" in sys.modules:
        gc.collect()
        names = ("HookCall", "HookRecorder")
        live = {n: 0 for n in names}
        for obj in gc.get_objects():
            name = type(obj).__name__
            if name in live and type(obj).__module__ == "pytest_celerybase.recorder":
                live[name] += 1
    with open(out, "w") as f:
        json.dump({"loop_s": _T.get("loop_s"), "loop_cpu_s": _T.get("loop_cpu_s"), "live": live}, f)
"""

# One module of tasks imported by every test file (as in a real project): each Celery app
# registers every shared task, so a task per file would make bigger suites costlier per
# test for a reason unrelated to the plugin.
TASKS_MODULE = '''
from celery import Task, shared_task


class Base(Task):
    """A custom base overriding the hooks (they do nothing: the recorder's worst case)."""

    def before_start(self, task_id, args, kwargs):
        pass

    def on_success(self, retval, task_id, args, kwargs):
        pass

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        pass

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        pass


@shared_task(base=Base, name="bench.add")
def add(x, y):
    return x + y
'''

EAGER_HEAD = """
from bench_tasks import add
"""

EAGER_TEST = """

def test_eager_{i}(eager_app):
    assert add.delay(1, 2).get() == 3
"""

# The same tests on Celery's own fixtures (celery.contrib.pytest), for reference: its
# celery_app also builds a fresh app per test.
CELERY_APP_CONFIG = """

import pytest


@pytest.fixture(scope="session")
def celery_config():
    return {
        "broker_url": "memory://localhost/",
        "result_backend": "cache+memory://",
        "task_always_eager": True,
        "task_store_eager_result": True,
    }
"""

CELERY_APP_TEST = """

def test_celery_app_{i}(celery_app):
    assert celery_app.tasks[add.name].delay(1, 2).get() == 3
"""

TRIVIAL_TEST = """

def test_trivial_{i}():
    assert 1 + 2 == 3
"""

# The eager test's body with no plugin and no fixture: an eager app built once at import,
# current for every test.  What any fixture handing out an app costs at the very least
# (Celery's own eager call and pytest's per-test work): the measured lower bound.
FLOOR_HEAD = """
from celery import Celery

from bench_tasks import add

app = Celery("floor", set_as_current=False)
app.conf.update(
    broker_url="memory://localhost/",
    result_backend="cache+memory://",
    task_always_eager=True,
    task_store_eager_result=True,
)
app.set_current()
app.set_default()
"""

FLOOR_TEST = """

def test_floor_{i}():
    assert add.delay(1, 2).get() == 3
"""

# The same, with the app handed out by a yield fixture that depends on an overridable
# config fixture (eager_app's shape, doing nothing else): adds pytest's own fixture work.
FLOOR_FIXTURE_HEAD = (
    FLOOR_HEAD
    + """
import pytest


@pytest.fixture
def app_config():
    return {}


@pytest.fixture
def floor_app(app_config):
    yield app
"""
)

FLOOR_FIXTURE_TEST = """

def test_floor_fixture_{i}(floor_app):
    assert add.delay(1, 2).get() == 3
"""

# The user-level suite: a project's tasks on a custom base, two thirds succeeding and a
# third failing after two retries (eager retries run at once), the same test bodies on
# eager_app and on Celery's celery_app fixture.
USER_TASKS_MODULE = '''
from celery import Task, shared_task


class Audited(Task):
    """A custom base overriding every hook (they do nothing)."""

    def before_start(self, task_id, args, kwargs):
        pass

    def on_success(self, retval, task_id, args, kwargs):
        pass

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        pass

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        pass

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        pass


@shared_task(base=Audited, name="user.add")
def add(x, y):
    return x + y


@shared_task(base=Audited, bind=True, max_retries=2, name="user.flaky")
def flaky(self, x):
    raise self.retry(exc=ValueError(x), countdown=0)
'''

USER_TEST = """

def test_user_{i}({fixture}):
    if {i} % 3 == 0:
        result = {tasks}["user.flaky"].delay({i})
        assert result.failed() and isinstance(result.result, ValueError)
    else:
        assert {tasks}["user.add"].delay({i}, 1).get() == {i} + 1
"""


def _write_suite(directory: Path, kind: str, n: int, *, per_file: int = 200) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "conftest.py").write_text(TIMING_CONFTEST)
    # An empty ini pins the rootdir here (no addopts from an enclosing project).
    (directory / "pytest.ini").write_text("[pytest]\n")
    user = kind.startswith("user_")
    (directory / "bench_tasks.py").write_text(USER_TASKS_MODULE if user else TASKS_MODULE)
    for f, start in enumerate(range(0, n, per_file)):
        stop = min(n, start + per_file)
        if kind == "eager":
            body = EAGER_HEAD + "".join(EAGER_TEST.format(i=i) for i in range(start, stop))
        elif kind == "floor":
            body = FLOOR_HEAD + "".join(FLOOR_TEST.format(i=i) for i in range(start, stop))
        elif kind == "floor_fixture":
            body = FLOOR_FIXTURE_HEAD + "".join(
                FLOOR_FIXTURE_TEST.format(i=i) for i in range(start, stop)
            )
        elif user:
            fixture, tasks = (
                ("eager_app", "eager_app.tasks")
                if kind == "user_eager_app"
                else ("celery_app", "celery_app.tasks")
            )
            head = "import bench_tasks  # noqa: F401\n"
            if kind == "user_celery_app":
                head += CELERY_APP_CONFIG
            body = head + "".join(
                USER_TEST.format(i=i, fixture=fixture, tasks=tasks) for i in range(start, stop)
            )
        elif kind == "celery_app":
            head = EAGER_HEAD + CELERY_APP_CONFIG
            body = head + "".join(CELERY_APP_TEST.format(i=i) for i in range(start, stop))
        else:
            body = "".join(TRIVIAL_TEST.format(i=i) for i in range(start, stop))
        (directory / f"test_{kind}_{f:03d}.py").write_text(body)
    return directory


def _write_startup_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    for f in range(3):
        (directory / f"test_small_{f}.py").write_text(
            "".join(TRIVIAL_TEST.format(i=i) for i in range(10))
        )
    return directory


# -- subprocess runner -----------------------------------------------------------------------


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m pytest *args``; wall and CPU time, peak RSS (of this child), output."""
    cmd = [sys.executable, "-m", "pytest", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "rc": proc.returncode,
        "output": output,
    }


def _passed(output: str) -> int:
    import re

    m = re.search(r"(\d+) passed", output)
    return int(m.group(1)) if m else 0


def _check(result: dict[str, Any], what: str) -> None:
    if result["rc"] != 0:
        tail = "\n".join(result["output"].splitlines()[-40:])
        raise SystemExit(f"benchmark run failed ({what}, exit {result['rc']}):\n{tail}")


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


# -- 1. recorder overhead (in-process) ------------------------------------------------------


def custom_base() -> type:
    """The recorder benchmark's base class: the four hooks overridden, doing nothing."""
    from celery import Task

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

    return Base


def bench_recorder(rounds: int, calls: int) -> dict[str, Any]:
    from pytest_celerybase import recording
    from pytest_celerybase.apps import isolated_app
    from pytest_celerybase.bases import LoggingTask

    Base = custom_base()
    clock = time.thread_time
    results: dict[str, Any] = {}
    for label, base in (("custom_base", Base), ("logging_base", LoggingTask)):
        with isolated_app() as app:

            @app.task(base=base, name=f"bench.{label}")
            def add(x: int, y: int) -> int:
                return x + y

            for _ in range(200):  # warm up: imports, caches, the backend
                add.apply((1, 2))

            def block() -> float:
                start = clock()
                for _ in range(calls):
                    add.apply((1, 2))
                return (clock() - start) / calls

            def block_recording() -> float:
                with recording():
                    return block()

            off: list[float] = []
            on: list[float] = []
            ratios: list[float] = []
            for i in range(rounds):
                if i % 2:
                    a = block()
                    b = block_recording()
                else:
                    b = block_recording()
                    a = block()
                off.append(a)
                on.append(b)
                ratios.append(b / a)
            results[label] = {
                "ratio": _median(ratios),
                "off_us": _median(off) * 1e6,
                "on_us": _median(on) * 1e6,
                "added_us": _median([b - a for a, b in zip(off, on, strict=True)]) * 1e6,
            }
    return results


# -- 2. eager_app per-test cost ------------------------------------------------------------


def bench_eager_app(tmp: Path, rounds: int, small: int, large: int) -> dict[str, Any]:
    """Marginal per-test cost: (time of ``large`` tests - time of ``small``) / difference.

    Start-up, collection and one-time costs (Celery's import on the first test, building
    the app) cancel out; what is left is what each further test costs.  Times are of the
    test loop, as CPU time of the pytest process (preemption by other processes on a
    shared machine is not counted) and as wall time.
    """
    common = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    plugin = [*common, "-p", "celerybase"]
    variants: dict[str, tuple[str, list[str]]] = {
        "eager": ("eager", plugin),
        "trivial": ("trivial", common),
        "trivial_with_plugin": ("trivial", plugin),
        "floor": ("floor", common),
        "floor_fixture": ("floor_fixture", common),
        "celery_contrib_pytest_celery_app": (
            "celery_app",
            [*common, "-p", "celery.contrib.pytest"],
        ),
    }
    dirs = {
        (kind, n): _write_suite(tmp / f"per_test_{kind}_{n}", kind, n)
        for kind in {kind for kind, _ in variants.values()}
        for n in (small, large)
    }
    out = tmp / "per_test.json"
    env = _env({"CELERYBASE_BENCH_OUT": str(out)})
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for i in range(rounds):
        for name in order if i % 2 == 0 else reversed(order):
            kind, args = variants[name]
            loops = {}
            for n in (small, large):
                res = _run(args, dirs[(kind, n)], env)
                _check(res, f"eager_app per-test: {name} x {n}")
                assert _passed(res["output"]) == n, res["output"][-500:]
                loops[n] = json.loads(out.read_text())
            extra = large - small
            cpu[name].append((loops[large]["loop_cpu_s"] - loops[small]["loop_cpu_s"]) / extra)
            wall[name].append((loops[large]["loop_s"] - loops[small]["loop_s"]) / extra)

    def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
        return _median([x / y for x, y in zip(times[a], times[b], strict=True)])

    return {
        "ratio": ratio(cpu, "eager", "trivial"),
        "wall_ratio": ratio(wall, "eager", "trivial"),
        "floor_ratio": ratio(cpu, "floor", "trivial"),
        "floor_fixture_ratio": ratio(cpu, "floor_fixture", "trivial"),
        "trivial_with_plugin_ratio": ratio(cpu, "trivial_with_plugin", "trivial"),
        "celery_app_ratio": ratio(cpu, "celery_contrib_pytest_celery_app", "trivial"),
        "eager_vs_celery_app_ratio": ratio(cpu, "eager", "celery_contrib_pytest_celery_app"),
        "plugin_share_ms": _median(
            [(e - f) * 1e3 for e, f in zip(cpu["eager"], cpu["floor_fixture"], strict=True)]
        ),
        "tests": [small, large],
        "rounds": rounds,
        "per_test_cpu_ms": {k: _median(v) * 1e3 for k, v in cpu.items()},
        "per_test_wall_ms": {k: _median(v) * 1e3 for k, v in wall.items()},
    }


# -- 3. live_worker vs celery_worker (the live-worker engineer's script) ------------------


def bench_live_worker(quick: bool) -> dict[str, Any]:
    script = HERE / "live_worker_startup.py"
    if not script.exists():
        return {"ratio": None, "note": "benchmarks/live_worker_startup.py does not exist yet"}
    args = ["--rounds", "1" if quick else "3"]
    if quick:
        args += ["--live-tests", "10"]
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout + proc.stderr)[-1500:]
        return {"ratio": None, "note": f"live_worker_startup.py failed: {tail}"}
    data: dict[str, Any] = json.loads(lines[-1])
    return {"ratio": data.get("ratio"), "prefork_ratio": data.get("prefork_ratio"), "raw": data}


# -- 4. start-up -----------------------------------------------------------------------------


def bench_startup(tmp: Path, pairs: int) -> dict[str, Any]:
    """``pytest --collect-only`` with each plugin vs without, interleaved.

    The added cost is the median paired difference, of the child's CPU time (user +
    system: what loading the plugin costs, without the preemption noise of a shared
    machine) and of wall time.
    """
    directory = _write_startup_dir(tmp / "startup")
    env = _env()
    base = ["--collect-only", "-q", "-p", "no:cacheprovider"]
    variants = {
        "bare": base,
        "celerybase": [*base, "-p", "celerybase"],
        "celery_contrib_pytest": [*base, "-p", "celery.contrib.pytest"],
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for name, args in variants.items():  # warm the OS file cache and .pyc files
        _check(_run(args, directory, env), f"start-up warm-up: {name}")
    order = list(variants)
    for i in range(pairs):
        for name in order if i % 2 == 0 else reversed(order):
            res = _run(variants[name], directory, env)
            _check(res, f"start-up: {name}")
            times[name].append(res["wall_s"])
            cpu[name].append(res["cpu_s"])
    out: dict[str, Any] = {"pairs": pairs}
    for name in ("celerybase", "celery_contrib_pytest"):
        paired = list(zip(times[name], times["bare"], strict=True))
        paired_cpu = list(zip(cpu[name], cpu["bare"], strict=True))
        out[name] = {
            "ratio": _median([a / b for a, b in paired]),
            "added_ms": _median([(a - b) * 1e3 for a, b in paired]),
            "added_cpu_ms": _median([(a - b) * 1e3 for a, b in paired_cpu]),
        }
    out["median_ms"] = {k: _median(v) * 1e3 for k, v in times.items()}
    out["median_cpu_ms"] = {k: _median(v) * 1e3 for k, v in cpu.items()}
    return out


# -- 5. scale ----------------------------------------------------------------------------------


def bench_scale(tmp: Path, small: int, large: int, rounds: int) -> dict[str, Any]:
    dirs = {
        ("eager", small): _write_suite(tmp / f"scale_eager_{small}", "eager", small),
        ("eager", large): _write_suite(tmp / f"scale_eager_{large}", "eager", large),
        ("trivial", small): _write_suite(tmp / f"scale_trivial_{small}", "trivial", small),
        ("trivial", large): _write_suite(tmp / f"scale_trivial_{large}", "trivial", large),
        # Celery's own fixture (fresh app per test too), without this plugin: reference.
        ("celery_app", small): _write_suite(tmp / f"scale_celery_app_{small}", "celery_app", small),
        ("celery_app", large): _write_suite(tmp / f"scale_celery_app_{large}", "celery_app", large),
    }
    out_file = tmp / "scale.json"
    env = _env({"CELERYBASE_BENCH_OUT": str(out_file)})
    common = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    rss: dict[tuple[str, int], list[float]] = {k: [] for k in dirs}
    live: dict[tuple[str, int], Any] = {}
    passed: dict[tuple[str, int], int] = {}
    wall: dict[tuple[str, int], list[float]] = {k: [] for k in dirs}
    for _ in range(rounds):
        for key, directory in dirs.items():
            args = {
                "eager": [*common, "-p", "celerybase"],
                "trivial": common,
                "celery_app": [*common, "-p", "celery.contrib.pytest"],
            }[key[0]]
            res = _run(args, directory, env)
            _check(res, f"scale: {key}")
            rss[key].append(res["maxrss_mb"])
            wall[key].append(res["wall_s"])
            passed[key] = _passed(res["output"])
            live[key] = json.loads(out_file.read_text())["live"]
    # The same 2,000 eager tests on two xdist workers.
    xdist_res = _run(
        [*common, "-p", "celerybase", "-p", "xdist.plugin", "-n", "2"], dirs[("eager", large)], env
    )
    _check(xdist_res, "scale: xdist -n 2")
    xdist_passed = _passed(xdist_res["output"])

    rss_med = {k: _median(v) for k, v in rss.items()}
    eager_growth = rss_med[("eager", large)] - rss_med[("eager", small)]
    trivial_growth = rss_med[("trivial", large)] - rss_med[("trivial", small)]
    return {
        "passed": {f"{k[0]}_{k[1]}": v for k, v in passed.items()},
        "xdist_n2_passed": xdist_passed,
        "xdist_same_results": xdist_passed == passed[("eager", large)] == large,
        "rss_ratio_eager": rss_med[("eager", large)] / rss_med[("eager", small)],
        "rss_ratio_trivial": rss_med[("trivial", large)] / rss_med[("trivial", small)],
        "rss_ratio_celery_app": rss_med[("celery_app", large)] / rss_med[("celery_app", small)],
        "peak_rss_mb": {f"{k[0]}_{k[1]}": v for k, v in rss_med.items()},
        "rss_growth_mb": {
            "eager": eager_growth,
            "trivial_no_plugin": trivial_growth,
            "celery_contrib_pytest_celery_app": rss_med[("celery_app", large)]
            - rss_med[("celery_app", small)],
        },
        "live_recorder_objects_after_run": {f"{k[0]}_{k[1]}": v for k, v in live.items()},
        "wall_s": {f"{k[0]}_{k[1]}": _median(v) for k, v in wall.items()},
        "xdist_n2_wall_s": xdist_res["wall_s"],
    }


# -- 6. a user-level suite -------------------------------------------------------------------


def bench_user_suite(tmp: Path, n: int, rounds: int) -> dict[str, Any]:
    """``n`` tests (a third failing and retrying) on ``eager_app`` vs Celery's ``celery_app``.

    Whole pytest runs, interleaved: wall time (start-up included, as a user waits for it)
    and peak RSS of each.
    """
    common = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    variants = {
        "eager_app": (
            _write_suite(tmp / "user_eager_app", "user_eager_app", n),
            [*common, "-p", "celerybase"],
        ),
        "celery_app": (
            _write_suite(tmp / "user_celery_app", "user_celery_app", n),
            [*common, "-p", "celery.contrib.pytest"],
        ),
    }
    env = _env({"CELERYBASE_BENCH_OUT": str(tmp / "user_suite.json")})
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    rss: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for i in range(rounds):
        for name in order if i % 2 == 0 else reversed(order):
            directory, args = variants[name]
            res = _run(args, directory, env)
            _check(res, f"user suite: {name}")
            assert _passed(res["output"]) == n, res["output"][-500:]
            wall[name].append(res["wall_s"])
            cpu[name].append(res["cpu_s"])
            rss[name].append(res["maxrss_mb"])
    return {
        "tests": n,
        "failing_and_retrying": len(range(0, n, 3)),
        "rounds": rounds,
        "wall_ratio": _median(
            [a / b for a, b in zip(wall["eager_app"], wall["celery_app"], strict=True)]
        ),
        "cpu_ratio": _median(
            [a / b for a, b in zip(cpu["eager_app"], cpu["celery_app"], strict=True)]
        ),
        "wall_s": {k: _median(v) for k, v in wall.items()},
        "cpu_s": {k: _median(v) for k, v in cpu.items()},
        "peak_rss_mb": {k: _median(v) for k, v in rss.items()},
    }


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (~1 minute)")
    parser.add_argument(
        "--no-live-worker", action="store_true", help="skip live_worker vs celery_worker"
    )
    opts = parser.parse_args()
    quick = opts.quick

    import celery
    import pytest

    started = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            timings[name] = round(time.perf_counter() - t, 1)
            print(f"[bench] {name}: {timings[name]} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="celerybase-bench-") as tmp_name:
        tmp = Path(tmp_name)
        rec = timed("recorder_overhead", bench_recorder, 30 if quick else 200, 100)
        sent = timed("sent_tasks", bench_sent_tasks, 9 if quick else 31, 200)
        classes = timed("class_state", bench_class_state, 7 if quick else 21, 2000)
        eager = timed("eager_app_per_test", bench_eager_app, tmp, 3 if quick else 7, 100, 600)
        startup = timed("startup", bench_startup, tmp, 10 if quick else 30)
        scale = timed("scale", bench_scale, tmp, 200, 2000, 1)
        user = timed("user_suite", bench_user_suite, tmp, 2000, 1 if quick else 3)
    live = (
        {"ratio": None, "note": "skipped (--no-live-worker)"}
        if opts.no_live_worker
        else timed("live_worker", bench_live_worker, quick)
    )

    figures: dict[str, Any] = {
        "recorder_overhead_ratio": _r(rec["custom_base"]["ratio"]),
        "sent_tasks_held_delay_ratio": _r(sent["held_delay"]["ratio"]),
        "sent_tasks_run_ratio": _r(sent["run"]["ratio"]),
        "class_state_managed_us": classes["class_state_managed_us"],
        "class_state_unmanaged_us": classes["class_state_unmanaged_us"],
        "recorder_overhead_ratio_logging_base": _r(rec["logging_base"]["ratio"]),
        "eager_app_per_test_ratio": _r(eager["ratio"]),
        "eager_app_per_test_wall_ratio": _r(eager["wall_ratio"]),
        "eager_call_without_plugin_per_test_ratio": _r(eager["floor_ratio"]),
        "eager_call_from_a_bare_fixture_per_test_ratio": _r(eager["floor_fixture_ratio"]),
        "eager_app_plugin_share_per_test_ms": _r(eager["plugin_share_ms"]),
        "trivial_test_with_plugin_ratio": _r(eager["trivial_with_plugin_ratio"]),
        "celery_app_per_test_ratio": _r(eager["celery_app_ratio"]),
        "eager_app_vs_celery_app_per_test_ratio": _r(eager["eager_vs_celery_app_ratio"]),
        "live_worker_vs_celery_worker_ratio": _r(live.get("ratio"), 4),
        "prefork_live_worker_vs_celery_worker_ratio": _r(live.get("prefork_ratio"), 4),
        "startup_collect_only_ratio": _r(startup["celerybase"]["ratio"]),
        "startup_added_ms": _r(startup["celerybase"]["added_ms"], 1),
        "startup_added_cpu_ms": _r(startup["celerybase"]["added_cpu_ms"], 1),
        "startup_celery_contrib_pytest_added_cpu_ms": _r(
            startup["celery_contrib_pytest"]["added_cpu_ms"], 1
        ),
        "startup_celery_contrib_pytest_ratio": _r(startup["celery_contrib_pytest"]["ratio"]),
        "user_suite_eager_app_vs_celery_app_wall_ratio": _r(user["wall_ratio"]),
        "user_suite_peak_rss_mb": {k: _r(v, 1) for k, v in user["peak_rss_mb"].items()},
        "scale_rss_ratio_2000_vs_200": _r(scale["rss_ratio_eager"]),
        "scale_rss_ratio_2000_vs_200_trivial_no_plugin": _r(scale["rss_ratio_trivial"]),
        "scale_rss_ratio_2000_vs_200_celery_app": _r(scale["rss_ratio_celery_app"]),
        "scale_xdist_n2_same_results": scale["xdist_same_results"],
    }
    targets = _targets(figures, startup, scale)
    report = {
        **figures,
        "targets": targets,
        "absolute": {
            "recorder_overhead": {
                k: {kk: _r(vv, 2) for kk, vv in v.items()} for k, v in rec.items()
            },
            "eager_app_per_test": {
                "tests": eager["tests"],
                "rounds": eager["rounds"],
                "per_test_cpu_ms": {k: _r(v, 3) for k, v in eager["per_test_cpu_ms"].items()},
                "per_test_wall_ms": {k: _r(v, 3) for k, v in eager["per_test_wall_ms"].items()},
            },
            "user_suite": {
                k: ({kk: _r(vv, 2) for kk, vv in v.items()} if isinstance(v, dict) else _r(v))
                for k, v in user.items()
            },
            "sent_tasks": {
                "messages": sent["messages"],
                "rounds": sent["rounds"],
                "held_delay_us": {
                    "real_delay_memory_broker": _r(sent["held_delay"]["base_us"], 1),
                    "held_delay": _r(sent["held_delay"]["held_us"], 1),
                },
                "run_us": {
                    "eager_apply": _r(sent["run"]["base_us"], 1),
                    "sent_tasks_run": _r(sent["run"]["held_us"], 1),
                },
            },
            "class_state": classes,
            "live_worker": live.get("raw") or live.get("note"),
            "startup": {
                "pairs": startup["pairs"],
                "median_ms": {k: _r(v, 1) for k, v in startup["median_ms"].items()},
                "median_cpu_ms": {k: _r(v, 1) for k, v in startup["median_cpu_ms"].items()},
                "celery_contrib_pytest_added_ms": _r(
                    startup["celery_contrib_pytest"]["added_ms"], 1
                ),
            },
            "scale": {
                "passed": scale["passed"],
                "xdist_n2_passed": scale["xdist_n2_passed"],
                "peak_rss_mb": {k: _r(v, 1) for k, v in scale["peak_rss_mb"].items()},
                "rss_growth_mb": {k: _r(v, 1) for k, v in scale["rss_growth_mb"].items()},
                "live_recorder_objects_after_run": scale["live_recorder_objects_after_run"],
                "wall_s": {k: _r(v, 2) for k, v in scale["wall_s"].items()},
                "xdist_n2_wall_s": _r(scale["xdist_n2_wall_s"], 2),
            },
            "bench_wall_s": timings,
        },
        "env": {
            "python": platform.python_version(),
            "celery": celery.__version__,
            "pytest": pytest.__version__,
            "cpus": os.cpu_count(),
            "quick": quick,
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))
    _print_targets(targets, figures)


def _targets(
    figures: dict[str, Any], startup: dict[str, Any], scale: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each target with its measured value and whether it is met (None: not measured)."""
    targets = {
        name: {
            "target": f"<= {limit}",
            "value": figures[name],
            "met": None if figures[name] is None else figures[name] <= limit,
        }
        for name, limit in TARGETS.items()
    }
    ours = figures["startup_added_cpu_ms"]
    theirs = figures["startup_celery_contrib_pytest_added_cpu_ms"]
    targets["startup_added_cpu_ms"] = {
        "target": f"<= celery.contrib.pytest's own, measured in this run ({theirs} ms)",
        "value": ours,
        "wall_ms": {
            "celerybase": _r(startup["celerybase"]["added_ms"], 1),
            "celery_contrib_pytest": _r(startup["celery_contrib_pytest"]["added_ms"], 1),
        },
        "met": ours <= theirs,
    }
    live_after = scale["live_recorder_objects_after_run"]
    targets["scale_records_freed_per_test"] = {
        "target": "no HookCall/HookRecorder object alive after the last test",
        "value": live_after,
        "met": all(
            v is not None and not any(v.values()) for k, v in live_after.items() if "eager" in k
        ),
    }
    targets["scale_xdist_same_results"] = {
        "target": "pytest -n 2 passes the same 2,000 tests",
        "value": scale["xdist_n2_passed"],
        "met": scale["xdist_same_results"],
    }
    return targets


def _print_targets(targets: dict[str, dict[str, Any]], figures: dict[str, Any]) -> None:
    """The targets as lines on stderr (stdout stays one JSON object)."""
    print("[targets]", file=sys.stderr)
    for name, target in targets.items():
        met = {True: "PASS", False: "FAIL", None: "n/a "}[target["met"]]
        value = target["value"]
        print(f"  {met}  {name} = {value}  (target {target['target']})", file=sys.stderr)
    print(
        "  ----  user suite (2,000 tests, a third failing and retrying): eager_app / celery_app"
        f" wall {figures['user_suite_eager_app_vs_celery_app_wall_ratio']}x, peak RSS (MB)"
        f" {figures['user_suite_peak_rss_mb']}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
