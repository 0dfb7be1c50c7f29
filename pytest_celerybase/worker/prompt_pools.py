"""billiard's process pools made prompt and safe inside a test process (no pytest).

billiard sleeps 1 s after each child exit, 0.8 s between supervisor checks and 1 s
between time-limit checks: a stop, a lost child or a time limit would cost seconds.  The
classes here wait on events instead and check every 20 ms.  Checking that often also
opens a race billiard's slow supervisor hides: it joins an exited child (closing the
child's sentinel) while the time-limit thread waits on that sentinel after a hard time
limit's SIGTERM; the thread then dies of ``ValueError: invalid file descriptor`` and
billiard ends the whole process (``os._exit(1)``: the test session, silently).  Both
sides take one lock here.

A hard time limit's delivery ends (``end_hard_timeout``, see :mod:`._prefork`) only once
the child is gone, so the events the child sent while dying (its ``task_postrun``, sent
as billiard's SIGTERM unwinds the task) are read before anyone looks.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from billiard import pool as bpool
from celery.concurrency import asynpool
from celery.concurrency.asynpool import AsynPool

__all__ = ["CHECK_INTERVAL", "TERM_GRACE", "PromptAsynPool", "PromptPool"]

CHECK_INTERVAL = 0.02  # seconds between supervisor / time-limit checks (billiard: 0.8 / 1)
TERM_GRACE = 0.1  # billiard's wait between SIGTERM and SIGKILL of a timed-out child


class _KeepsTheTestProcess:
    """billiard ends the whole process (``os._exit(1)``) when a pool thread crashes: in
    a worker process that is a reasonable last resort, in the test process it kills the
    test session without a report.  Log the crash instead; the live worker then fails
    to stop in time and says so."""

    def run(self) -> Any:
        try:
            return self.body()  # type: ignore[attr-defined]
        except Exception as exc:
            bpool.error("Thread %r crashed: %r", type(self).__name__, exc, exc_info=1)
            return None


class _PromptSupervisor(_KeepsTheTestProcess, bpool.Supervisor):  # type: ignore[misc]
    """billiard's Supervisor (re-forks lost and recycled children), waiting on an Event."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self.wake = threading.Event()

    def body(self) -> None:
        pool = self.pool
        try:
            prev_state = pool.restart_state
            pool.restart_state = bpool.restart_state(10 * pool._processes, 1)
            for _ in range(10):
                if self._state == bpool.RUN and pool._state == bpool.RUN:
                    pool._maintain_pool()
                    self.wake.wait(CHECK_INTERVAL)
            pool.restart_state = prev_state
            while self._state == bpool.RUN and pool._state == bpool.RUN:
                pool._maintain_pool()
                self.wake.wait(CHECK_INTERVAL)
        except bpool.RestartFreqExceeded:
            pool.close()
            pool.join()
            raise

    def terminate(self) -> None:
        super().terminate()
        self.wake.set()

    def close(self) -> None:
        super().close()
        self.wake.set()


class _PromptTimeoutHandler(_KeepsTheTestProcess, bpool.TimeoutHandler):  # type: ignore[misc]
    """billiard's time-limit thread: checks every 20 ms, stops at once, kills safely."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.wake = threading.Event()
        #: Held while a timed-out child is killed; the pool's joins take it too.
        self.reap_lock: Any = threading.RLock()

    def body(self) -> None:
        while self._state == bpool.RUN:
            try:
                for _ in self.handle_timeouts():
                    if self.wake.wait(CHECK_INTERVAL):
                        break
            except bpool.CoroStop:
                break

    def on_hard_timeout(self, job: Any) -> None:
        try:
            super().on_hard_timeout(job)  # the timeout callback, then the kill
        finally:
            end = getattr(job._timeout_callback, "end_hard_timeout", None)
            if end is not None:
                end()

    def _trywaitkill(self, worker: Any) -> None:
        """billiard's SIGTERM, wait, SIGKILL, while nobody can join (and close) the child."""
        with self.reap_lock:
            popen = worker._popen
            if popen is None or popen.returncode is not None or popen.sentinel is None:
                return  # joined already: nothing left to kill (its pid may be reused)
            try:
                _signal_child(worker, signal.SIGTERM)
            except OSError:
                return
            try:
                if popen.wait(timeout=TERM_GRACE) is not None:
                    return
            except (OSError, ValueError):
                # Its sentinel was closed under the wait (nobody should, the joins take
                # this lock): kill it unless it was reaped.
                if popen.returncode is not None:
                    return
            try:
                _signal_child(worker, signal.SIGKILL)
            except OSError:
                pass

    def terminate(self) -> None:
        super().terminate()
        self.wake.set()

    def close(self) -> None:
        super().close()
        self.wake.set()


