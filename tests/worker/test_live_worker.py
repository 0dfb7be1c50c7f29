"""live_worker: a real in-process worker, fast, bounded, and clear when misused."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, shared_task
from celery.exceptions import NotRegistered

from pytest_celerybase import HookRecorder, assert_hooks_called, hook_calls
from pytest_celerybase.recorder.inflight import InFlight
from pytest_celerybase.worker import (
    LiveWorker,
    UnregisteredTaskError,
    WorkerStartError,
    WorkerStopError,
    live_defaults,
)
from pytest_celerybase.worker.options import BROKER_URL_ENV, RESULT_BACKEND_ENV
from tests.conftest import RunPytest
from tests.leak_guard import child_processes

WAIT = 5.0  # bound on every wait in these tests
REAL_BROKER = bool(os.environ.get(BROKER_URL_ENV))
memory_only = pytest.mark.skipif(REAL_BROKER, reason="about the in-memory broker")


@shared_task
def add(x: int, y: int) -> int:
    return x + y


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is not threading.main_thread()]


@pytest.fixture
def timeouts_waited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """What the live workers of this test waited out instead of being woken: a stop must
    wait for nothing but running tasks (Celery's own ``start_worker`` stops in ~4 s).

    Recorded, from any thread or prefork child: every sleep of 0.5 s or more (billiard's
    supervisor and time-limit loops, a child's exit, Celery's drain loop at stop) and
    every drain of the broker connection for 0.5 s or more (Celery's synchronous loop
    drains for 2 s; the worker's loop drains in 10 ms slices).  Celery's ETA timer idles
    in 1 s waits; here they never time out, so a timer that is not woken at stop hangs
    the stop (``WorkerStopError``) instead of slowing it.  Nothing is measured: a stop
    that took a timeout path is named.
    """
    from celery.utils.timer2 import Timer
    from kombu import Connection

    log = tmp_path / "timeouts-waited.log"
    parent = os.getpid()

    def note(text: str) -> None:
        with open(log, "a", encoding="utf-8") as f:  # appends cross processes whole
            f.write(f"{text} ({'test process' if os.getpid() == parent else 'child'})\n")

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds >= 0.5:
            note(f"slept {seconds:g} s")
        real_sleep(seconds)

    real_drain = Connection.drain_events

    def drain_events(self: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        if timeout is None or timeout >= 0.5:
            note(f"drained events with timeout={timeout}")
        return real_drain(self, timeout=timeout, **kwargs)

    real_wait = threading.Condition.wait

    def wait(self: threading.Condition, timeout: float | None = None) -> bool:
        if isinstance(threading.current_thread(), Timer) and timeout is not None:
            timeout = None  # the ETA timer's idle wait ends when it is woken, or never
        return real_wait(self, timeout)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(Connection, "drain_events", drain_events)
    monkeypatch.setattr(threading.Condition, "wait", wait)
    return lambda: log.read_text(encoding="utf-8").splitlines() if log.exists() else []


# -- the fixture ---------------------------------------------------------------------------
def test_shared_task_runs_on_the_worker(live_worker: LiveWorker) -> None:
    result = add.delay(2, 3)
    assert result.get(timeout=WAIT) == 5
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])
    # Executed by the worker thread, not eagerly in the test's thread.
    assert {c.thread for c in hook_calls(add)} == {live_worker.thread.name}  # type: ignore[union-attr]
    assert live_worker.app.conf.task_always_eager is False


def test_app_is_current_and_default_during_the_test(live_worker: LiveWorker) -> None:
    from celery import _state, current_app

    assert current_app._get_current_object() is live_worker.app
    assert _state.default_app is live_worker.app
    assert live_worker.running and live_worker.pool == "solo"


def test_task_declared_after_the_worker_started(live_worker: LiveWorker) -> None:
    @live_worker.app.task(rate_limit="1000/s")
    def mul(x: int, y: int) -> int:
        return x * y

    assert mul.delay(6, 7).get(timeout=WAIT) == 42
    assert_hooks_called(mul, ["before_start", "on_success", "after_return"])


def test_custom_task_class_and_failure(live_worker: LiveWorker) -> None:
    seen: list[str] = []

    class Audited(live_worker.app.Task):  # type: ignore[name-defined,misc]
        def on_failure(self, exc: BaseException, *args: Any) -> None:
            seen.append(f"failed: {exc}")

    @live_worker.app.task(base=Audited)
    def charge() -> None:
        raise ValueError("card declined")

    result = charge.delay()
    with pytest.raises(ValueError, match="card declined"):
        result.get(timeout=WAIT)
    assert_hooks_called(result, ["before_start", "on_failure", "after_return"])
    assert seen == ["failed: card declined"]


@pytest.mark.celerybase(worker_pool="threads", worker_concurrency=4)
def test_threads_pool_runs_tasks_concurrently(live_worker: LiveWorker) -> None:
    barrier = threading.Barrier(4, timeout=WAIT)

    @live_worker.app.task
    def meet(i: int) -> int:
        barrier.wait()  # only passes when four tasks run at the same time
        return i

    results = [meet.delay(i) for i in range(4)]
    assert sorted(r.get(timeout=WAIT) for r in results) == [0, 1, 2, 3]
    assert live_worker.pool == "threads" and live_worker.concurrency == 4
    assert len(hook_calls(meet)) == 12


@pytest.mark.celerybase(worker_concurrency=3)
def test_concurrency_alone_selects_the_threads_pool(live_worker: LiveWorker) -> None:
    assert (live_worker.pool, live_worker.concurrency) == ("threads", 3)


class TestConfigFixture:
    @pytest.fixture
    def celerybase_config(self) -> dict[str, Any]:
        return {"task_default_rate_limit": "500/s", "result_extended": True}

    def test_config_fixture_applies(self, live_worker: LiveWorker) -> None:
        assert live_worker.app.conf.task_default_rate_limit == "500/s"
        assert add.delay(1, 1).get(timeout=WAIT) == 2

    @pytest.mark.celerybase(result_extended=False)
    def test_marker_wins_over_the_fixture(self, live_worker: LiveWorker) -> None:
        assert live_worker.app.conf.result_extended is False


def test_hook_assertion_waits_for_slow_hooks(
    live_worker: LiveWorker, hook_recorder: HookRecorder
) -> None:
    @live_worker.app.task(bind=True)
    def slow_hooks(self: Any) -> str:
        return "ok"

    def slow_after_return(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.05)

    # An instance-level override, as mocker.spy would set: recorded, and it is slow.
    slow_hooks.after_return = slow_after_return
    result = slow_hooks.delay()
    assert result.get(timeout=WAIT) == "ok"  # returns before after_return finished
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])
    assert hook_recorder.wait_idle(timeout=0)


def test_result_get_is_allowed_in_the_test_thread(live_worker: LiveWorker) -> None:
    from celery._state import task_join_will_block

    assert task_join_will_block() is False
    assert add.delay(1, 2).get(timeout=WAIT) == 3


def test_in_flight_counts_from_the_start_of_a_publication() -> None:
    # A worker can run and finish a task before the publishing thread gets the
    # after_task_publish signal: the task must not then count as queued forever.
    inflight = InFlight()
    inflight.watch(lambda: {"t"})
    inflight.publishing("id-1", "t")  # before_task_publish
    seen: list[list[str]] = []  # by another thread (this one's would count as failed)
    other = threading.Thread(target=lambda: seen.append(inflight.busy()))
    other.start()
    other.join()
    assert seen == [["id-1"]]
    inflight.started("id-1", "t")
    inflight.finished("id-1")
    inflight.published("id-1", "t")  # after_task_publish, late
    assert inflight.wait_idle(timeout=0)
    # A publication that raised (EncodeError) is never confirmed: not in flight either.
    inflight.publishing("id-2", "t")
    assert inflight.busy() == []
    assert inflight.wait_idle(timeout=0)


# -- unregistered tasks --------------------------------------------------------------------
def test_unknown_task_name_fails_clearly(live_worker: LiveWorker) -> None:
    typo = add.name[:-1]  # "...ad"
    result = live_worker.app.send_task(typo)
    with pytest.raises(NotRegistered) as info:
        result.get(timeout=WAIT)
    assert isinstance(info.value, UnregisteredTaskError)
    message = str(info.value)
    assert f"task {typo!r} is not registered on the live worker's app 'celerybase'" in message
    assert f"Did you mean {add.name!r}?" in message
    assert "@live_worker.app.task" in message and "celerybase_app" in message
    assert live_worker.unregistered == [typo]


@memory_only
def test_task_of_another_app_names_that_app(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        test_other="""
from celery import Celery

def test_it(live_worker):
    other = Celery("billing", broker="memory://", backend="cache+memory://",
                   set_as_current=False)

    @other.task(shared=False)
    def invoice():
        return 1

    invoice.delay().get(timeout=5, interval=0.01)
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*UnregisteredTaskError: task 'test_other.invoice' is not registered on the live "
            "worker's app 'celerybase' (<Celery celerybase at 0x*>). It is registered on app "
            "'billing' (<Celery billing at 0x*>), which is not the worker's app. Fix: declare "
            "the task on the worker's app (@live_worker.app.task), with @shared_task*",
        ]
    )


