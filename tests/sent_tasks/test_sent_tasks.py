"""The sent_tasks fixture as a user meets it: what is held, the records, run(), the mix
with other fixtures and apps.  Each test runs a test file through the plugin (pytester)."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest


def test_every_kind_of_send_is_held_and_nothing_runs(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
from celery import chain, chord, group
from pytest_celerybase import hook_calls

RAN = []

def test_it(eager_app, sent_tasks):
    @eager_app.task(name="shop.add")
    def add(x, y):
        RAN.append((x, y))
        return x + y

    @eager_app.task(name="shop.total")
    def total(values):
        RAN.append(values)
        return sum(values)

    add.delay(1, 2)
    add.apply_async((3, 4))
    eager_app.send_task("shop.add", (5, 6))
    add.s(7, 8).apply_async()
    add.signature((9, 10)).delay()
    chain(add.s(1, 1), add.s(10), add.s(100)).apply_async()  # one message, rest inside
    group(add.s(i, i) for i in range(3)).apply_async()  # one per task
    chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()  # one per header task

    assert [m.name for m in sent_tasks] == ["shop.add"] * 11
    assert [m.args for m in sent_tasks] == [
        (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (1, 1), (0, 0), (1, 1), (2, 2),
        (1, 1), (2, 2),
    ]
    assert len(sent_tasks.pending) == 11
    assert RAN == [] and hook_calls() == []  # eager_app published instead of running
    assert eager_app.conf["task_always_eager"] is True  # the setting itself is untouched

def test_after_the_fixture_the_eager_app_runs_eagerly_again(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y

    assert add.delay(1, 2).get() == 3
    assert type(add.delay(1, 2)).__name__ == "EagerResult"
"""
    )
    run().assert_outcomes(passed=2)


def test_messages_are_built_for_real(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from celery.exceptions import QueueNotFound
from kombu.exceptions import EncodeError

@pytest.mark.celerybase(task_routes={"shop.mail.*": {"queue": "mail"}})
def test_routing_serialization_and_arguments(eager_app, sent_tasks):
    @eager_app.task(name="shop.mail.receipt")
    def receipt(order_id):
        pass

    receipt.delay(1)
    assert sent_tasks[0].queue == "mail"  # task_routes applied
    assert sent_tasks[0].routing_key == "mail"

    with pytest.raises(EncodeError, match="not JSON serializable"):
        receipt.delay(object())  # what a worker could not receive fails at send time
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        receipt.delay()  # Celery's own argument check
    assert len(sent_tasks) == 1  # the failed sends left nothing behind

@pytest.mark.celerybase(task_create_missing_queues=False)
def test_unknown_queue(eager_app, sent_tasks):
    @eager_app.task
    def t():
        pass

    with pytest.raises(QueueNotFound):
        t.apply_async(queue="nowhere")
    assert len(sent_tasks) == 0

@pytest.mark.celerybase(
    task_serializer="pickle", result_serializer="pickle", accept_content=["json", "pickle"]
)
def test_another_serializer(eager_app, sent_tasks):
    @eager_app.task
    def t(value):
        return value

    t.delay({1, 2})  # a set: fine for pickle, impossible for JSON
    sent_tasks.assert_task_sent(t, ({1, 2},), serializer="pickle")
    assert sent_tasks[0].content_type == "application/x-python-serialize"
    assert sent_tasks.run()[0].get() == {1, 2}
"""
    )
    run().assert_outcomes(passed=3)


def test_queue_is_where_the_message_goes(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from kombu import Exchange, Queue

QUEUES = [Queue("celery"), Queue("mail", Exchange("mail", type="topic"), routing_key="mail.#")]

@pytest.mark.celerybase(task_queues=QUEUES)
def test_it(eager_app, sent_tasks):
    @eager_app.task(name="t.notify")
    def notify():
        pass

    notify.delay()
    notify.apply_async(queue="mail")  # a topic exchange bound to the queue
    notify.apply_async(exchange="events", routing_key="audit")  # the broker decides
    assert [m.queue for m in sent_tasks] == ["celery", "mail", None]
    assert [(m.exchange, m.routing_key) for m in sent_tasks] == [
        ("", "celery"), ("mail", "mail.#"), ("events", "audit")]
"""
    )
    run().assert_outcomes(passed=1)


