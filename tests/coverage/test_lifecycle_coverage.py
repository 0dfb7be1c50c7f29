"""--celerybase-coverage, -json and -fail: inner pytest sessions over small projects.

The project (``PROJECT``) has two task classes: ``AuditedTask`` overrides the five hooks
and its tasks succeed and fail in the tests but never retry; ``ReportTask``'s only task
is in a module no test imports (the project app's ``include`` names it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import pytest_celerybase
from pytest_celerybase._compat import CELERY_VERSION
from tests.conftest import RunPytest

PROJECT = {
    "pytest.ini": "[pytest]\npythonpath = .\ncelerybase_app = proj.celery:app\n",
    "proj/__init__.py": "",
    "proj/celery.py": """
from celery import Celery

app = Celery("proj", include=["proj.tasks", "proj.reports"])
""",
    "proj/bases.py": """
from celery import Task

AUDIT = []


class AuditedTask(Task):
    def before_start(self, task_id, args, kwargs):
        AUDIT.append(("start", task_id))

    def on_success(self, retval, task_id, args, kwargs):
        AUDIT.append(("ok", task_id))

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        AUDIT.append(("failed", task_id))

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        AUDIT.append(("retry", task_id))

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        AUDIT.append(("done", task_id))


class ReportTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        pass

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        pass
""",
    "proj/tasks.py": """
from proj.bases import AuditedTask
from proj.celery import app


@app.task(base=AuditedTask, bind=True, max_retries=2)
def charge(self, amount):
    if amount < 0:
        raise ValueError(amount)
    if amount == 0:
        raise self.retry(countdown=0)
    return amount


@app.task(base=AuditedTask)
def refund(amount):
    return -amount
""",
    "proj/reports.py": """
from proj.bases import ReportTask
from proj.celery import app


@app.task(base=ReportTask)
def nightly():
    return "report"
""",
    "tests/test_charge.py": """
import sys

from proj.tasks import charge, refund


def test_charge(eager_app):
    assert charge.delay(10).get() == 10


def test_charge_fails(eager_app):
    assert charge.delay(-1).failed()


def test_refund(eager_app):
    assert refund.delay(5).get() == -5
    assert "proj.reports" not in sys.modules  # only the app's include names it
""",
}

RETRY_TEST = """
from proj.tasks import charge


def test_charge_retries(eager_app):
    assert charge.delay(0).failed()  # two retries, then MaxRetriesExceededError