# -- lifecycle: fast, bounded, nothing left behind -------------------------------------------
def test_start_and_stop_wait_out_no_timeout_and_leave_no_thread(
    timeouts_waited: Callable[[], list[str]],
) -> None:
    before = _worker_threads()
    app = Celery("lifecycle", set_as_current=False)
    app.conf.update(live_defaults())

    @app.task(shared=False)
    def ping() -> str:
        return "pong"

    for _ in range(3):
        with LiveWorker(app) as worker:
            assert ping.delay().get(timeout=WAIT) == "pong"
        assert not worker.running
    app.close()
    assert _worker_threads() == before
    assert timeouts_waited() == []


def test_countdown_task_runs_and_the_timer_thread_is_woken_at_stop(
    timeouts_waited: Callable[[], list[str]],
) -> None:
    before = _worker_threads()
    app = Celery("eta", set_as_current=False)
    app.conf.update(live_defaults())

    @app.task(shared=False)
    def later() -> str:
        return "later"

    # Celery's ETA timer thread idles in 1 s waits and sees a stop request only after
    # one; here they never time out: unless the stop wakes it, stop() fails.
    with LiveWorker(app, stop_timeout=WAIT) as worker:
        assert later.apply_async(countdown=0.05).get(timeout=WAIT) == "later"
        worker.stop()
    assert _worker_threads() == before
    assert timeouts_waited() == []
    app.close()


