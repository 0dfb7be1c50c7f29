"""Every public hook assertion, where what it asserts did not happen: it must fail.

For each assertion, an inner session runs it against each way the asserted behaviour can
be missing: nothing ran, a partial run (an execution still running when the wait ends),
another task ran, another type given, another id given, and records from a thread that
no test counts.  Every inner test must fail, each with the error a user would read.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import RunPytest

HEAD = """
import threading
import pytest
from celery import Task, shared_task
from celery.result import AsyncResult
from pytest_celerybase import (
    assert_hooks_called, assert_hooks_called_in_order, assert_hooks_cooperative,
    assert_hooks_not_called, assert_lifecycle,
)

SUCCESS = ["before_start", "on_success", "after_return"]
LIFECYCLE = ["task_prerun", "before_start", "on_success", "task_success", "after_return",
             "task_postrun"]
RELEASE = threading.Event()
GO, DONE, STOP = threading.Event(), threading.Event(), threading.Event()

class Audit(Task):
    def on_success(self, *args):  # forgets super(): Log.on_success never runs
        pass

class Log(Task):
    def on_success(self, *args):
        super().on_success(*args)

class Composed(Audit, Log):
    pass

@shared_task(name="proj.target", base=Composed)
def target(fail=False):
    if fail:
        raise ValueError("boom")
    return 1

@shared_task(name="proj.other")
def other():
    return 2

@shared_task(name="proj.slow")
def slow():
    RELEASE.wait(10)
    raise ValueError("late")

def stop_background_work():
    RELEASE.set()
    STOP.set()
    GO.set()
"""

CONFTEST = """
import sys

def pytest_unconfigure(config):
    for module in list(sys.modules.values()):
        stop = getattr(module, "stop_background_work", None)
        if stop is not None and getattr(module, "__file__", "").startswith(str(config.rootpath)):
            stop()
"""

# The scenarios: (test name, its body with CHECK where the assertion goes, the error).
# In the body, `run` is what makes the assertion true had it happened.
SCENARIOS = [
    ("nothing_ran", "def test_{n}(eager_app):\n    CHECK(target)\n", None),
    ("another_task_ran", "def test_{n}(eager_app):\n    other.delay()\n    CHECK(target)\n",
     None),
    ("another_type", "def test_{n}(eager_app):\n    RUN\n    CHECK(object())\n",
     "TypeError: expected a Celery task, a registered task name (str) or a task result "
     "(AsyncResult/EagerResult), got object: *"),
    ("none_given", "def test_{n}(eager_app):\n    RUN\n    CHECK(eager_app.tasks.get('x'))\n",
     "TypeError: expected a Celery task*got NoneType: None"),
    ("another_id", "def test_{n}(eager_app):\n    RUN\n    CHECK(target, task_id="
     "other.delay().id)\n", None),
    ("unknown_id", "def test_{n}(eager_app):\n    RUN\n    CHECK(AsyncResult('gone'))\n",
     "ValueError: task id 'gone' was never sent, run or scheduled in this test*"),
    ("partial_run", "def test_{n}(live_worker):\n    r = slow.delay()\n    try:\n"
     "        CHECK(slow)\n    finally:\n        RELEASE.set()\n"
     "        r.get(timeout=10, propagate=False)\n",
     "AssertionError: Cannot judge task 'proj.slow': the live worker was still running*"),
    ("1_leaves_a_thread", "def test_{n}(eager_app):\n    def later():\n        GO.wait(10)\n"
     "        if not STOP.is_set():\n            RUN\n        DONE.set()\n"
     "    threading.Thread(target=later, name='leftover', daemon=True).start()\n"
     "    assert False, 'fails on purpose: only leaves the thread'\n",
     "AssertionError: fails on purpose: only leaves the thread"),
    ("2_uncounted_thread", "def test_{n}(eager_app):\n    GO.set()\n    assert DONE.wait(10)\n"
     "    CHECK(target)\n",
     "AssertionError: Cannot judge task 'proj.target': some of its hook/signal records in "
     "this test came from threads an earlier test left running*"),
]

# assertion -> (the check, what makes it true, the error of "nothing"/"another" cases)
ASSERTIONS = {
    "assert_hooks_called": (
        "assert_hooks_called({t}, SUCCESS{kw})", "target.delay()",
        "AssertionError: Expected task * to call exactly:",
    ),
    "assert_hooks_called_in_order": (
        'assert_hooks_called_in_order({t}, ["on_success"]{kw})', "target.delay()",
        "AssertionError: Expected task * to call in order:",
    ),
    "assert_lifecycle": (
        "assert_lifecycle({t}, LIFECYCLE{kw})", "target.delay()",
        "AssertionError: Expected task * to go through exactly:",
    ),
    # What these assert is an absence: it "did not happen" when the hook was called, or
    # when cooperation broke (Composed's Audit.on_success swallows the call).
    "assert_hooks_not_called": (
        'assert_hooks_not_called({t}, ["on_failure"]{kw})', "target.delay(fail=True)",
        "AssertionError: Expected task * not to call any of*",
    ),
    "assert_hooks_cooperative": (
        "assert_hooks_cooperative({t}{kw})", "target.delay()",
        "AssertionError: Expected *",
    ),
}


def _inner(assertion: str) -> str:
    check, run, _ = ASSERTIONS[assertion]
    helper = (
        "def CHECK(task, **kw):\n    "
        + check.format(t="task", kw=", **kw")
        + "\n\n"
    )
    tests = []
    for name, body, _ in SCENARIOS:
        if assertion in ("assert_hooks_not_called", "assert_hooks_cooperative") and name in (
            "nothing_ran", "another_task_ran", "another_id"
        ):
            # the absence holds there; "did not happen" is the hook being called / the
            # cooperation broken, by the target itself
            body = body.replace("CHECK(target", f"{run}\n    CHECK(target")
            body = body.replace("    other.delay()\n", "")
            if name == "another_id":
                body = body.replace("task_id=other.delay().id", "task_id=GONE_ID")
        tests.append(body.replace("{n}", name).replace("RUN", run))
    return HEAD + helper + "GONE_ID = 'gone'\n\n" + "\n\n".join(tests)


def _sections(output: str) -> dict[str, str]:
    parts = re.split(r"^_{3,} (test_\w+) _{3,}$", output, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("assertion", sorted(ASSERTIONS))
def test_the_assertion_fails_where_what_it_asserts_did_not_happen(
    pytester: pytest.Pytester, run: RunPytest, assertion: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=_inner(assertion))
    result = run("-p", "no:randomly", "-o", "celerybase_wait_timeout=0.05")
    result.assert_outcomes(failed=len(SCENARIOS))
    sections = _sections(result.stdout.str())
    assert sorted(sections) == sorted(f"test_{name}" for name, _, _ in SCENARIOS)
    generic = ASSERTIONS[assertion][2]
    for name, _, error in SCENARIOS:
        wanted = error or generic
        if assertion in ("assert_hooks_not_called", "assert_hooks_cooperative"):
            if name == "another_id":
                wanted = "ValueError: task id 'gone' was never sent, run or scheduled*"
            elif name == "nothing_ran" and assertion == "assert_hooks_cooperative":
                wanted = "AssertionError: Expected every override of each hook of task " \
                    "'proj.target' to run once per hook call, but:"
        lines = [line for line in sections[f"test_{name}"].splitlines() if line.startswith("E ")]
        assert any(
            re.fullmatch(r"E\s+" + re.escape(wanted).replace(r"\*", ".*"), line)
            for line in lines
        ), f"{assertion} / {name}: no line matches {wanted!r} in:\n" + "\n".join(lines)