"""

@pytest.fixture
def run(run: RunPytest, monkeypatch: pytest.MonkeyPatch) -> RunPytest:
    """The inner session registers on a project app only its own shared tasks, as a
    user's session (a fresh process) does: not those other tests of this process
    declared (Celery adds every ``@shared_task`` to every app it finalizes).  Celery's
    built-in tasks stay."""
    from celery import _state

    builtins = {f for f in _state._on_app_finalizers if f.__module__ == "celery.app.builtins"}
    monkeypatch.setattr(_state, "_on_app_finalizers", builtins)
    return run


HEADLINE = "{total} overrides in {classes} task classes, {never} never ran (count: executions "
HEADLINE += "that ran the override, by mode)"


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip(), encoding="utf-8")


def section(result: pytest.RunResult) -> list[str]:
    """The lines of the coverage section (without its title)."""
    lines = result.stdout.lines
    title = [i for i, line in enumerate(lines) if "= celerybase lifecycle coverage =" in line]
    assert len(title) == 1, result.stdout.str()
    start = title[0] + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start:end]


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


AUDITED_LINES = [
    "proj.bases.AuditedTask: 1 of 5 overrides never ran (tasks: proj.tasks.charge, "
    "proj.tasks.refund)",
    "  on_retry      0  never ran: no execution of proj.tasks.charge, proj.tasks.refund retried",
    "  before_start  3  eager 3",
    "  on_success    2  eager 2",
    "  on_failure    1  eager 1",
    "  after_return  3  eager 3",
]
REPORT_LINES = [
    "proj.bases.ReportTask: none of its tasks ran (tasks: proj.reports.nightly)",
    "  on_failure    0  never ran: no test ran proj.reports.nightly",
    "  after_return  0  never ran: no test ran proj.reports.nightly",
]


def test_the_report_names_the_hook_no_test_made_run(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    write(pytester, PROJECT)
    result = run("--celerybase-coverage", "--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert section(result) == [
        HEADLINE.format(total=7, classes=2, never=3),
        "",
        *AUDITED_LINES,
        "",
        *REPORT_LINES,
        "",
        "JSON written to cov.json",
    ]
    document = read_json(pytester.path / "cov.json")
    assert document["classes"] == {
        "proj.bases.AuditedTask": {
            "before_start": 3, "on_success": 2, "on_failure": 1, "on_retry": 0,
            "after_return": 3,
        },
        "proj.bases.ReportTask": {"on_failure": 0, "after_return": 0},
    }  # fmt: skip
    assert document["modes"]["proj.bases.AuditedTask"]["on_failure"] == {
        "eager": 1, "worker": 0, "prefork": 0,
    }  # fmt: skip
    assert document["never_ran"] == [
        "proj.bases.AuditedTask.on_retry",
        "proj.bases.ReportTask.on_failure",
        "proj.bases.ReportTask.after_return",
    ]


def test_a_test_that_retries_makes_on_retry_count(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    write(pytester, {**PROJECT, "tests/test_retry.py": RETRY_TEST})
    result = run("--celerybase-coverage", "--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=4)
    # Three attempts: two retries, then the failure (after_return skips RETRY states).
    assert read_json(pytester.path / "cov.json")["classes"]["proj.bases.AuditedTask"] == {
        "before_start": 6, "on_success": 2, "on_failure": 2, "on_retry": 2, "after_return": 4,
    }  # fmt: skip
    lines = section(result)
    assert lines[0] == HEADLINE.format(total=7, classes=2, never=2)
    # Classes with a gap come first: the fully run class is last.
    assert lines[2:5] == REPORT_LINES
    assert lines[6:8] == [
        "proj.bases.AuditedTask: every override ran (tasks: proj.tasks.charge, proj.tasks.refund)",
        "  before_start  6  eager 6",
    ]


def test_a_class_whose_tasks_never_ran_is_listed_from_the_project_app(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    write(pytester, PROJECT)
    result = run("--celerybase-coverage-json=cov.json")
    document = read_json(pytester.path / "cov.json")
    assert document["classes"]["proj.bases.ReportTask"] == {"on_failure": 0, "after_return": 0}
    assert document["tasks"]["proj.bases.ReportTask"] == {
        "known": ["proj.reports.nightly"], "ran": [],
    }  # fmt: skip
    # Only the JSON was asked for: the section says where it went, not the classes.
    assert section(result) == [
        HEADLINE.format(total=7, classes=2, never=3),
        "JSON written to cov.json",
    ]


def test_the_fail_option_fails_a_run_whose_tests_all_passed(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    write(pytester, PROJECT)
    result = run("--celerybase-coverage-fail")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = section(result)
    assert lines[2:8] == AUDITED_LINES  # implies the report
    assert lines[-2:] == [
        "",
        "FAILED (--celerybase-coverage-fail): 3 of 7 overrides never ran; every test passed",
    ]


def test_the_fail_option_passes_when_every_override_ran(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
from celery import Task, shared_task


class Audited(Task):
    def on_success(self, retval, task_id, args, kwargs):
        pass


@shared_task(base=Audited, name="t.ok")
def ok():
    return 1


def test_ok(eager_app):
    assert ok.delay().get() == 1
"""
    )
    result = run("--celerybase-coverage-fail")
    assert result.ret == pytest.ExitCode.OK
    assert section(result) == [
        HEADLINE.format(total=1, classes=1, never=0),
        "",
        "test_the_fail_option_passes_when_every_override_ran.Audited: every override ran "
        "(tasks: t.ok)",
        "  on_success  1  eager 1",
    ]


