"""Next to Celery's own pytest plugin (``-p celery.contrib.pytest``) and under xdist.

Tasks run through celery's ``celery_app`` / ``celery_worker`` fixtures are recorded and
assertable, the two plugins' fixtures and markers don't clash, and ``-n 2`` works.
"""

from __future__ import annotations

import re

# celery's celery_app fixture imports this module, whose @shared_task("celery.ping") is
# added to every finalized app at import: imported here, before any test, so the leak
# guard does not see the apps alive during the first such test gain a task.
import celery.contrib.testing.tasks  # noqa: F401
import pytest

from tests.conftest import RunPytest

BOTH = ("-p", "celery.contrib.pytest")
HOOKS_OK = '["before_start", "on_success", "after_return"]'
HOOKS_FAILED = '["before_start", "on_failure", "after_return"]'

# celery's celery_worker: solo pool in a thread over the in-memory broker.  Tuned so the
# test takes milliseconds rather than seconds: the broker polls every 10 ms (default 1 s)
# and ``result.get(interval=0.01)`` polls the result backend every 10 ms (default 0.5 s).
# Stopping takes two turns of the solo pool's ``drain_events(timeout=2.0)`` after celery
# sets ``should_terminate`` (one for the turn in progress, one more from the ``finally``
# around ``maybe_shutdown``): ``quick_stop`` sets the flag first and queues two pings,
# so both turns return at once and celery's own teardown finds the thread finished.
WORKER_CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def celery_config():
    return {
        "broker_url": "memory://",
        "result_backend": "cache+memory://",
        "broker_transport_options": {"polling_interval": 0.01},
        "worker_hijack_root_logger": False,
    }

@pytest.fixture
def quick_stop(celery_app, celery_worker):
    yield
    from celery.worker import state
    state.should_terminate = 0
    for _ in range(2):
        celery_app.send_task("celery.ping")
"""


def test_celery_app_tasks_are_recorded(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        f"""
import pytest
from celery import Task
from pytest_celerybase import assert_hooks_called, hook_calls

