"""False-pass catalogue, sent tasks (issue 20, items 5 and 6).

Each test runs a user's test through the plugin and shows that an assertion about a sent
task fails, with the message the user reads, when what it asserts did not happen: a value
of another type (``True`` for ``1``, at any depth), ``link=[]``/``link=None`` for a
message carrying a link, ``exchange=None`` for a message to a named exchange, nothing
sent, another task, another argument, another parent id.  Each of the type and link cases
passed before the fix.
"""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

TASKS = """
import pytest
from pytest_celerybase import assert_task_not_sent, assert_task_sent

@pytest.fixture
def shop(eager_app):
    class Shop:
        @eager_app.task(name="shop.setflag")
        def setflag(*args, **kwargs):
            pass

        @eager_app.task(name="shop.audit")
        def audit(*args, **kwargs):
            pass

    return Shop
"""


def _user_test(pytester: pytest.Pytester, body: str) -> None:
    lines = "\n".join(f"    {line}" for line in body.strip().splitlines())
    pytester.makepyfile(TASKS + f"\ndef test_user(shop, sent_tasks):\n{lines}\n")


# -- item 5: values compared as their own types ------------------------------------------
# (what the task was sent with, what the user's test asserts, the line the diff shows)
TYPE_CASES = {
    "bool-for-int": ("delay(1)", "(True,)", None, "args=(1,) (equal with ==, but the message "
                     "has 1, an int, where True, a bool, was expected)"),
    "float-for-int": ("delay(1)", "(1.0,)", None, "args=(1,) (equal with ==, but the message "
                      "has 1, an int, where 1.0, a float, was expected)"),
    "int-for-bool": ("delay(True)", "(1,)", None, "args=(True,) *where 1, an int, *"),
    "int-for-float": ("delay(2.0)", "(2,)", None, "args=(2.0,) *where 2, an int, *"),
    "false-for-zero-kwarg": ("delay(force=0)", None, "{'force': False}",
                             "kwargs={'force': 0} *where False, a bool, *"),
    "nested-list": ("delay([1, [2, 1]])", "([1, [2, True]],)", None,
                    "args=([[]1, [[]2, 1]],) *the message has 1, an int, where True, a bool*"),
    "nested-tuple": ("delay((0, 1))", "((False, 1),)", None,
                     "args=([[]0, 1],) *the message has 0, an int, where False, a bool*"),
    "nested-dict": ("delay(order={'paid': 1, 'items': [{'qty': 2}]})", None,
                    "{'order': {'paid': 1, 'items': [{'qty': 2.0}]}}",
                    "kwargs=* *the message has 2, an int, where 2.0, a float*"),
    "dict-key": ("delay({1: 'a'})", "({True: 'a'},)", None, "args=*"),
}


@pytest.mark.parametrize("case", TYPE_CASES, ids=list(TYPE_CASES))
def test_arguments_of_another_type_do_not_match(
    pytester: pytest.Pytester, run: RunPytest, case: str
) -> None:
    sent, args, kwargs, shown = TYPE_CASES[case]
    _user_test(
        pytester,
        f"""
shop.setflag.{sent}
assert_task_sent(shop.setflag, {args}, {kwargs})
""",
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'shop.setflag' to be sent with *, "
            "but no message matched.",
            "E       Diff of the closest message, #1 (- expected, + sent):",
            f"E         + {shown}",
        ]
    )


def test_filter_and_not_sent_compare_types_too(pytester: pytest.Pytester, run: RunPytest) -> None:
    _user_test(
        pytester,
        """
shop.setflag.delay(1, force=0)
assert sent_tasks.filter(shop.setflag, args=(True,)) == []
assert sent_tasks.filter(shop.setflag, kwargs={"force": False}) == []
assert len(sent_tasks.filter(shop.setflag, args=(1,), kwargs={"force": 0})) == 1
assert_task_not_sent(shop.setflag, (True,))       # what was not sent: passes
assert_task_not_sent(shop.setflag, (1.0,))
assert_task_not_sent(shop.setflag, (1,))          # what was sent: fails
""",
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_task_not_sent(shop.setflag, (1,))          # what was sent: fails",
            "E       AssertionError: Expected task 'shop.setflag' not to be sent with args=(1,), "
            "but 1 message matched (marked *):",
            "E         *#1 shop.setflag(1, force=0) [[]queue 'celery']",
        ]
    )