def _workers_ran_tests(output: str) -> set[str]:
    return {w for w in ("gw0", "gw1") if re.search(rf"^\[{w}\].* PASSED ", output, re.M)}


def test_xdist_gives_the_serial_runs_json(
    pytester: pytest.Pytester, run: RunPytest, monkeypatch: pytest.MonkeyPatch
) -> None:
    more = RETRY_TEST + "\n\ndef test_refund_again(eager_app):\n    from proj.tasks import refund\n"
    more += "    assert refund.delay(1).get() == -1\n"
    write(pytester, {**PROJECT, "tests/test_more.py": more})
    serial = run("--celerybase-coverage", "--celerybase-coverage-json=serial.json")
    serial.assert_outcomes(passed=5)
    # The subprocess imports this tree's package (not another installed copy).
    here = str(Path(pytest_celerybase.__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p))  # fmt: skip
    parallel = pytester.runpytest_subprocess(
        "-p", "xdist.plugin", "-p", "celerybase", "-n", "2", "-v",
        "--celerybase-coverage", "--celerybase-coverage-json=parallel.json",
    )  # fmt: skip
    parallel.assert_outcomes(passed=5)
    assert _workers_ran_tests(parallel.stdout.str()) == {"gw0", "gw1"}
    assert read_json(pytester.path / "parallel.json") == read_json(pytester.path / "serial.json")
    assert section(parallel)[:-1] == section(serial)[:-1]  # but the JSON file's name
    assert "  on_retry      2  eager 2" in section(parallel)


WORKER_TESTS = """
import pytest
from celery import Task, shared_task


class Audited(Task):
    def before_start(self, task_id, args, kwargs):
        pass

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        pass


class Timed(Task):
    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)


class Shop(Timed, Audited):
    pass


@shared_task(base=Shop, name="w.add")
def add(x, y):
    return x + y


def test_eager(eager_app):
    assert add.delay(1, 2).get() == 3


def test_worker(live_worker):
    assert add.delay(1, 2).get(timeout=5) == 3


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)
def test_prefork(live_worker):
    assert add.delay(1, 2).get(timeout=5) == 3
    assert add.delay(2, 2).get(timeout=5) == 4
"""


