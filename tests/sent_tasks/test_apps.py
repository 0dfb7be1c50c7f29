"""sent_tasks with a project app, a live worker, threads and other fixtures; what run()
refuses the way a worker would; and that nothing of it outlives the test."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

# A project app as projects write it: a real broker URL, resolvable nowhere.  The inner
# tests fail on any attempt to resolve a host name or open a connection.
PROJECT = """
from celery import Celery

app = Celery("proj", broker="amqp://guest@broker.invalid:5672//", set_as_current=False)
{config}

@app.task(name="proj.welcome")
def welcome(user_id):
    return f"welcome {{user_id}}"

@app.task(name="proj.signup")
def signup(user_id):
    welcome.apply_async((user_id,), countdown=60)
    return user_id
"""

NO_NETWORK = """
import socket
import pytest

ATTEMPTS = []

@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        ATTEMPTS.append(args)
        raise OSError(f"network access in a test: {args!r}")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield
    assert ATTEMPTS == []
"""


def test_a_project_app_with_an_unreachable_broker_sends_without_network(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(proj=PROJECT.format(config=""))
    pytester.makeini("[pytest]\ncelerybase_app = proj:app\n")
    pytester.makeconftest(NO_NETWORK)
    pytester.makepyfile(
        """
from celery import chain, group
from proj import app, signup, welcome
from pytest_celerybase import assert_task_sent

def test_held_and_run_without_eager_app(sent_tasks):
    signup.delay(7)
    welcome.apply_async((8,), countdown=10)
    app.send_task("proj.welcome", (9,))
    chain(signup.s(1), welcome.s()).apply_async()
    group(welcome.s(i) for i in range(2)).apply_async()

    assert [m.name for m in sent_tasks] == ["proj.signup"] + ["proj.welcome"] * 2 + [
        "proj.signup"] + ["proj.welcome"] * 2
    assert_task_sent(welcome, (8,), countdown=10, queue="celery")

    results = sent_tasks.run()  # no result backend configured: the results come back
    assert [r.result for r in results][:3] == [7, "welcome 8", "welcome 9"]
    assert_task_sent(welcome, (7,), countdown=60)  # sent by signup when it ran

def test_held_with_eager_app_too(eager_app, sent_tasks):
    assert eager_app is app and app.conf.task_always_eager is False  # publishing
    result = signup.delay(3)
    assert_task_sent(signup, (3,))
    sent_tasks.run()
    assert result.get(timeout=1) == 3  # eager_app's in-memory result backend
"""
    )
    run().assert_outcomes(passed=2)


def test_a_redis_result_backend_is_not_contacted_for_a_held_message(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    config = 'app.conf.result_backend = "redis://redis.invalid:6379/1"'
    pytester.makepyfile(proj=PROJECT.format(config=config))
    pytester.makeconftest(NO_NETWORK)
    pytester.makepyfile(
        """
from proj import app, welcome

def test_it(sent_tasks):
    welcome.delay(1)  # Redis would subscribe to the result here: skipped, it is held
    welcome.apply_async((2,), countdown=5)
    app.send_task("proj.welcome", (3,))
    assert [m.args for m in sent_tasks] == [(1,), (2,), (3,)]
"""
    )
    run().assert_outcomes(passed=1)


def test_with_live_worker_messages_are_recorded_and_delivered(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_hooks_called, assert_task_sent

def tasks(app):
    @app.task(name="w.add")
    def add(x, y):
        return x + y

    @app.task(name="w.double_then_add")
    def double_then_add(x):
        return add.delay(x, x).id

    return add, double_then_add

def test_delivered(live_worker, sent_tasks):
    add, double_then_add = tasks(live_worker.app)
    assert add.delay(1, 2).get(timeout=10) == 3  # the worker ran it
    child_id = double_then_add.delay(4).get(timeout=10)
    assert live_worker.app.AsyncResult(child_id).get(timeout=10) == 8

    assert sent_tasks.holding is False
    assert [m.name for m in sent_tasks] == ["w.add", "w.double_then_add", "w.add"]
    assert_task_sent(add, (4, 4), parent_id=sent_tasks[1].id)  # sent in the worker thread
    assert not any(m.held for m in sent_tasks) and sent_tasks.pending == []
    assert_hooks_called(add, ["before_start", "on_success", "after_return"] * 2)
    with pytest.raises(RuntimeError, match="nothing is held in this test: with live_worker"):
        sent_tasks.run()

def test_assertions_wait_for_due_tasks_not_for_those_due_later(
    live_worker, sent_tasks, hook_recorder, mocker
):
    add, double_then_add = tasks(live_worker.app)
    later = add.apply_async((9, 9), countdown=3600)  # the worker holds it for an hour
    double_then_add.delay(5)  # due now: what it sends is waited for (no result.get())
    waits = mocker.spy(hook_recorder, "wait_idle")
    assert_task_sent(add, (5, 5))
    assert later.id not in {c.kwargs.get("task_id") for c in waits.call_args_list}

def test_fixture_order_does_not_matter(sent_tasks, live_worker):
    add, _ = tasks(live_worker.app)
    assert add.delay(2, 3).get(timeout=10) == 5
    assert_task_sent(add, (2, 3))
"""
    )
    run().assert_outcomes(passed=3)


