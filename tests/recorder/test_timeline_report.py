"""The 'celerybase timeline' section of the test report, as a user reads it."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

FAILING = """
from pytest_celerybase import assert_hooks_called

def test_charge(eager_app):
    @eager_app.task(name="shop.charge")
    def charge(amount):
        raise ValueError("card declined")

    @eager_app.task(name="shop.receipt")
    def receipt():
        return "sent"

    receipt.delay()
    charge.delay(10)
    assert_hooks_called(charge, ["before_start", "on_success", "after_return"])

def test_passes(eager_app):
    @eager_app.task(name="shop.ok")
    def ok():
        return 1
    ok.delay()
"""


def test_failed_test_gets_the_timeline_next_to_the_captured_log(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(FAILING)
    result = run()
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*- Captured log call -*",
            "*- celerybase timeline -*",
            "2 execution(s), 12 event(s); times in ms from the start of the test",
            "shop.receipt[[]*-*-*-*-*] SUCCESS",
            "  * ms  signal  task_prerun",
            "  * ms  hook    before_start",
            "  * ms  hook    on_success",
            "  * ms  signal  task_success",
            "  * ms  hook    after_return        SUCCESS",
            "  * ms  signal  task_postrun        SUCCESS",
            "shop.charge[[]*-*-*-*-*] FAILURE ValueError('card declined')",
            "  * ms  signal  task_prerun",
            "  * ms  hook    before_start",
            "  * ms  hook    on_failure          ValueError('card declined')",
            "  * ms  signal  task_failure        ValueError('card declined')",
            "  * ms  hook    after_return        FAILURE",
            "  * ms  signal  task_postrun        FAILURE",
            "*short test summary info*",
        ]
    )
    # the passing test's report has no timeline, even with -rA
    passing = run("-rA", "-k", "test_passes")
    passing.assert_outcomes(passed=1)
    passing.stdout.no_fnmatch_line("*celerybase timeline*")
    passing.stdout.no_fnmatch_line("*shop.ok*")


def test_option_adds_it_to_passing_tests(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(FAILING)
    result = run("-rA", "--celerybase-timeline", "-k", "test_passes")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= PASSES =*",
            "*test_passes*",
            "*- celerybase timeline -*",
            "1 execution(s), 6 event(s); times in ms from the start of the test",
            "shop.ok[[]*] SUCCESS",
            "  * ms  signal  task_prerun",
        ]
    )
    help_text = run("--help")
    help_text.stdout.fnmatch_lines(["*--celerybase-timeline*"])


def test_a_test_that_ran_no_task_gets_no_section(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile("def test_it(eager_app):\n    assert False\n")
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*celerybase timeline*")


def test_hundreds_of_tasks_show_the_unusual_ones_and_count_the_rest(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
def test_many(eager_app):
    @eager_app.task(name="bulk.item")
    def item(n):
        if n in (7, 250):
            raise KeyError(n)
        return n

    for n in range(300):
        item.delay(n)
    assert False, "look at the timeline"
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    section = out[out.index("celerybase timeline") :]
    result.stdout.fnmatch_lines(
        [
            "300 execution(s), 1800 event(s); times in ms from the start of the test",
            "bulk.item[[]*] FAILURE KeyError(7)",
        ]
    )
    assert section.count("bulk.item[") == 12  # the two failures first, then the latest
    assert "FAILURE KeyError(250)" in section
    assert "... 288 more execution(s) not shown (288 SUCCESS)" in section


def test_worker_events_say_which_thread(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
def test_it(live_worker):
    @live_worker.app.task(name="w.boom")
    def boom():
        raise ValueError("on the worker")

    boom.delay().get(timeout=10, propagate=False)
    assert False
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "w.boom[[]*] FAILURE ValueError('on the worker')",
            "  * ms  signal  before_task_publish",
            "  * ms  signal  after_task_publish",
            "  * ms  signal  task_received  [[]celerybase-worker-*]",
            "  * ms  signal  task_prerun  [[]celerybase-worker-*]",
        ]
    )