def test_worker_and_prefork_executions_are_counted_with_their_mode(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(test_shop=WORKER_TESTS)
    result = run("--celerybase-coverage", "--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=3)
    modes = read_json(pytester.path / "cov.json")["modes"]
    each = {"eager": 1, "worker": 1, "prefork": 2}
    assert modes == {
        "test_shop.Audited": {"before_start": each, "on_retry": {m: 0 for m in each}},
        "test_shop.Timed": {"__call__": each},  # a base's __call__, run in the child too
    }
    assert section(result)[2:5] == [
        "test_shop.Audited: 1 of 2 overrides never ran (tasks: w.add)",
        "  on_retry      0  never ran: no execution of w.add retried",
        "  before_start  4  eager 1, worker 1, prefork 2",
    ]


HARD_LIMIT_TESTS = """
import time

import pytest
from celery import Task, shared_task
from celery.exceptions import TimeLimitExceeded

from pytest_celerybase import hook_calls


class Cleanup(Task):
    def before_start(self, task_id, args, kwargs):
        pass

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        pass

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        pass


@shared_task(name="h.hard", base=Cleanup, time_limit=0.1)
def hard():
    time.sleep(5)


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)
def test_hard_limit(live_worker):
    with pytest.raises(TimeLimitExceeded):
        hard.delay().get(timeout=5)
    hook_calls(hard)  # waits for the hooks the parent runs
"""


def test_hooks_the_prefork_parent_runs_for_a_killed_child_count_for_its_execution(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(test_limit=HARD_LIMIT_TESTS)
    result = run("--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=1)
    # Celery 5.7 runs on_failure and after_return in the parent, outside the child's
    # execution (in a thread of the pool); 5.6 and older run none.
    parent = 1 if CELERY_VERSION >= (5, 7) else 0
    assert read_json(pytester.path / "cov.json")["modes"]["test_limit.Cleanup"] == {
        "before_start": {"eager": 0, "worker": 0, "prefork": 1},
        "on_failure": {"eager": 0, "worker": 0, "prefork": parent},
        "after_return": {"eager": 0, "worker": 0, "prefork": parent},
    }


def test_hooks_a_test_calls_itself_do_not_count_and_clear_loses_nothing(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    write(pytester, PROJECT)
    (pytester.path / "tests" / "test_charge.py").write_text(
        """
from proj.tasks import charge


def test_direct_calls(eager_app, hook_recorder):
    result = charge.delay(1)
    hook_recorder.clear()  # what ran before is counted all the same
    # Recorded as hook calls, but no execution retried: not coverage.
    charge.on_retry(ValueError("x"), result.id, (1,), {}, None)
    charge.on_retry(ValueError("x"), "made-up", (1,), {}, None)
    assert [c.hook for c in hook_recorder.calls] == ["on_retry", "on_retry"]
    charge.delay(2)
""",
        encoding="utf-8",
    )
    result = run("--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=1)
    assert read_json(pytester.path / "cov.json")["classes"]["proj.bases.AuditedTask"] == {
        "before_start": 2, "on_success": 2, "on_failure": 0, "on_retry": 0, "after_return": 2,
    }  # fmt: skip


def test_an_override_skipped_by_one_without_super_never_ran(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        test_composed="""
from celery import Task, shared_task


class Audit(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        pass  # forgets super().on_failure(...): Alerts never hears of a failure


class Alerts(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)


class Shop(Audit, Alerts):
    pass


@shared_task(base=Shop, name="c.pay")
def pay(amount):
    raise ValueError(amount)


def test_fails_twice(eager_app):
    assert pay.delay(1).failed() and pay.delay(2).failed()
"""
    )
    result = run("--celerybase-coverage", "--celerybase-coverage-json=cov.json")
    assert read_json(pytester.path / "cov.json")["classes"] == {
        "test_composed.Alerts": {"on_failure": 0},
        "test_composed.Audit": {"on_failure": 2},
    }
    assert section(result)[2:4] == [
        "test_composed.Alerts: 1 of 1 overrides never ran (tasks: c.pay)",
        "  on_failure  0  never ran: called 2 times, skipped each time: "
        "test_composed.Audit.on_failure does not call super() in 2",
    ]


def test_base_call_and_run_overrides_count_and_a_shadowed_run_is_explained(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        test_calls="""
from celery import Task, shared_task


class Timed(Task):
    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)


class Fallback(Task):
    def run(self, *args, **kwargs):
        return "fallback"


class Pinger(Task):
    def run(self):
        return "pong"


class Ping(Pinger):
    name = "k.ping"


@shared_task(base=Timed, name="k.timed")
def timed():
    return 1


@shared_task(base=Fallback, name="k.own")
def own():
    return "own"  # this task's own run: Fallback.run is reached only through super()


def test_run_them(eager_app):
    assert timed.delay().get() == 1
    assert own.delay().get() == "own"
    ping = eager_app.register_task(Ping())
    assert ping.delay().get() == "pong"
"""
    )
    result = run("--celerybase-coverage", "--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=1)
    assert read_json(pytester.path / "cov.json")["classes"] == {
        "test_calls.Fallback": {"run": 0},
        "test_calls.Pinger": {"run": 1},
        "test_calls.Timed": {"__call__": 1},
    }
    assert section(result)[2:4] == [
        "test_calls.Fallback: 1 of 1 overrides never ran (tasks: k.own)",
        "  run       0  never ran: the tasks' own run() replaces it (only super().run() "
        "reaches it): k.own",
    ]


OFF_OR_ON = """
from celery import Task, shared_task


class Timed(Task):
    def __call__(self, *args, **kwargs):
        return super().__call__(*args, **kwargs)


CALL = Timed.__dict__["__call__"]


@shared_task(base=Timed, name="o.timed")
def timed():
    return Timed.__dict__["__call__"] is CALL


def test_it(eager_app, hook_recorder, request):
    registered = request.config.pluginmanager.get_plugin("celerybase-coverage") is not None
    unwrapped = timed.delay().get()
    assert (registered, hook_recorder.watch_overrides, unwrapped) == EXPECTED


def test_the_next_test_finds_it_as_it_was():
    assert Timed.__dict__["__call__"] is CALL
"""


@pytest.mark.parametrize("option", [None, "--celerybase-coverage"])
def test_without_the_option_nothing_is_registered_or_wrapped(
    pytester: pytest.Pytester, run: RunPytest, option: str | None
) -> None:
    # With the option, a base's __call__ is wrapped while a test records.
    expected = (False, False, True) if option is None else (True, True, False)
    pytester.makepyfile(test_off=OFF_OR_ON.replace("EXPECTED", repr(expected)))
    result = run(*([option] if option else []))
    result.assert_outcomes(passed=2)
    titled = "celerybase lifecycle coverage" in result.stdout.str()
    assert titled is (option is not None)


def test_what_keeps_the_counts_from_being_complete_is_reported_and_fails_the_run(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeini("[pytest]\ncelerybase_app = nowhere.celery:app\n")
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = run("--celerybase-coverage-fail")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert section(result) == [
        "the project app's tasks are not listed: ValueError: celerybase_app = "
        "'nowhere.celery:app': cannot import module 'nowhere.celery': No module named "
        "'nowhere' (the counts may be incomplete)",
        "no task class with lifecycle overrides ran, and none is registered on the project "
        "app (the celerybase_app ini key)",
        "",
        "FAILED (--celerybase-coverage-fail): the counts are incomplete; every test passed",
    ]


def test_the_counts_travel_as_plain_data(pytester: pytest.Pytester, run: RunPytest) -> None:
    # What an xdist worker sends must survive execnet: nothing but dicts, lists, str, int.
    write(pytester, PROJECT)
    pytester.makeconftest(
        """
import json

def pytest_sessionfinish(session):
    hooks = session.config.pluginmanager.get_plugin("celerybase-coverage")
    data = hooks.coverage.to_data()
    assert json.loads(json.dumps(data)) == data
    open("data.json", "w").write(json.dumps(data))
"""
    )
    run("--celerybase-coverage").assert_outcomes(passed=3)
    data = json.loads((pytester.path / "data.json").read_text(encoding="utf-8"))
    assert data["classes"]["proj.bases.ReportTask"]["tasks"] == ["proj.reports.nightly"]


def test_the_reference_bases_count_like_any_class(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        test_logged="""
from celery import shared_task

from pytest_celerybase.bases import LoggingTask


@shared_task(base=LoggingTask, name="l.ship")
def ship(n):
    if n < 0:
        raise ValueError(n)
    return n


def test_ship(eager_app):
    assert ship.delay(1).get() == 1 and ship.delay(-1).failed()
"""
    )
    result = run("--celerybase-coverage", "--celerybase-coverage-json=cov.json")
    result.assert_outcomes(passed=1)
    assert read_json(pytester.path / "cov.json")["classes"] == {
        "pytest_celerybase.bases.log.LoggingTask": {
            "before_start": 2, "on_success": 1, "on_failure": 1, "on_retry": 0,
            "after_return": 2,
        },
    }  # fmt: skip
    assert section(result)[3] == (
        "  on_retry      0  never ran: no execution of l.ship retried"
    )
