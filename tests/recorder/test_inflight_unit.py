"""Unit tests of the live-worker in-flight bookkeeping (pytest_celerybase.recorder.inflight).

The events arrive in the order Celery produces them (``before_task_publish``, a worker
starts and finishes the execution, ``after_task_publish`` — possibly after the worker has
already finished); what is observable is :meth:`InFlight.busy` and :meth:`InFlight.wait_idle`.
A publication not yet confirmed counts for other threads only: the publishing thread's own
unconfirmed publications are ones that raised (a thread publishes one message at a time).
"""

from __future__ import annotations

import threading
from typing import Any

from pytest_celerybase.recorder.inflight import InFlight


def _busy_seen_from_another_thread(inflight: InFlight) -> list[str]:
    seen: list[list[str]] = []
    other = threading.Thread(target=lambda: seen.append(inflight.busy()))
    other.start()
    other.join()
    return seen[0]


def _watching(*names: str) -> InFlight:
    inflight = InFlight()
    inflight.watch(lambda: set(names))
    return inflight


def test_only_watched_tasks_count() -> None:
    inflight = InFlight()
    assert inflight.is_worker_task("a") is False
    inflight.watch(lambda: {"a"})
    assert inflight.is_worker_task("a") is True and inflight.is_worker_task("b") is False
    inflight.published("1", "a")
    inflight.published("2", "b")
    assert inflight.busy() == ["1"]

    def torn_down() -> Any:
        raise RuntimeError("app torn down")

    inflight.watch(torn_down)  # a broken app must not break publishing
    assert inflight.is_worker_task("a") is False
    inflight.watch(None)
    assert inflight.is_worker_task("a") is False


def test_published_executions_are_busy_until_finished() -> None:
    inflight = _watching("w")
    inflight.published("1", "w")
    inflight.published("1", "w")  # e.g. a retry re-sent with the same id
    assert inflight.busy() == ["1"]
    assert inflight.busy("w") == ["1"] and inflight.busy("other") == []
    assert inflight.busy(task_id="2") == []
    assert inflight.wait_idle(task_id="1", timeout=0) is False
    inflight.started("1", "w")  # counted by the publication already
    inflight.finished("1")
    assert inflight.busy() == ["1"]  # one of two done
    inflight.finished("1")
    assert inflight.busy() == [] and inflight.wait_idle(timeout=0) is True
    inflight.finished("never-seen")  # unknown ids are ignored
    assert inflight.busy() == []


def test_an_execution_nobody_saw_published_counts_from_its_start() -> None:
    inflight = InFlight()  # e.g. a message sent before the test began
    inflight.started("x", "t")
    assert inflight.busy("t") == ["x"]
    inflight.finished("x")
    assert inflight.busy() == []


def test_a_publication_counts_from_its_start() -> None:
    # A worker can run and finish a task before the publishing thread gets the
    # after_task_publish signal: the late confirmation must not count it again.
    inflight = _watching("w")
    inflight.publishing("a", "w")
    assert _busy_seen_from_another_thread(inflight) == ["a"]
    inflight.started("a", "w")
    inflight.finished("a")
    inflight.published("a", "w")  # confirmed late: not counted again
    assert _busy_seen_from_another_thread(inflight) == []


def test_a_confirmed_publication_is_counted_once() -> None:
    inflight = _watching("w")
    inflight.publishing("a", "w")
    inflight.published("a", "w")
    assert inflight.busy() == ["a"]
    inflight.finished("a")
    assert inflight.busy() == []


def test_an_unconfirmed_publication_of_this_thread_failed() -> None:
    inflight = _watching("w")
    inflight.publishing("a", "w")  # raised (e.g. EncodeError): never confirmed
    assert _busy_seen_from_another_thread(inflight) == ["a"]
    assert inflight.busy() == []  # this thread's next look drops it
    inflight.publishing("b", "w")
    inflight.publishing("c", "w")  # the next publication drops the failed "b"
    assert _busy_seen_from_another_thread(inflight) == ["c"]
    inflight.publishing("d", "other")  # not a worker task: not counted
    assert "d" not in _busy_seen_from_another_thread(inflight)


def test_another_threads_unconfirmed_publication_is_left_alone() -> None:
    inflight = _watching("w")
    other = threading.Thread(target=inflight.publishing, args=("d", "w"))
    other.start()
    other.join()
    assert inflight.busy() == ["d"]  # not this thread's to drop
    assert inflight.wait_idle(timeout=0.01) is False


def test_wait_idle_wakes_when_another_thread_finishes() -> None:
    inflight = InFlight()
    inflight.started("a", "t")
    assert inflight.wait_idle(timeout=0.05) is False
    timer = threading.Timer(0.05, inflight.finished, ("a",))
    timer.start()
    try:
        assert inflight.wait_idle("t", timeout=5) is True
    finally:
        timer.join()


def test_a_redelivery_that_starts_before_the_lost_delivery_ends_is_waited_for() -> None:
    # The first child dies; the message comes again (nobody published it again) and its
    # second delivery starts before the first one's end is reported.
    inflight = _watching("a")
    inflight.published("1", "a")
    inflight.started("1", "a")  # first delivery, takes the publication over
    inflight.started("1", "a")  # the redelivery
    inflight.finished("1")  # the lost first delivery ends
    assert inflight.busy() == ["1"]  # the redelivery still runs
    inflight.finished("1")
    assert inflight.busy() == []


def test_a_retry_takes_over_its_own_publication() -> None:
    inflight = _watching("a")
    inflight.published("1", "a")
    inflight.started("1", "a")
    inflight.published("1", "a")  # the attempt publishes its retry
    inflight.started("1", "a")  # the retry starts before the attempt's end is reported
    inflight.finished("1")
    assert inflight.busy() == ["1"]
    inflight.finished("1")
    assert inflight.busy() == []


def test_a_message_dropped_unrun_ends_its_count() -> None:
    inflight = _watching("a")
    inflight.published("1", "a")
    inflight.finished("1")  # revoked/expired: no execution started
    assert inflight.busy() == []