def test_stop_is_bounded_when_a_task_hangs() -> None:
    release = threading.Event()
    app = Celery("hang", set_as_current=False)
    app.conf.update(live_defaults())

    @app.task(shared=False)
    def stuck() -> None:
        release.wait(WAIT)

    worker = LiveWorker(app, stop_timeout=0.1)
    worker.start()
    try:
        stuck.delay()
        deadline = time.monotonic() + WAIT
        while not release.is_set() and time.monotonic() < deadline:
            from celery.worker import state

            if any(r.name == stuck.name for r in list(state.active_requests)):
                break
            time.sleep(0.005)
        with pytest.raises(
            WorkerStopError,
            match=r"did not stop within 0.1s \(task\(s\) "
            r"still running: .*stuck\[",
        ):
            worker.stop()
        # stop() returned on its timeout, not when the task did: the task still runs.
        assert worker.running and not release.is_set()
    finally:
        release.set()
        assert worker.thread is not None
        worker.thread.join(WAIT)
        worker.stop()  # idempotent; the thread has finished now
        app.close()
    assert not worker.running


def test_stop_wakes_an_event_loop_polling_for_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """kombu < 5.7's ``call_soon`` leaves the loop in its poll (up to 10 s over AMQP)."""
    import socket

    from kombu.asynchronous import Hub

    from pytest_celerybase.worker.controller import _stoppable_loop

    def call_soon(self: Hub, callback: Any, *args: Any) -> Any:
        from vine import promise

        callback = promise(callback, args)
        with self._ready_lock:
            self._ready.add(callback)  # no wake-up: the next poll is waited out
        return callback

    monkeypatch.setattr(Hub, "call_soon", call_soon)
    hub = Hub()
    idle_r, idle_w = socket.socketpair()  # a connection with nothing to read
    hub.add_reader(idle_r, lambda: None)
    hub.timer.call_after(3600, lambda: None)
    hub.fire_timers = lambda **_: 3600  # type: ignore[method-assign] # the poll's timeout
    polling = threading.Event()
    hub.on_tick.add(polling.set)  # called right before each poll

    def asynloop(*_: Any) -> None:
        loop = hub.create_loop()
        while True:
            next(loop)

    app = Celery("hub", set_as_current=False)
    app.conf.update(live_defaults())
    worker = LiveWorker(app, stop_timeout=WAIT)
    consumer_loop = _stoppable_loop(asynloop, worker._loop)
    ended: list[BaseException] = []

    def consume() -> None:
        try:
            consumer_loop(None, None, None, None, hub)
        except BaseException as exc:
            ended.append(exc)

    worker._thread = threading.Thread(target=consume, daemon=True)
    worker._thread.start()
    try:
        assert polling.wait(WAIT)
        worker.stop()  # a hub that is not woken would poll for an hour: WorkerStopError
        assert not worker.running
        assert [type(e).__name__ for e in ended] == ["WorkerShutdown"]
        assert worker._loop.hub_waker is None  # the loop's waker is closed with it
    finally:
        idle_w.send(b"x")  # ends a poll a failed stop left behind
        worker._thread.join(WAIT)
        hub.close()
        idle_r.close()
        idle_w.close()
        app.close()


