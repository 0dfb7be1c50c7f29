"""False-pass catalogue, what a test leaves behind (issue 20, item 12, first bullet).

A request pushed with ``task.push_request(...)`` and not popped stayed on the task class,
so the next test read the earlier test's ``task.request`` (its id, retries, headers): a
test of "the first attempt" could pass because another test left ``retries=3`` behind,
or fail for no reason of its own.  The request stack of every task of every live app is
now put back after each test.  The ``(next test)`` checks failed before the fix.
"""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

TASKS = """
import pytest
from celery import Celery, shared_task

# An app of the user's own (no plugin fixture), and a shared task eager_app runs.
own_app = Celery("own", set_as_current=False)

@own_app.task(bind=True)
def own(self):
    return self.request.retries

@shared_task(bind=True, name="left.charge")
def charge(self):
    return self.request.retries
"""


def test_a_pushed_request_is_gone_after_the_test(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        TASKS
        + """
@pytest.fixture
def retried_own():
    own.push_request(id="from-a-fixture", retries=5)  # and never popped
    yield own

def test_pushes(eager_app, retried_own):
    charge.push_request(id="left-behind", retries=3)
    own.push_request(id="left-behind-too", retries=3)
    assert charge.run() == 3 and own.request.id == "left-behind-too"

def test_next_test_on_eager_app(eager_app):
    assert charge.request.id is None
    assert charge.run() == 0

def test_next_test_without_fixtures():
    assert own.request.id is None
    assert own.run() == 0
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_request_pushed_before_the_tests_stays(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    """What was on a stack before the first test is what every test starts from: a test
    popping it gets it back for the next one."""
    pytester.makepyfile(
        TASKS
        + """
own.push_request(id="at-import")

def test_pops_it():
    assert own.request.id == "at-import"
    own.pop_request()
    assert own.request.id is None

def test_next_test():
    assert own.request.id == "at-import"
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=2)