def _signal_child(worker: Any, sig: int) -> None:
    # As billiard: a child that made itself a process group leader takes its group along.
    if os.getpgid(worker.pid) == worker.pid:
        os.killpg(worker.pid, sig)
    else:
        os.kill(worker.pid, sig)


def _do_exit(self: Any, pid: int, exitcode: Any, exc: Any = None) -> None:
    """billiard's ``Worker._do_exit`` without its 1 s sleep before ``os._exit``."""
    if exitcode is None:
        exitcode = bpool.EX_FAILURE if exc else bpool.EX_OK
    if self.on_exit is not None:
        self.on_exit(pid, exitcode)
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {bpool.TERM_SIGNAL})
        try:
            self.outq.put((bpool.DEATH, (pid, exitcode)))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    finally:
        os._exit(exitcode)


class _PromptWorker(bpool.Worker):  # type: ignore[misc]
    """A pool child that exits as soon as it has said so (billiard then sleeps 1 s)."""

    _do_exit = _do_exit


class _PromptAsynWorker(asynpool.Worker):  # type: ignore[misc]
    """The event-loop pool's child, exiting as promptly (each stop waited 1 s more)."""

    _do_exit = _do_exit


def _reap_lock(pool: Any) -> Any:
    handler = getattr(pool, "_timeout_handler", None)
    lock = getattr(handler, "reap_lock", None)
    return lock if lock is not None else _NO_LOCK


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


class PromptPool(bpool.Pool):  # type: ignore[misc]
    """billiard's blocking pool (in-memory and file-system brokers), prompt and safe."""

    Worker = _PromptWorker
    Supervisor = _PromptSupervisor
    TimeoutHandler = _PromptTimeoutHandler

    def _join_exited_workers(self, shutdown: bool = False) -> Any:
        with _reap_lock(self):
            return super()._join_exited_workers(shutdown)

    def join(self) -> None:
        """billiard's join, with a bounded wait for each idle child.

        Once the result handler has finished, no task is running; a child still alive
        1 s later never got a sentinel (e.g. a replacement forked while the pool was
        closing: measured ~1 in 6 runs after a lost child) and is killed.
        """
        assert self._state in (bpool.CLOSE, bpool.TERMINATE)
        bpool.stop_if_not_current(self._worker_handler)
        self._stop_task_handler(self._task_handler)
        bpool.stop_if_not_current(self._result_handler)
        deadline = time.monotonic() + 1.0
        with _reap_lock(self):
            for process in list(self._pool):
                if process._popen is None:
                    continue
                process.join(max(0.0, deadline - time.monotonic()))
                if process.exitcode is None:
                    try:
                        os.kill(process.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    process.join()


class PromptAsynPool(AsynPool):  # type: ignore[misc]
    """Celery's event-loop pool (real brokers), replacing lost/recycled children at once.

    It checks its children from a hub timer every 5 s: a recycled or lost child's
    replacement (and a lost child's WorkerLostError) would wait that long.  Its children
    exit without billiard's 1 s sleep; its time limits run on the hub (the handler's
    thread is not started), killing as above.
    """

    Worker = _PromptAsynWorker
    TimeoutHandler = _PromptTimeoutHandler

    @property
    def timers(self) -> dict[Any, float]:
        return {self._maintain_while_running: CHECK_INTERVAL}

    def _maintain_while_running(self) -> None:
        # No replacement once the pool is closing: it would never get its sentinel.
        if self._state == bpool.RUN:
            self.maintain_pool()