def test_prefork_stop_failure_names_the_tasks_in_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import dataclass
    from types import SimpleNamespace

    from celery.worker import state

    @dataclass(frozen=True)
    class Request:  # what the message reads of Celery's Request
        name: str
        id: str
        hostname: str

    app = Celery("names", set_as_current=False)
    app.conf.update(live_defaults())
    worker = LiveWorker(app, pool="prefork", stop_timeout=0.5)
    running = Request("t.runs", "1", worker.hostname)
    monkeypatch.setattr(state, "active_requests", {running, Request("t.other", "2", "elsewhere")})
    # The pool's parent had not read yet that a child started "3".
    worker.controller = SimpleNamespace(pool=SimpleNamespace(deliveries={"1": "t.runs",
                                                                         "3": "t.child"}))
    assert worker._stop_failure().startswith(
        "live_worker did not stop within 0.5s (task(s) still running: t.runs[1]; task(s) in "
        "the pool, not finished: t.child[3]); its prefork children were killed"
    )
    monkeypatch.setattr(state, "active_requests", set())
    worker.controller = None
    assert "(no task running)" in worker._stop_failure()
    app.close()


def test_hanging_task_fails_the_test_at_teardown(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        test_hang="""
import time
import pytest

@pytest.mark.celerybase(celerybase_worker_stop_timeout=0.05)
def test_it(live_worker):
    @live_worker.app.task
    def slow():
        time.sleep(0.3)

    slow.delay()
    time.sleep(0.05)
"""
    )
    result = run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*WorkerStopError: live_worker did not stop within 0.05s (task(s) still running: "
            "test_hang.slow*"
        ]
    )
    deadline = time.monotonic() + WAIT
    while _worker_threads() and time.monotonic() < deadline:
        time.sleep(0.01)  # the sleeping task finishes, then the worker thread ends
    assert _worker_threads() == []


def test_inner_session_leaves_no_thread(
    pytester: pytest.Pytester, run: RunPytest, timeouts_waited: Callable[[], list[str]]
) -> None:
    pytester.makepyfile(
        test_many="""
import pytest
from celery import shared_task
from pytest_celerybase import assert_hooks_called

@shared_task(bind=True, default_retry_delay=0)
def flaky(self):
    if self.request.retries < 1:
        raise self.retry()
    return "ok"

@pytest.mark.parametrize("n", range(5))
def test_solo(live_worker, n):
    assert flaky.delay().get(timeout=5) == "ok"
    assert_hooks_called(flaky, ["before_start", "on_retry", "before_start", "on_success",
                                "after_return"])

@pytest.mark.celerybase(worker_pool="threads", worker_concurrency=4)
def test_threads(live_worker):
    assert [flaky.delay().get(timeout=5) for _ in range(4)] == ["ok"] * 4

def test_failing(live_worker):
    assert flaky.delay().get(timeout=5) == "not ok"

@shared_task
def ok():
    return "ok"

@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
def test_prefork(live_worker):
    # Not flaky: with two children, an immediate retry can run in the other child
    # before the first attempt stores RETRY, which then overwrites the result.
    assert [ok.delay().get(timeout=5) for _ in range(2)] == ["ok"] * 2
    assert live_worker.child_pids()

@pytest.mark.celerybase(worker_pool="gevent")
def test_bad_pool(live_worker):
    pass
"""
    )
    before = _worker_threads()
    result = run("-p", "tests.leak_guard")
    result.assert_outcomes(passed=7, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ValueError: live_worker runs in-process, so worker_pool must "
            "be one of 'solo', 'threads', 'prefork', got 'gevent'*"
        ]
    )
    assert _worker_threads() == before
    assert child_processes() == []
    # Seven workers (solo, threads, prefork) started and stopped, none waiting anything out.
    assert timeouts_waited() == []