def test_on_a_prefork_worker_what_children_send_is_recorded(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest
from celery import shared_task
from pytest_celerybase import assert_task_not_sent, assert_task_sent

@shared_task(name="pf.add")
def add(x, y):
    return x + y

@shared_task(name="pf.fan_out")
def fan_out(n):
    for i in range(n):
        add.apply_async((i, i), countdown=0)
    return n

@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=1)
def test_it(live_worker, sent_tasks):
    assert fan_out.delay(3).get(timeout=10) == 3  # ran in a child process
    # no sleep: the assertions wait until the worker has nothing in flight
    assert_task_sent(add, count=3, countdown=0, parent_id=sent_tasks[0].id)
    assert_task_not_sent(add, (3, 3))
    assert [m.name for m in sent_tasks] == ["pf.fan_out"] + ["pf.add"] * 3
    assert sent_tasks[1].app is live_worker.app and sent_tasks[1].queue == "celery"
"""
    )
    run().assert_outcomes(passed=1)


def test_run_refuses_what_a_worker_would_refuse(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from datetime import datetime, timedelta, timezone
import pytest
from celery import signals
from celery.exceptions import Reject
from kombu.exceptions import ContentDisallowed
from pytest_celerybase import UnregisteredSentTaskError, assert_hooks_called

@pytest.mark.celerybase(task_serializer="pickle")  # accept_content stays ["json"]
def test_a_serializer_the_worker_does_not_accept(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    add.delay(1, 2)
    with pytest.raises(ContentDisallowed, match=(
        r"a worker of app 'celerybase' would refuse the message of task 't.add': .*pickle"
        r".*accept_content is \\['json'\\]"
    )):
        sent_tasks.run()
    assert len(sent_tasks.pending) == 1

def test_a_task_the_app_does_not_have(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    eager_app.send_task("t.ad", (1, 2))
    with pytest.raises(UnregisteredSentTaskError, match=(
        "a message of task 't.ad' was sent, but app 'celerybase' has no task of that name: "
        "a worker of this app would discard it as unregistered; did you mean 't.add'"
    )):
        sent_tasks.run()

def test_an_expired_message_is_revoked_not_run(eager_app, sent_tasks):
    revoked = []
    signals.task_revoked.connect(lambda request=None, expired=None, **_: revoked.append(expired),
                                 weak=False, dispatch_uid="test-revoked")
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    try:
        result = add.apply_async((1, 2), expires=datetime.now(timezone.utc) - timedelta(seconds=5))
        [outcome] = sent_tasks.run()
    finally:
        signals.task_revoked.disconnect(dispatch_uid="test-revoked")
    assert outcome.state == "REVOKED" and result.state == "REVOKED"
    assert revoked == [True]
    assert_hooks_called(add, [])

def test_reject_is_not_redelivered(eager_app, sent_tasks):
    runs = []

    @eager_app.task(name="t.picky")
    def picky():
        runs.append(1)
        raise Reject("not now", requeue=True)

    picky.delay()
    assert [r.state for r in sent_tasks.run()] == ["REJECTED"]
    assert runs == [1] and sent_tasks.pending == []
"""
    )
    run().assert_outcomes(passed=4)


def test_threads_sending_at_once(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import threading

def test_it(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    def send(base):
        for i in range(25):
            add.delay(base, i)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent_tasks) == 100 and len({m.id for m in sent_tasks}) == 100
    assert sorted(m.args for m in sent_tasks) == sorted((n, i) for n in range(4) for i in range(25))
    assert sorted(r.result for r in sent_tasks.run()) == sorted(
        n + i for n in range(4) for i in range(25))
"""
    )
    run().assert_outcomes(passed=1)


def test_task_protocol_1(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import assert_task_sent

@pytest.mark.celerybase(task_protocol=1)
def test_it(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    result = add.apply_async((1, 2), countdown=30)
    assert sent_tasks[0].id == result.id and sent_tasks[0].args == (1, 2)
    assert_task_sent(add, (1, 2), countdown=30)
    assert sent_tasks.run()[0].result == 3
"""
    )
    run().assert_outcomes(passed=1)


def test_held_result_get_fails_at_once_and_hook_hint_says_run(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
from pytest_celerybase import assert_hooks_called

def test_get(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    add.delay(1, 2).get(timeout=30)

def test_get_after_run(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    result = add.delay(1, 2)
    sent_tasks.run()
    assert result.get(timeout=1) == 3

def test_hint(eager_app, sent_tasks):
    @eager_app.task(name="t.add")
    def add(x, y):
        return x + y

    add.delay(1, 2)
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
"""
    )
    result = run()
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines(
        [
            ">       add.delay(1, 2).get(timeout=30)",
            "E       pytest_celerybase.errors.HeldMessageError: result.get() of task 't.add' "
            "(id *): its message is held by sent_tasks and has not run, so no result will "
            "ever come; call sent_tasks.run() first (or assert on the message with "
            "assert_task_sent)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       Hint: the task was sent 1 time(s) during this test and the message is "
            "held by sent_tasks, which runs nothing by itself: call sent_tasks.run() to run "
            "the held messages the way a worker would",
        ]
    )


def test_nothing_outlives_the_test(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from celery import Celery
from celery.app.utils import Settings

SEND_TASK = Celery.send_task

def test_holding(eager_app, sent_tasks):
    assert Celery.send_task is not SEND_TASK
    assert "task_always_eager" in Settings.__dict__

def test_after(eager_app):
    assert Celery.send_task is SEND_TASK
    assert "task_always_eager" not in Settings.__dict__
    assert eager_app.backend.__dict__.get("on_task_call") is None
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=2)