# Options whose values have a type (item 5 applied to options).
OPTION_CASES = {
    "priority": ("apply_async(priority=True)", "priority=1",
                 "priority=True (equal with ==, but the message has True, a bool, where 1, "
                 "an int, was expected)"),
    "ignore_result": ("apply_async(ignore_result=1)", "ignore_result=True",
                      "ignore_result=1 *where True, a bool, *"),
    "retries": ("apply_async(retries=True)", "retries=1", "retries=True *where 1, an int, *"),
    "header-value": ("apply_async(headers={'tenant_id': 1})", "headers={'tenant_id': True}",
                     "headers {'tenant_id': 1} *where True, a bool, *"),
    "nested-header-value": ("apply_async(headers={'ids': (1, 2)})",
                            "headers={'ids': [1, 2.0]}",
                            "headers {'ids': (1, 2)} *where 2.0, a float, *"),
    "link-args": ("apply_async(link=shop.audit.s(1))", "link=shop.audit.s(True)",
                  "link=[[]'shop.audit']"),
    "link-kwargs": ("apply_async(link=shop.audit.s(force=0))",
                    "link=shop.audit.s(force=False)", "link=[[]'shop.audit']"),
    "link-error-args": ("apply_async(link_error=shop.audit.s(1.0))",
                        "link_error=shop.audit.s(1)", "link_error=[[]'shop.audit']"),
}


@pytest.mark.parametrize("case", OPTION_CASES, ids=list(OPTION_CASES))
def test_option_values_of_another_type_do_not_match(
    pytester: pytest.Pytester, run: RunPytest, case: str
) -> None:
    sent, option, shown = OPTION_CASES[case]
    _user_test(
        pytester,
        f"""
shop.setflag.{sent}
assert_task_sent(shop.setflag, {option})
""",
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: Expected task 'shop.setflag' to be sent with *, "
            "but no message matched.",
            f"E         + {shown}",
        ]
    )


def test_the_same_values_still_match(pytester: pytest.Pytester, run: RunPytest) -> None:
    """The strict comparison keeps what the serializer's round trip explains (JSON makes
    tuples lists) and what a worker receives unchanged, delivered or held."""
    _user_test(
        pytester,
        """
shop.setflag.apply_async(
    (1, [1, (2, True)], {"k": 0.5}), {"force": False, "when": None},
    priority=1, ignore_result=True, headers={"ids": (1, 2)},
    link=shop.audit.s(1, flag=True), link_error=shop.audit.s(),
)
assert_task_sent(shop.setflag, (1, [1, (2, True)], {"k": 0.5}), {"force": False, "when": None})
assert_task_sent(shop.setflag, [1, [1, [2, True]], {"k": 0.5}])
assert_task_sent(shop.setflag, priority=1, ignore_result=True, headers={"ids": [1, 2]},
                 link=shop.audit.s(1, flag=True), link_error=shop.audit.s())
assert_task_sent(shop.setflag, headers={"ids": (1, 2)}, link=[shop.audit], link_error="shop.audit")
""",
    )
    run().assert_outcomes(passed=1)


