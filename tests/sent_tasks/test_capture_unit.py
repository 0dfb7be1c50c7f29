"""capture_sent_tasks() used directly (outside the fixture): nesting, what is undone on
exit, and records of held and delivered messages."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from celery.app.utils import Settings

from pytest_celerybase import (
    NoSentTasksError,
    SentTasks,
    capture_sent_tasks,
)
from pytest_celerybase.sent_tasks.collection import current_sent_tasks


def _add_task(app: Celery) -> Any:
    @app.task(name="unit.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    return add


def test_everything_is_undone_on_exit(eager_app: Celery) -> None:
    add = _add_task(eager_app)
    send_task = Celery.send_task
    with capture_sent_tasks() as sent:
        assert Celery.send_task is not send_task
        assert eager_app.conf.task_always_eager is False
        add.delay(1, 2)
        assert eager_app.backend.__dict__.get("on_task_call") is not None
    assert Celery.send_task is send_task
    assert "task_always_eager" not in Settings.__dict__
    assert eager_app.conf.task_always_eager is True
    assert "on_task_call" not in eager_app.backend.__dict__
    assert len(sent) == 1  # the records outlive the block
    assert add.delay(1, 2).get() == 3  # eager again


def test_the_innermost_capture_gets_the_messages(eager_app: Celery) -> None:
    add = _add_task(eager_app)
    with capture_sent_tasks() as outer:
        add.delay(1, 1)
        with capture_sent_tasks() as inner:
            add.delay(2, 2)
            assert current_sent_tasks() is inner
        add.delay(3, 3)
        assert current_sent_tasks() is outer
    assert [m.args for m in outer] == [(1, 1), (3, 3)]
    assert [m.args for m in inner] == [(2, 2)]
    with pytest.raises(NoSentTasksError):
        current_sent_tasks()


def test_a_delivering_capture_inside_a_holding_one_delivers(eager_app: Celery) -> None:
    add = _add_task(eager_app)
    with capture_sent_tasks() as held:
        with capture_sent_tasks(hold=False) as delivered:
            result = add.delay(4, 4)
            assert result.get() == 8  # eager again: nothing is held in here
            add.apply_async((5, 5), countdown=1)
        add.delay(6, 6)
    assert [m.args for m in held] == [(6, 6)]
    assert list(delivered) == []  # eager_app ran both in place: no message was sent


def test_records_of_delivered_messages(eager_app: Celery) -> None:
    eager_app.conf.task_always_eager = False  # publish to the in-memory broker
    add = _add_task(eager_app)
    with capture_sent_tasks(hold=False) as sent:
        add.apply_async((1, 2), countdown=30, priority=4)
    [message] = sent
    assert not message.held and sent.pending == []
    assert message.args == (1, 2) and message.kwargs == {}
    assert message.options == {"countdown": 30, "priority": 4}
    assert message.queue == "celery" and message.priority == 4
    assert message.serializer == "json" and message.content_type is None
    sent.assert_task_sent(add, (1, 2), countdown=30, serializer="json")
    assert "delivered" in repr(message)
    assert isinstance(sent, SentTasks) and sent.holding is False
    with eager_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
