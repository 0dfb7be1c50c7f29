"""A real Celery worker running in a thread of the test process (no pytest import).

:class:`LiveWorker` runs Celery's own :class:`~celery.worker.WorkController` (solo or
threads pool) in a background thread: messages go through the broker, the consumer's
strategies, the pool, the tracer and the ack exactly as in production.  What is added
around it is for a test suite's sake:

* **Fast, bounded stop.**  Celery's solo loop blocks in ``drain_events(timeout=2.0)`` and
  only sees a shutdown request when that returns (celery's ``start_worker`` spends ~4 s
  per test there).  The consumer's loop is wrapped so that a stop request raises
  :class:`~celery.exceptions.WorkerShutdown` *in the worker thread* within ~10 ms (the
  synchronous loop drains in short slices; the event-loop hub of a real broker is woken
  with ``hub.call_soon``), which is Celery's own warm-shutdown path.  Joins are bounded:
  a task that hangs yields :class:`WorkerStopError`, never a hung test session.
* **Tasks declared after start run.**  The consumer builds a strategy per registered
  task when it starts and rejects anything else as unregistered; its strategy table
  here learns a task registered on the app later (``@live_worker.app.task`` in the test
  body, a ``@shared_task`` module imported late) on first use.
* **A clear unregistered-task error.**  A task unknown to the worker's app fails with
  :class:`UnregisteredTaskError` (a :class:`~celery.exceptions.NotRegistered`) saying
  which app has it and how to fix the test, and ``result.get()`` raises that.
* **Fast round trips.**  The memory transport is polled every 5 ms, ``result.get()``
  checks the in-memory result store every 5 ms (Celery: 0.5 s) and the ETA timer thread
  stops at once: a test with one ``delay().get()`` costs tens of milliseconds.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_celerybase.apps.celery_globals import CeleryGlobals
from pytest_celerybase.errors import WorkerStartError, WorkerStopError
from pytest_celerybase.worker.backends import MEMORY_BACKEND
from pytest_celerybase.worker.controller import LoopControl, make_controller
from pytest_celerybase.worker.options import (
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    WorkerOptions,
    check_pool,
)
from pytest_celerybase.worker.prefork import PreforkRuntime

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["LiveWorker", "worker_death"]

_MISSING: Any = object()


class LiveWorker:
    """A Celery worker consuming for :attr:`app` in a thread of this process.

    Use it as a context manager (or :meth:`start`/:meth:`stop`); :meth:`stop` is
    idempotent.  ``pool`` is ``"solo"`` (tasks run in the worker thread, one at a time),
    ``"threads"`` (``concurrency`` pool threads) or ``"prefork"`` (``concurrency`` child
    processes forked from the test process, as in production).
    """

    def __init__(
        self,
        app: Celery,
        *,
        pool: str | None = None,
        concurrency: int | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        prefork_dir: Callable[[str], None] | None = None,
    ) -> None:
        conf = app.conf
        pool = pool if pool is not None else str(conf.worker_pool)
        concurrency = concurrency if concurrency is not None else conf.worker_concurrency
        check_pool(pool, concurrency)
        #: The app the worker consumes for (current and default during the test).
        self.app = app
        #: ``"solo"``, ``"threads"`` or ``"prefork"``.
        self.pool = pool
        #: Number of tasks the worker runs at once.
        self.concurrency = concurrency
        #: Seconds :meth:`start` waits for the consumer to be ready.
        self.start_timeout = start_timeout
        #: Seconds :meth:`stop` waits for the worker thread (running tasks included).
        self.stop_timeout = stop_timeout
        #: The worker's node name (``celerybase-<id>@<host>``).
        self.hostname = f"celerybase-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        #: The Celery ``WorkController``, once started.
        self.controller: Any = None
        self._thread: threading.Thread | None = None
        self._loop = LoopControl()
        # What start() changed and stop() puts back (None: nothing to restore).
        self._saved_globals: CeleryGlobals | None = None
        self._saved_backend_alias: tuple[Any] | None = None
        self._prefork: PreforkRuntime | None = None
        if pool == "prefork":
            self._prefork = PreforkRuntime(
                app, hostname=self.hostname, concurrency=concurrency,
                controller=lambda: self.controller, on_dir=prefork_dir,
            )  # fmt: skip

    def __repr__(self) -> str:
        # Also shown for a half-built worker (a traceback through __init__'s checks).
        attrs = vars(self)
        if "hostname" not in attrs:
            return f"<{type(self).__name__} (not initialized)>"
        state = "running" if self.running else "stopped"
        return (
            f"<LiveWorker {self.hostname} app={self.app.main!r} pool={self.pool} "
            f"concurrency={self.concurrency} {state}>"
        )

    @classmethod
    def from_options(
        cls,
        app: Celery,
        options: WorkerOptions,
        *,
        prefork_dir: Callable[[str], None] | None = None,
    ) -> LiveWorker:
        """A worker for ``app`` configured by :func:`worker_options`.

        ``prefork_dir`` is called with the prefork worker's temp directory before it forks
        (the test's redirected database moves there).
        """
        return cls(
            app,
            pool=options.pool,
            concurrency=options.concurrency,
            start_timeout=options.start_timeout,
            stop_timeout=options.stop_timeout,
            prefork_dir=prefork_dir,
        )

    @property
    def unregistered(self) -> list[str]:
        """Names of tasks the worker received but could not find on :attr:`app`."""
        return self._loop.unregistered

    @property
    def died(self) -> BaseException | None:
        """Why the worker ended after it was ready without being asked to (else ``None``)."""
        return self._loop.died

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread | None:
        """The thread running the worker (``None`` before :meth:`start`)."""
        return self._thread

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> LiveWorker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the worker thread and wait (bounded) until it consumes."""
        from celery import _state

        if self._thread is not None:
            raise RuntimeError("this LiveWorker was started already; make a new one")
        # Celery's worker finds tasks through the current app (trace_task_ret), which is
        # the default app in the worker's threads: make it this app while running.  The
        # finalizers are the test's business (a task declared meanwhile stays declared).
        self._saved_globals = CeleryGlobals.save(finalizers=False, revoked=True)
        self.app.set_current()
        self.app.set_default()
        if self._prefork is not None:
            self._prefork.prepare()
        self._use_memory_backend()
        self._purge_leftovers()
        try:
            self.controller = make_controller(
                self.app, hostname=self.hostname, pool=self.pool,
                concurrency=self.concurrency, loop=self._loop,
            )  # fmt: skip
        except Exception as exc:
            self._restore_globals()
            raise WorkerStartError(f"live_worker could not be created: {exc!r}") from exc
        self._thread = threading.Thread(
            target=self.controller.start, name=f"celerybase-worker-{self.hostname}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._loop.ready.wait(0.005):
            if not self._thread.is_alive() or time.monotonic() >= deadline:
                break
        children = None
        if self._loop.ready.is_set() and self._prefork is not None:
            children = self._prefork.wait_for_children(deadline)
        if not self._loop.ready.is_set() or children is not None:
            died = not self._thread.is_alive()
            crash = self._loop.crash
            try:
                self.stop()
            except WorkerStopError:
                pass  # the start failure below is the error to report
            broker = self.app.conf.broker_url
            if children is not None:
                raise WorkerStartError(f"live_worker (prefork) failed to start: {children}")
            if died or crash is not None:
                reason = (
                    f"{type(crash).__name__}: {crash}" if crash is not None
                    else "the worker thread exited"
                )
                raise WorkerStartError(
                    f"live_worker failed to start on broker {broker!r}: {reason} "
                    "(the worker's log is in the captured log output)"
                ) from crash
            raise WorkerStartError(
                f"live_worker was not consuming within {self.start_timeout:g}s "
                f"(broker {broker!r}); raise celerybase_worker_start_timeout if it is slow"
            )
        # The pool marks this process as a worker, where result.get() refuses to block;
        # the test thread is not a task and must be able to wait for results.
        _state._set_task_join_will_block(False)

    def stop(self) -> None:
        """Stop the worker (warm shutdown) and wait for its thread; idempotent.

        Raises :class:`WorkerStopError` if the thread is still running a task after
        :attr:`stop_timeout` seconds (threads cannot be killed: it is left as a daemon).
        """
        thread = self._thread
        try:
            if thread is not None and thread.is_alive():
                self._loop.request_stop()
                thread.join(self.stop_timeout)
                if thread.is_alive():
                    failure = self._stop_failure()
                    if self._prefork is not None:
                        # Processes, unlike threads, can be killed: leave nothing behind.
                        self._prefork.kill_children()
                        # billiard's result handler sees the lost jobs within its 1 s poll
                        thread.join(max(self.stop_timeout, 3.0))
                    raise WorkerStopError(failure)
        finally:
            if thread is not None and not thread.is_alive():
                self._purge_leftovers(delete=True)
            if self._prefork is not None and not self.running:
                self._prefork.close()
            self._restore_globals()

    def _stop_failure(self) -> str:
        from celery.worker import state

        running = sorted(
            f"{req.name}[{req.id}]" for req in list(state.active_requests)
            if getattr(req, "hostname", self.hostname) == self.hostname
        )
        parts = [f"task(s) still running: {', '.join(running)}"] if running else []
        if self._prefork is not None:
            # A child can run a task before its parent has read that it started (the
            # event loop stops reading at the stop request): the pool knows it.
            pooled = [t for t in self._prefork.unfinished() if t not in running]
            if pooled:
                parts.append(f"task(s) in the pool, not finished: {', '.join(pooled)}")
        what = "; ".join(parts) or "no task running"
        if self._prefork is not None:
            return (
                f"live_worker did not stop within {self.stop_timeout:g}s ({what}); its "
                "prefork children were killed. Make the task return (e.g. mock the call it "
                "waits on) or raise celerybase_worker_stop_timeout"
            )
        return (
            f"live_worker did not stop within {self.stop_timeout:g}s ({what}). A task that "
            "blocks keeps the worker thread busy and threads cannot be killed, so it is "
            "left running as a daemon thread; make the task return (e.g. mock the call it "
            "waits on) or raise celerybase_worker_stop_timeout"
        )

    # -- prefork ------------------------------------------------------------------------
    def channel_errors(self) -> list[BaseException]:
        """What went wrong taking in the prefork children's records (empty: nothing)."""
        return [] if self._prefork is None else list(self._prefork.channel.errors)

    def child_pids(self) -> list[int]:
        """The pids of the prefork pool's child processes now (empty for other pools)."""
        return [] if self._prefork is None else self._prefork.child_pids()

    def kill_child(self, task_id: str, *, sig: int = 9, timeout: float = 5.0) -> int:
        """Kill the prefork child running ``task_id``, as the OOM killer would; its pid.

        Waits (up to ``timeout`` s) for a child to have accepted the task, then sends it
        ``sig`` (``SIGKILL``): the task's result becomes ``WorkerLostError``, or it is
        redelivered with ``acks_late`` and ``task_reject_on_worker_lost``.
        """
        if self._prefork is None:
            raise RuntimeError(
                f"kill_child needs worker_pool='prefork', this worker runs {self.pool!r}: "
                "@pytest.mark.celerybase(worker_pool='prefork', worker_concurrency=2)"
            )
        return self._prefork.kill_child(str(task_id), sig, timeout)

    def _use_memory_backend(self) -> None:
        # ``cache+memory://`` resolves the ``cache`` alias through the loader's
        # override_backends (Celery's hook for custom backends): point it at the fast
        # subclass for this app only.  Backends are built lazily per thread, after this.
        loader = self.app.loader
        if str(self.app.conf.result_backend).startswith("cache+memory://"):
            self._saved_backend_alias = (vars(loader).get("override_backends", _MISSING),)
            loader.override_backends = {**loader.override_backends, "cache": MEMORY_BACKEND}

    def _restore_globals(self) -> None:
        if self._saved_globals is not None:
            self._saved_globals.restore()
            self._saved_globals = None
        if self._saved_backend_alias is not None:
            (saved,), self._saved_backend_alias = self._saved_backend_alias, None
            if saved is _MISSING:
                vars(self.app.loader).pop("override_backends", None)
            else:
                self.app.loader.override_backends = saved

    def _purge_leftovers(self, *, delete: bool = False) -> None:
        # The memory broker is process-global: messages a previous test published but
        # nobody consumed would otherwise run (or fail as unregistered) in this test.
        # On a real broker only the worker's private queue is removed.
        app = self.app
        memory = str(app.conf.broker_url).startswith("memory://")
        private = str(app.conf.task_default_queue).startswith("celerybase.")
        if not memory and not (delete and private):
            return
        names = list(app.amqp.queues.consume_from) if memory else [app.conf.task_default_queue]
        try:
            with app.connection_for_write() as conn:
                channel = conn.default_channel
                for name in names:
                    if memory:
                        channel.queue_purge(name)
                    else:
                        channel.queue_delete(name)
        except Exception:  # cleanup must not mask the test's own outcome
            pass


def worker_death(worker: LiveWorker, escapes: list[tuple[str, str, BaseException]]) -> str:
    """Why ``worker`` died or lost a task during the test, as the test's error ("": it
    did not).  ``escapes`` are the recorder's worker executions that raised a
    ``BaseException`` that is not an ``Exception``."""
    if worker.pool == "prefork":
        # A child dies of it instead (WorkerLostError, as in production); what can go
        # wrong here is a record of a child that the test process could not take in.
        lost = worker.channel_errors()
        if not lost:
            return ""
        return (
            f"{len(lost)} record(s) sent by the prefork children were lost, so hook "
            f"assertions may have judged incomplete records: {'; '.join(map(repr, lost))}"
        )
    causes = [f"task {name}[{task_id}] raised {exc!r}" for name, task_id, exc in escapes]
    if worker.died is not None and not escapes:
        causes.append(f"{worker.died!r}")
    if not causes:
        return ""
    what = "its thread ended" if worker.died is not None else "the task's result never comes"
    return (
        f"the worker died: {'; '.join(causes)} ({what}). Celery's {worker.pool} pool does not "
        "survive a BaseException that is not an Exception (SystemExit, KeyboardInterrupt..."
        "): Celery logs 'Unrecoverable error' and result.get() times out; a worker process "
        "would die the same way in production. Catch it in the task, or raise an Exception."
    )