def test_sent_task_records(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from datetime import timedelta
import pytest

@pytest.mark.celerybase(task_routes={"shop.remind": {"queue": "reminders", "priority": 3}})
def test_it(eager_app, sent_tasks):
    @eager_app.task(name="shop.remind", time_limit=30)
    def remind(user_id, channel="mail"):
        return (user_id, channel)

    @eager_app.task(name="shop.audit")
    def audit(value):
        pass

    result = remind.apply_async(
        (7,), {"channel": "sms"}, countdown=60, expires=3600,
        headers={"tenant": "eu"}, link=audit.s(),
    )
    plain = remind.delay(8)

    message = sent_tasks[0]
    assert message.name == "shop.remind"
    assert message.id == result.id
    assert message.args == (7,)
    assert message.kwargs == {"channel": "sms"}
    # what the caller chose, not the task's time_limit nor the route's queue and priority
    assert set(message.options) == {"countdown", "expires", "headers", "link"}
    assert message.fields()["timelimit"] == [30, None]
    assert message.options["countdown"] == 60
    assert message.queue == "reminders" and message.priority == 3
    assert message.headers["tenant"] == "eu"
    assert abs((message.eta - message.sent_at) - timedelta(seconds=60)) < timedelta(seconds=1)
    assert message.eta.tzinfo is not None
    assert abs(message.expires - (message.sent_at + timedelta(hours=1))) < timedelta(seconds=1)
    assert [c["task"] for c in message.callbacks] == ["shop.audit"]

    assert sent_tasks[1].options == {} and sent_tasks[1].eta is None
    assert sent_tasks[1].id == plain.id

    again = message.signature().apply_async()  # the same task, arguments and options
    assert sent_tasks[2].name == "shop.remind" and sent_tasks[2].id == again.id
    assert sent_tasks[2].args == (7,) and sent_tasks[2].options["countdown"] == 60
    assert repr(message) == (
        "<SentTask shop.remind(7, channel='sms') countdown=60 expires=3600 "
        f"headers={{'tenant': 'eu'}} link=['shop.audit'] [queue 'reminders'] id={message.id} "
        "held>"
    )
"""
    )
    run().assert_outcomes(passed=1)


def test_the_sequence_filter_pending_and_clear(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
def test_it(eager_app, sent_tasks):
    @eager_app.task(name="shop.ship")
    def ship(order_id):
        pass

    @eager_app.task(name="shop.bill")
    def bill(order_id):
        pass

    ship.delay(1)
    ship.apply_async((2,), countdown=30)
    bill.delay(1)

    assert len(sent_tasks) == 3 and bool(sent_tasks)
    assert [m.name for m in sent_tasks[1:]] == ["shop.ship", "shop.bill"]
    assert sent_tasks[-1].name == "shop.bill"
    assert [m.args for m in sent_tasks.filter(ship)] == [(1,), (2,)]
    assert [m.args for m in sent_tasks.filter("shop.ship", countdown=30)] == [(2,)]
    assert [m.name for m in sent_tasks.filter(args=(1,))] == ["shop.ship", "shop.bill"]
    assert sent_tasks.filter(bill, countdown=30) == []
    assert repr(sent_tasks) == "<SentTasks 3 sent, 3 held: shop.ship x2, shop.bill>"

    sent_tasks.run()
    assert len(sent_tasks) == 3 and sent_tasks.pending == []  # run() keeps the history

    ship.delay(3)
    assert [m.args for m in sent_tasks.pending] == [(3,)]
    sent_tasks.clear()
    assert len(sent_tasks) == 0 and sent_tasks.pending == []
    assert sent_tasks.run() == []  # cleared messages never run
"""
    )
    run().assert_outcomes(passed=1)


