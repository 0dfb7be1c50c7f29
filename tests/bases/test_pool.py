"""ResourcePoolTask: bounded, thread-safe, acquire timeout, broken resources discarded."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import PoolTimeout, ResourcePool, ResourcePoolTask

SUCCESS = ["before_start", "on_success", "after_return"]


class Conn:
    """A stand-in for a client connection that knows whether it was closed."""

    ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self.ids)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Tracker:
    """Counts what the pool does, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: list[Conn] = []
        self.in_use = 0
        self.peak = 0

    def create(self) -> Conn:
        conn = Conn()
        with self.lock:
            self.created.append(conn)
        return conn

    def enter(self) -> None:
        with self.lock:
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)

    def leave(self) -> None:
        with self.lock:
            self.in_use -= 1


@pytest.fixture
def tracker() -> Tracker:
    return Tracker()


@pytest.fixture
def pooled(eager_app: Any, tracker: Tracker) -> Any:
    class TrackedPoolTask(ResourcePoolTask):
        pool_size = 3
        pool_acquire_timeout = 5.0

        def create_resource(self) -> Conn:
            return tracker.create()

    @eager_app.task(base=TrackedPoolTask, bind=True, max_retries=1)
    def use(self: Any, mode: str = "ok", hold: float = 0.0) -> int:
        with self.acquire_resource() as conn:
            tracker.enter()
            try:
                time.sleep(hold)
                if mode == "boom":
                    raise ConnectionResetError("peer reset the connection")
                if mode == "retry" and not self.request.retries:
                    raise self.retry(exc=TimeoutError("slow"), countdown=0)
            finally:
                tracker.leave()
            return int(conn.id)

    return use


def test_resource_is_reused(pooled: Any, tracker: Tracker) -> None:
    assert "_celerybase_pool" not in pooled.__dict__  # nothing made at declaration
    first = pooled.delay().get()
    second = pooled.delay().get()

    assert first == second
    assert len(tracker.created) == 1
    assert_hooks_called(pooled, SUCCESS * 2)


def test_eight_threads_never_exceed_the_pool(eager_app: Any, pooled: Any, tracker: Tracker) -> None:
    # Celery builds @app.task tasks lazily, and not thread-safely: finish that first.
    eager_app.finalize()
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(pooled.apply(kwargs={"hold": 0.005})))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(results) == 8 and all(r.successful() for r in results)
    assert tracker.peak <= 3
    assert len(tracker.created) <= 3
    assert pooled.resource_pool.in_use == 0
    assert pooled.resource_pool.idle == len(tracker.created)


def test_broken_resource_is_closed_not_returned(pooled: Any, tracker: Tracker) -> None:
    result = pooled.delay("boom")

    assert result.failed() and isinstance(result.result, ConnectionResetError)
    assert_hooks_called(pooled, ["before_start", "on_failure", "after_return"])
    [broken] = tracker.created
    assert broken.closed
    assert pooled.delay().get() != broken.id  # a new one was made
    assert pooled.resource_pool.idle == 1


def test_retry_discards_the_resource_then_succeeds(pooled: Any, tracker: Tracker) -> None:
    assert pooled.delay("retry").successful()

    assert_hooks_called(
        pooled, ["before_start", "on_retry", "before_start", "on_success", "after_return"]
    )
    assert [c.closed for c in tracker.created] == [True, False]


def test_acquire_timeout_is_a_clear_error(eager_app: Any) -> None:
    held = threading.Event()
    release = threading.Event()

    class OneSlot(ResourcePoolTask):
        pool_size = 1
        pool_acquire_timeout = 0.02

        def create_resource(self) -> Conn:
            return Conn()

    @eager_app.task(base=OneSlot, bind=True)
    def hog(self: Any, wait: bool) -> None:
        with self.acquire_resource():
            if wait:
                held.set()
                release.wait(10)

    holder = threading.Thread(target=hog.apply, args=((True,),))
    holder.start()
    try:
        assert held.wait(10)
        started = time.perf_counter()
        result = hog.delay(False)
        waited = time.perf_counter() - started
    finally:
        release.set()
        holder.join(10)

    assert result.failed()
    assert isinstance(result.result, PoolTimeout)
    message = str(result.result)
    assert f"resource pool of {hog.name}: no resource free after 0.02s" in message
    assert "all 1 are in use" in message and "pool_size" in message
    assert waited >= 0.015  # it waited its acquire timeout (0.02 s) before giving up
    assert hog.delay(False).successful()  # the slot is free again


def test_waiter_gets_a_released_resource() -> None:
    pool = ResourcePool(Conn, Conn.close, 1)
    first = pool.acquire(1)
    got: list[tuple[Conn, float]] = []
    waiter = threading.Thread(target=lambda: got.append((pool.acquire(5), time.monotonic())))
    waiter.start()
    waiter.join(0.05)
    assert waiter.is_alive() and got == []  # blocked: the only resource is in use
    released_at = time.monotonic()
    pool.release(first)
    waiter.join(5)
    [(resource, acquired_at)] = got
    assert resource is first and acquired_at >= released_at


def test_failed_creation_frees_its_slot() -> None:
    attempts = iter([OSError("refused"), None])

    def create() -> Conn:
        error = next(attempts)
        if error:
            raise error
        return Conn()

    pool = ResourcePool(create, Conn.close, 1)
    with pytest.raises(OSError, match="refused"):
        pool.acquire(0.01)
    assert isinstance(pool.acquire(0.01), Conn)


def test_close_closes_idle_resources() -> None:
    pool = ResourcePool(Conn, Conn.close, 2)
    a, b = pool.acquire(1), pool.acquire(1)
    pool.release(a)
    pool.close()
    assert a.closed and not b.closed
    pool.release(b, broken=True)
    assert b.closed and pool.in_use == 0


def test_invalid_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ResourcePool(Conn, Conn.close, 0)


def test_forked_child_starts_with_an_empty_pool(pooled: Any, tracker: Tracker, mocker: Any) -> None:
    pooled.delay().get()
    parent_pool = pooled.resource_pool
    mocker.patch("os.getpid", return_value=-1)

    assert pooled.resource_pool is not parent_pool
    # The parent's resources are dropped, not closed: the parent still uses them.
    assert not any(c.closed for c in tracker.created)


def test_close_pool(pooled: Any, tracker: Tracker) -> None:
    pooled.close_pool()  # nothing created yet: no-op
    pooled.delay().get()
    pooled.close_pool()
    assert all(c.closed for c in tracker.created)


def test_create_resource_must_be_defined(eager_app: Any) -> None:
    @eager_app.task(base=ResourcePoolTask, bind=True)
    def bare(self: Any) -> None:
        with self.acquire_resource():
            pass

    result = bare.delay()
    assert result.failed() and isinstance(result.result, NotImplementedError)