class Audited(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        self.failed_with = exc

@pytest.mark.celery(task_always_eager=True)
def test_eager_celery_app(celery_app):
    @celery_app.task
    def add(x, y):
        return x + y
    @celery_app.task(base=Audited)
    def boom():
        raise KeyError("no")
    assert add.delay(2, 3).get() == 5
    assert boom.apply().failed()
    assert isinstance(boom.failed_with, KeyError)
    assert_hooks_called(add, {HOOKS_OK})
    assert_hooks_called(boom, {HOOKS_FAILED})
    assert list(hook_calls(add)[0].args) == [2, 3]

def test_apply_without_eager_config(celery_app):
    @celery_app.task
    def mul(x, y):
        return x * y
    result = mul.apply((3, 4))
    assert result.get() == 12
    assert_hooks_called(result, {HOOKS_OK})

def test_both_apps_in_one_test(celery_app, eager_app):
    @eager_app.task
    def ours():
        return "eager_app"
    @celery_app.task
    def theirs():
        return "celery_app"
    assert ours.delay().get() == "eager_app"
    assert theirs.apply().get() == "celery_app"
    assert_hooks_called(ours, {HOOKS_OK})
    assert_hooks_called(theirs, {HOOKS_OK})
"""
    )
    run(*BOTH, "--strict-markers").assert_outcomes(passed=3)


def test_celery_worker_tasks_are_recorded(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makeconftest(WORKER_CONFTEST)
    pytester.makepyfile(
        f"""
import threading
from celery import Task
from pytest_celerybase import assert_hooks_called, hook_calls

class Custom(Task):
    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        self.statuses = getattr(self, "statuses", []) + [status]

def test_worker(celery_app, celery_worker, quick_stop):
    @celery_app.task(base=Custom)
    def mul(x, y):
        return x * y
    @celery_app.task
    def boom():
        raise ValueError("worker side")
    celery_worker.reload()  # celery's documented step for tasks declared in the test
    result = mul.delay(4, 4)
    assert result.get(timeout=10, interval=0.01) == 16
    failed = boom.delay()
    assert failed.wait(timeout=10, interval=0.01, propagate=False)
    # no sleep: the assertion waits until the worker has run the last hooks
    assert_hooks_called(result, {HOOKS_OK})
    assert_hooks_called(failed, {HOOKS_FAILED})
    assert mul.statuses == ["SUCCESS"]
    calls = hook_calls(mul)
    assert {{c.thread for c in calls}} != {{threading.current_thread().name}}
    assert calls[1].retval == 16 and calls[2].status == "SUCCESS"
"""
    )
    result = run(*BOTH, "--strict-markers", "--durations=0", "-vv")
    result.assert_outcomes(passed=1)
    # celery's own teardown of the worker costs ~4 s without quick_stop; keep it short.
    phases = {}
    for line in result.outlines:
        match = re.match(r"\s*([\d.]+)s (setup|call|teardown)\s+\S*::test_worker$", line)
        if match:
            phases[match[2]] = float(match[1])
    assert set(phases) == {"setup", "call", "teardown"}, result.outlines
    assert max(phases.values()) < 1.5, phases


def test_no_fixture_or_marker_clash(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.celery(task_always_eager=True)
@pytest.mark.celerybase(task_eager_propagates=True)
def test_both_markers(celery_app, eager_app):
    assert celery_app.conf.task_always_eager
    assert eager_app.conf.task_eager_propagates
"""
    )
    run(*BOTH, "--strict-markers").assert_outcomes(passed=1)

    markers = run(*BOTH, "--markers")
    markers.stdout.fnmatch_lines_random(
        ["@pytest.mark.celery(**overrides):*", "@pytest.mark.celerybase(**settings):*"]
    )

    listing = run(*BOTH, "--fixtures")
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in listing.outlines:
        header = re.match(r"-+ fixtures defined from (\S+) -+", line)
        if header:
            current = sections.setdefault(header[1], set())
        elif current is not None and (name := re.match(r"(\w+)(?: \[\w+ scope\])?", line)):
            current.add(name[1])
    ours = sections["pytest_celerybase.fixtures"]
    theirs = sections["celery.contrib.pytest"]
    assert {"eager_app", "hook_recorder", "celerybase_config", "live_worker", "http_stub"} <= ours
    assert len(sections) == 3  # ours, celery.contrib.pytest, pytest_mock: nothing private
    assert {"celery_app", "celery_worker", "celery_config"} <= theirs
    assert not ours & theirs
    assert not any(name.startswith("celery_") for name in ours)


XDIST_SUITE = """
import pytest
from pytest_celerybase import assert_hooks_called, hook_calls

@pytest.mark.parametrize("n", range(8))
def test_each_worker_records_its_own(eager_app, n):
    @eager_app.task
    def square(x):
        if x == 3:
            raise ValueError(x)
        return x * x
    square.delay(n)
    expected = "on_failure" if n == 3 else "on_success"
    assert_hooks_called(square, ["before_start", expected, "after_return"])
    assert len(hook_calls()) == 3
"""


def test_runs_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(XDIST_SUITE)
    result = pytester.runpytest_subprocess("-p", "xdist.plugin", "-p", "celerybase", "-n", "2")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*2 workers*"])


def test_sent_tasks_delivers_to_celerys_own_worker(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeconftest(WORKER_CONFTEST)
    pytester.makepyfile(
        """
from pytest_celerybase import assert_task_sent

def test_worker(celery_app, celery_worker, quick_stop, sent_tasks):
    @celery_app.task
    def mul(x, y):
        return x * y
    celery_worker.reload()
    assert mul.delay(4, 4).get(timeout=10, interval=0.01) == 16  # delivered, not held
    assert sent_tasks.holding is False
    assert_task_sent(mul, (4, 4))
"""
    )
    run(*BOTH).assert_outcomes(passed=1)