def test_pickled_messages_keep_tuples_apart_from_lists(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # With pickle the worker receives the tuple itself: a list is another type there.
    pytester.makepyfile(
        TASKS
        + """
@pytest.mark.celerybase(task_serializer="pickle", accept_content=["pickle", "json"])
def test_user(shop, sent_tasks):
    shop.setflag.delay((1, True), {True: 1.5})
    assert_task_sent(shop.setflag, ((1, True), {True: 1.5}))
    assert_task_not_sent(shop.setflag, ((1, 1), {True: 1.5}))
    assert_task_not_sent(shop.setflag, ((1, True), {1: 1.5}))
    assert_task_sent(shop.setflag, ([1, True], {True: 1.5}))
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_task_sent(shop.setflag, ([[]1, True], {True: 1.5}))",
            "E         + args=((1, True), {True: 1.5})",
        ]
    )


# -- item 6: empty and None options ------------------------------------------------------
LINK_CASES = {
    "link=[]": ("apply_async(link=shop.audit.s())", "link=[]", "link=[[]'shop.audit']"),
    "link=None": ("apply_async(link=shop.audit.s())", "link=None", "link=[[]'shop.audit']"),
    "link=()": ("apply_async(link=shop.audit.s())", "link=()", "link=[[]'shop.audit']"),
    "link_error=[]": ("apply_async(link_error=shop.audit.s())", "link_error=[]",
                      "link_error=[[]'shop.audit']"),
    "link_error=None": ("apply_async(link_error=shop.audit.s())", "link_error=None",
                        "link_error=[[]'shop.audit']"),
    "exchange=None": ("apply_async(exchange='events', routing_key='x')", "exchange=None",
                      "exchange='events'"),
    "exchange=''": ("apply_async(exchange='events', routing_key='x')", "exchange=''",
                    "exchange='events'"),
    "countdown=None": ("apply_async(countdown=60)", "countdown=None", "countdown=60.0 *"),
    "eta=None": ("apply_async(countdown=60)", "eta=None", "eta=*"),
    "expires=None": ("apply_async(expires=60)", "expires=None", "expires=60.0 *"),
    "priority=None": ("apply_async(priority=3)", "priority=None", "priority=3"),
    "shadow=None": ("apply_async(shadow='x')", "shadow=None", "shadow='x'"),
    "parent_id=None": ("apply_async(parent_id='p-1')", "parent_id=None", "parent_id='p-1'"),
    "time_limit=None": ("apply_async(time_limit=30)", "time_limit=None", "time_limit=30"),
    "soft_time_limit=None": ("apply_async(soft_time_limit=30)", "soft_time_limit=None",
                             "soft_time_limit=30"),
}


@pytest.mark.parametrize("case", LINK_CASES, ids=list(LINK_CASES))
def test_none_and_empty_options_mean_the_message_has_none(
    pytester: pytest.Pytester, run: RunPytest, case: str
) -> None:
    sent, option, shown = LINK_CASES[case]
    _user_test(
        pytester,
        f"""
shop.setflag.{sent}
assert_task_not_sent(shop.setflag, {option})
shop.setflag.delay()                 # a message without it
assert_task_sent(shop.setflag, {option}, count=1)
sent_tasks.clear()
shop.setflag.{sent}
assert_task_sent(shop.setflag, {option})
""",
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f">       assert_task_sent(shop.setflag, {option})",
            f"E       AssertionError: Expected task 'shop.setflag' to be sent with {option}, "
            "but no message matched.",
            f"E         - {option}",
            f"E         + {shown}",
        ]
    )


def test_options_that_every_message_has_refuse_none_and_empty(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _user_test(
        pytester,
        """
shop.setflag.apply_async(headers={"tenant": "eu"})
for option in ("headers", "serializer", "ignore_result", "retries"):
    with pytest.raises(TypeError, match=f"{option}= takes .*, got NoneType: None"):
        assert_task_sent(shop.setflag, **{option: None})
assert_task_not_sent(shop.setflag, headers={})
""",
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       ValueError: assert_task_not_sent(): headers={} would match every message "
            "(headers= lists the headers a message must include); name the headers to "
            "check, e.g. headers={'tenant': 'eu'}",
        ]
    )


# -- what did not happen never passes ----------------------------------------------------
NOT_HAPPENED = {
    "nothing-sent": ("pass", "assert_task_sent(shop.setflag)",
                     "*it was never sent in this test.",
                     "E       No task was sent in this test at all."),
    "another-task": ("shop.audit.delay(1)", "assert_task_sent(shop.setflag, (1,))",
                     "*it was never sent in this test.",
                     "E       Tasks sent in this test: 'shop.audit'"),
    "another-arg": ("shop.setflag.delay(2)", "assert_task_sent(shop.setflag, (1,))",
                    "*but no message matched.", "E         + args=(2,)"),
    "another-kwarg": ("shop.setflag.delay(force=1)", "assert_task_sent(shop.setflag, "
                      "kwargs={'force': 2})", "*but no message matched.",
                      "E         + kwargs={'force': 1}"),
    "another-count": ("shop.setflag.delay(1)", "assert_task_sent(shop.setflag, count=2)",
                      "*to be sent 2 time(s), but 1 message matched (marked [*]):",
                      "E         [*]#1 shop.setflag(1) *"),
    "another-parent-id": ("shop.setflag.apply_async(parent_id='p-1')",
                          "assert_task_sent(shop.setflag, parent_id='p-2')",
                          "*but no message matched.", "E         + parent_id='p-1'"),
    "not-sent-but-was": ("shop.setflag.delay(1)", "assert_task_not_sent(shop.setflag)",
                         "*not to be sent, but 1 message matched (marked [*]):",
                         "E         [*]#1 shop.setflag(1) *"),
    "filter-nothing-sent": (
        "pass",
        "assert sent_tasks.filter(shop.setflag)",
        "AssertionError: assert []",
        "",
    ),
    "filter-another-task": ("shop.audit.delay(1)", "assert sent_tasks.filter(shop.setflag)",
                            "AssertionError: assert []", ""),
    "filter-another-arg": ("shop.setflag.delay(2)",
                           "assert sent_tasks.filter(shop.setflag, args=(1,))",
                           "AssertionError: assert []", ""),
}


@pytest.mark.parametrize("case", NOT_HAPPENED, ids=list(NOT_HAPPENED))
def test_what_did_not_happen_fails(pytester: pytest.Pytester, run: RunPytest, case: str) -> None:
    sent, asserted, first, second = NOT_HAPPENED[case]
    _user_test(pytester, f"{sent}\n{asserted}\n")
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E       {first}", *([second] if second else [])])


# -- item 12: Celery.send_task left wrapped -----------------------------------------------
PATCHERS = {
    "monkeypatch": "monkeypatch.setattr(Celery, 'send_task', spy)",
    "mocker": "mocker.patch.object(Celery, 'send_task', spy)",
}


@pytest.mark.parametrize(
    "order",
    [
        "patcher, eager_app, sent_tasks",
        "eager_app, patcher, sent_tasks",
        "eager_app, sent_tasks, patcher",
    ],
)
@pytest.mark.parametrize("patcher", PATCHERS)
def test_send_task_is_restored_when_the_test_patched_it_too(
    pytester: pytest.Pytester, run: RunPytest, order: str, patcher: str
) -> None:
    # Left wrapped before with the first order: sent_tasks' teardown found the test's
    # patch in place and kept its own, which the patcher's undo then put back for good.
    fixtures = order.replace("patcher", patcher)
    pytester.makepyfile(
        f"""
from celery import Celery

ORIGINAL = Celery.send_task

def test_patches({fixtures}):
    calls = []
    wrapped = Celery.send_task
    def spy(self, name, *args, **kwargs):
        calls.append(name)
        return wrapped(self, name, *args, **kwargs)
    {PATCHERS[patcher]}
    eager_app.send_task("shop.audit")
    assert calls == ["shop.audit"] and len(sent_tasks) == 1

def test_next_test_sees_celery_as_it_was():
    assert Celery.send_task is ORIGINAL, Celery.send_task.__qualname__
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_delivered_messages_compare_types_too(pytester: pytest.Pytester, run: RunPytest) -> None:
    """With a worker in the test the messages are delivered, and the records keep the
    caller's objects: both sides go through the serializer before the strict comparison."""
    pytester.makepyfile(
        """
from pytest_celerybase import assert_task_not_sent, assert_task_sent

def test_user(live_worker, sent_tasks):
    @live_worker.app.task(name="shop.setflag")
    def setflag(*args, **kwargs):
        return None

    setflag.apply_async((1, (2, 0)), {"force": 0}, headers={"ids": (1,)}).get(timeout=10)
    assert_task_sent(setflag, [1, [2, 0]], {"force": 0}, headers={"ids": [1]})
    assert_task_not_sent(setflag, (1, (2, False)))
    assert_task_not_sent(setflag, kwargs={"force": False})
    assert_task_not_sent(setflag, headers={"ids": [True]})
    assert_task_sent(setflag, (True, (2, 0)))
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       assert_task_sent(setflag, (True, (2, 0)))",
            "E         + args=(1, (2, 0)) (equal with ==, but the message has 1, an int, where "
            "True, a bool, was expected)",
        ]
    )