def test_settings_are_checked() -> None:
    app = Celery("bad", set_as_current=False)
    app.conf.update(live_defaults())
    with pytest.raises(
        ValueError, match="worker_pool must be one of 'solo', 'threads', 'prefork', got 'eventlet'"
    ):
        LiveWorker(app, pool="eventlet")
    with pytest.raises(ValueError, match="solo pool runs one task at a time"):
        LiveWorker(app, pool="solo", concurrency=2)
    with pytest.raises(ValueError, match="worker_concurrency must be an int >= 1"):
        LiveWorker(app, concurrency=0)
    # what a traceback through __init__'s checks shows for `self`
    assert repr(LiveWorker.__new__(LiveWorker)) == "<LiveWorker (not initialized)>"
    app.close()


def test_unreachable_broker_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import kombu.utils.functional

    # kombu sleeps 2 s before its one reconnection attempt: not this test's subject.
    monkeypatch.setattr(kombu.utils.functional, "sleep", lambda seconds: None)
    app = Celery("down", set_as_current=False)
    app.conf.update(live_defaults({}), broker_url="redis://127.0.0.1:1//")
    before = _worker_threads()
    worker = LiveWorker(app, start_timeout=WAIT)
    # "failed to start" (the crash, reported as soon as the worker thread ended), not
    # "was not consuming within 5s" (the start time-out)
    with pytest.raises(
        WorkerStartError,
        match="failed to start on broker "
        r"'redis://127.0.0.1:1//': \w*Error: .*Connection refused",
    ):
        worker.start()
    assert _worker_threads() == before
    assert not worker.running
    app.close()


@memory_only
def test_leftover_messages_of_earlier_tests_are_purged() -> None:
    # A test with a non-eager app and nobody consuming leaves its message in the
    # process-wide memory broker; the next worker must not run it.
    sender = Celery("sender", set_as_current=False)
    sender.conf.update(broker_url="memory://")
    sender.send_task("nobody.consumes.this")
    app = Celery("receiver", set_as_current=False)
    app.conf.update(live_defaults())

    @app.task(shared=False)
    def ping() -> str:
        return "pong"

    with LiveWorker(app) as worker:
        assert ping.delay().get(timeout=WAIT) == "pong"
    assert worker.unregistered == []
    sender.close()
    app.close()


# -- configuration -------------------------------------------------------------------------
def test_live_defaults_follow_the_environment() -> None:
    assert live_defaults({})["broker_url"] == "memory://localhost/"
    assert live_defaults({})["result_backend"] == "cache+memory://"
    redis = live_defaults({BROKER_URL_ENV: "redis://127.0.0.1:6390/0"})
    assert redis["broker_url"] == redis["result_backend"] == "redis://127.0.0.1:6390/0"
    assert redis["task_default_queue"].startswith("celerybase.")  # private per worker
    amqp = live_defaults(
        {BROKER_URL_ENV: "amqp://localhost//", RESULT_BACKEND_ENV: "redis://localhost/1"}
    )
    assert (amqp["broker_url"], amqp["result_backend"]) == (
        "amqp://localhost//",
        "redis://localhost/1",
    )


def test_project_app_from_ini(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        proj_celery="""
from celery import Celery

app = Celery("proj", set_as_current=False)
app.conf.update(broker_url="redis://example.invalid:6379/0", worker_pool="prefork")

@app.task
def double(x):
    return 2 * x
"""
    )
    pytester.makeini("[pytest]\ncelerybase_app = proj_celery:app\n")
    pytester.makepyfile(
        test_proj="""
import proj_celery
from pytest_celerybase import assert_hooks_called

def test_worker_runs_the_project_app(live_worker):
    assert live_worker.app is proj_celery.app
    assert proj_celery.double.delay(21).get(timeout=5) == 42
    assert_hooks_called(proj_celery.double, ["before_start", "on_success", "after_return"])

def test_project_config_is_restored_after():
    assert proj_celery.app.conf.broker_url == "redis://example.invalid:6379/0"
    assert proj_celery.app.conf.worker_pool == "prefork"
"""
    )
    run("-p", "no:randomly").assert_outcomes(passed=2)