def test_run_runs_held_messages_like_a_worker(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
from celery import chain
from pytest_celerybase import assert_hooks_called, assert_lifecycle, assert_task_sent, hook_calls

OK = ["before_start", "on_success", "after_return"]

def test_fifo_results_hooks_and_what_tasks_send(eager_app, sent_tasks):
    order = []

    @eager_app.task(name="shop.add")
    def add(x, y):
        order.append(("add", x, y))
        return x + y

    @eager_app.task(name="shop.place")
    def place(order_id):
        order.append(("place", order_id))
        notify.apply_async((order_id,), countdown=600)  # a task sending a task
        return order_id

    @eager_app.task(name="shop.notify")
    def notify(order_id):
        order.append(("notify", order_id))
        return "sent"

    first = add.delay(1, 2)
    place.delay(42)
    chain(add.s(1, 1), add.s(10)).apply_async()
    add.apply_async((5, 5), link=notify.s())

    results = sent_tasks.run()

    # first in, first out; what the tasks sent was held and ran after them
    assert order == [("add", 1, 2), ("place", 42), ("add", 1, 1), ("add", 5, 5),
                     ("notify", 42), ("add", 2, 10), ("notify", 10)]
    assert [r.id for r in results] == [m.id for m in sent_tasks]  # one per message, in order
    assert [(m.name, r.state, r.result) for m, r in zip(sent_tasks, results)] == [
        ("shop.add", "SUCCESS", 3), ("shop.place", "SUCCESS", 42),
        ("shop.add", "SUCCESS", 2), ("shop.add", "SUCCESS", 10),
        ("shop.notify", "SUCCESS", "sent"), ("shop.add", "SUCCESS", 12),
        ("shop.notify", "SUCCESS", "sent"),
    ]
    assert first.get(timeout=1) == 3  # stored in the result backend, as a worker does
    assert sent_tasks[0].result.get() == 3
    assert_hooks_called(place, OK)
    assert_hooks_called(add, OK * 4)
    assert {c.task_id for c in hook_calls(notify)} == {m.id for m in sent_tasks.filter(notify)}
    # the messages sent by tasks are in the history, with their options and parent
    assert_task_sent(notify, (42,), countdown=600, parent_id=sent_tasks[1].id)
    assert_task_sent(add, (2, 10))  # the chain's second step
    assert len(sent_tasks) == 7 and sent_tasks.pending == []

def test_retries_are_new_messages_whose_countdown_is_not_waited(eager_app, sent_tasks):
    @eager_app.task(name="shop.flaky", bind=True, max_retries=3)
    def flaky(self):
        if self.request.retries < 2:
            raise self.retry(countdown=300)
        return "done"

    result = flaky.delay()
    states = [r.state for r in sent_tasks.run()]

    assert states == ["RETRY", "RETRY", "SUCCESS"]
    assert result.get(timeout=1) == "done"
    assert [m.id for m in sent_tasks] == [result.id] * 3  # retries keep the task id
    assert [m.fields()["retries"] for m in sent_tasks] == [0, 1, 2]
    assert_task_sent(flaky, countdown=300, count=2)
    assert_hooks_called(
        flaky, ["before_start", "on_retry", "before_start", "on_retry"] + OK
    )

def test_worker_signals_and_request(eager_app, sent_tasks):
    from celery import signals

    seen = []
    def on(name):
        def receiver(sender=None, **kwargs):
            seen.append(name)
        return receiver
    receivers = {name: on(name) for name in ("task_received", "task_prerun", "task_success",
                                              "task_postrun")}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, weak=False)

    @eager_app.task(name="shop.where", bind=True)
    def where(self):
        return (self.request.is_eager, self.request.delivery_info["routing_key"])

    try:
        where.delay()
        [result] = sent_tasks.run()
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
    assert seen == ["task_received", "task_prerun", "task_success", "task_postrun"]
    assert result.get() == (False, "celery")  # a worker's request, not an eager one
    # the timeline of a worker's execution, from the publication on
    assert_lifecycle(where, [
        "before_task_publish", "after_task_publish", "task_received", "task_prerun",
        "before_start", "on_success", "task_success", "after_return", "task_postrun",
    ])

def test_failures_are_results_not_exceptions(eager_app, sent_tasks):
    @eager_app.task(name="shop.boom")
    def boom():
        raise ValueError("card declined")

    boom.delay()
    [result] = sent_tasks.run()
    assert result.state == "FAILURE" and isinstance(result.result, ValueError)
    assert_hooks_called(boom, ["before_start", "on_failure", "after_return"])
"""
    )
    run().assert_outcomes(passed=4)


def test_run_stops_a_runaway_fan_out(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
import pytest
from pytest_celerybase import RunawayTasksError

def fan_out_task(app):
    @app.task(name="shop.fan_out")
    def fan_out(depth):
        fan_out.delay(depth + 1)
        fan_out.delay(depth + 1)
    return fan_out

def test_the_error(eager_app, sent_tasks):
    fan_out_task(eager_app).delay(0)
    sent_tasks.run(max_tasks=10)

def test_the_rest_stays_held(eager_app, sent_tasks):
    fan_out_task(eager_app).delay(0)
    with pytest.raises(RunawayTasksError):
        sent_tasks.run(max_tasks=10)
    assert len(sent_tasks) == 21 and len(sent_tasks.pending) == 11
    assert [m.result.state for m in sent_tasks[:10]] == ["SUCCESS"] * 10
    assert all(m.result is None for m in sent_tasks.pending)

def test_max_tasks_must_be_a_count(eager_app, sent_tasks):
    with pytest.raises(TypeError, match="max_tasks must be an int >= 0, got '10'"):
        sent_tasks.run(max_tasks="10")
"""
    )
    result = run()
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines(
        [
            ">       sent_tasks.run(max_tasks=10)",
            "E       pytest_celerybase.errors.RunawayTasksError: sent_tasks.run(max_tasks=10) "
            "ran 10 task(s) and 11 more are held: tasks keep sending tasks. Held now, by "
            "task (and the task that sent them):",
            "E         - 'shop.fan_out' x11 (sent by 'shop.fan_out')",
            "E       If that many is expected, pass a larger max_tasks; the held messages stay "
            "in sent_tasks.pending.",
        ]
    )
