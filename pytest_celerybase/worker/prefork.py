"""Celery's prefork pool inside the test process, fast and accounted for (no pytest).

:class:`PreforkPool` is Celery's prefork ``TaskPool`` with billiard's blocking pool
made prompt (:mod:`.prompt_pools`), ``apply_async`` wrapped so the parent
knows when each delivery ends (its callbacks have run, and for a hard time limit also
the timeout callback, where Celery 5.7 runs ``on_failure``/``after_return`` in the
parent, and the kill), and each child reporting its start (or why it could not start)
through :mod:`.channel`.
:class:`PreforkRuntime` is what a prefork :class:`~pytest_celerybase.worker.LiveWorker`
adds around Celery: a broker and result backend that cross processes, the channel, the
start check, ``kill_child`` and a stop that leaves no child behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from billiard import pool as bpool
from billiard.exceptions import TimeLimitExceeded
from celery.concurrency import prefork

from pytest_celerybase import _patching
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.worker import backends, channel, child_output
from pytest_celerybase.worker.prompt_pools import CHECK_INTERVAL, PromptAsynPool, PromptPool

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["OWNER", "PreforkPool", "PreforkRuntime"]

#: The owner of the patches a prefork pool makes (see :mod:`pytest_celerybase._patching`).
OWNER = "worker.prefork"

_process_initializer = prefork.process_initializer


# What a `celery worker` process tells its children through the environment: left in the
# test process by another worker (Celery's own start_worker sets them), they would set the
# child's logging up differently from the test's (CELERY_LOG_LEVEL=40 drops warnings).
_LOGGING_ENV = ("CELERY_LOG_LEVEL", "CELERY_LOG_FILE", "CELERY_LOG_REDIRECT",
                "CELERY_LOG_REDIRECT_LEVEL")  # fmt: skip


def _initializer(app: Any, hostname: str) -> None:
    """Celery's child initializer, reporting the child's start or its failure."""
    for name in _LOGGING_ENV:
        os.environ.pop(name, None)  # in the child only
    try:
        _process_initializer(app, hostname)
    except BaseException as exc:
        channel.send("child", ("failed", os.getpid(), f"{type(exc).__name__}: {exc}"))
        raise
    # Celery's logging setup (captureWarnings, handlers) replaced some of it: again.
    child_output.install()
    channel.send("child", ("ready", os.getpid(), None))


class _Delivery:
    """One message handed to the pool; ends once (see :class:`PreforkPool`)."""

    __slots__ = ("ended", "lock", "pending", "task_id")

    def __init__(self, task_id: str, name: str, pending: dict[str, str]) -> None:
        self.task_id = task_id
        self.lock = threading.Lock()
        self.ended = False
        self.pending = pending
        pending[task_id] = name

    def end(self) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        self.pending.pop(self.task_id, None)
        # The child wrote its records before it returned its result: read them first.
        channel.flush()
        if STACK:
            STACK[-1].inflight.finished(self.task_id)


class _PromptTime:
    """The ``time`` module as Celery's prefork module sees it during a stop: no sleep
    longer than billiard's checks here."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, CHECK_INTERVAL))


_PROMPT_TIME = _PromptTime()


class PreforkPool(prefork.TaskPool):  # type: ignore[misc]
    """Celery's prefork pool, prompt, with each delivery's end known to the recorder."""

    BlockingPool = PromptPool
    Pool = PromptAsynPool

    def on_start(self) -> None:
        # TaskPool.on_start passes the module's process_initializer to billiard.
        with _patching.patched(prefork, "process_initializer", _initializer, owner=OWNER):
            super().on_start()
        #: Task id -> name of each message handed to the pool and not finished: a child
        #: may run it before the parent has read that it started (Celery's view).
        self.deliveries: dict[str, str] = {}
        self.on_apply = _accounted(self.on_apply, self.deliveries)  # type: ignore[has-type]

    def on_stop(self) -> None:
        pool = self._pool
        if pool is None:
            return
        if pool._state == bpool.RUN:
            pool.close()  # the children get their sentinel; running tasks finish
        # Celery 5.7 fires the event loop's timers from a thread while the pool drains,
        # sleeping 0.5 s between passes, and the stop waits for its last sleep (older
        # Celery has no such thread, nor ``time`` in that module).
        prompt = (
            _patching.patched(prefork, "time", _PROMPT_TIME, owner=OWNER)
            if "time" in vars(prefork)
            else contextlib.nullcontext()
        )
        with prompt:
            super().on_stop()  # joins the pool's threads and children
        if not isinstance(pool, PromptPool):
            pool.terminate()  # AsynPool (real brokers): nothing left to signal after the join
            return
        # Not pool.terminate(): it would take the inqueue's read lock, which a child
        # killed by the bounded join may hold.  What it would still do: stop the
        # time-limit thread (close + join leave it running) and close the queues.
        timeouts = pool._timeout_handler
        if timeouts is not None:
            timeouts.terminate()
            timeouts.stop(5.0)
        pool._terminate.cancel()
        for queue in (pool._inqueue, pool._outqueue):
            if queue is not None:
                queue.close()


def _accounted(apply: Any, pending: dict[str, str]) -> Any:
    """Wrap ``apply_async`` so that each delivery ends once its callbacks have run.

    A hard time limit fails the job (error callback), runs the timeout callback (where
    Celery 5.7 runs ``on_failure``/``after_return``) and kills the child: its delivery
    ends after the kill (:mod:`._billiard` calls ``end_hard_timeout``), once the child's
    last events are in.
    """

    def on_apply(target: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        task_id = str(options.get("correlation_id"))
        if STACK and args:
            # What a child published before this message reached the pool (a retry) is
            # counted first, so that this delivery takes that publication over; a
            # redelivery, published by nobody, is counted by itself.
            channel.flush()
            STACK[-1].inflight.started(task_id, str(args[0]))
        delivery = _Delivery(task_id, str(args[0]) if args else "?", pending)
        callback = options.get("callback")
        error_callback = options.get("error_callback")
        timeout_callback = options.get("timeout_callback")

        def done(value: Any) -> None:
            try:
                if callback is not None:
                    callback(value)
            finally:
                delivery.end()

        def failed(einfo: Any) -> None:
            try:
                if error_callback is not None:
                    error_callback(einfo)
            finally:
                exc = getattr(einfo, "exception", None)
                exc = getattr(exc, "exc", exc)  # billiard's ExceptionWithTraceback
                if not isinstance(exc, TimeLimitExceeded):
                    delivery.end()

        def timed_out(soft: bool, timeout: Any) -> None:
            channel.flush()  # the child's before_start precedes the parent's hooks
            if timeout_callback is not None:
                timeout_callback(soft=soft, timeout=timeout)

        timed_out.end_hard_timeout = delivery.end  # type: ignore[attr-defined]
        options.update(callback=done, error_callback=failed, timeout_callback=timed_out)
        return apply(target, args, kwargs, **options)

    return on_apply


_MISSING: Any = object()  # the loader had no override_backends of its own
_UNSET: Any = object()  # nothing saved (not prepared)


class PreforkRuntime:
    """What a prefork live worker sets up around Celery, and undoes at stop."""

    def __init__(
        self,
        app: Celery,
        *,
        hostname: str,
        concurrency: int,
        controller: Callable[[], Any],
        on_dir: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        # Told the worker's temp directory before the children are forked.
        self._on_dir = on_dir
        self.hostname = hostname
        self.concurrency = concurrency
        # The worker's WorkController once made (its pool is this module's), else None.
        self._controller = controller
        self.ready: set[int] = set()
        self.failures: list[tuple[int, str]] = []
        self._changed = threading.Condition()
        self._dir: str | None = None
        self._saved_conf: dict[str, Any] = {}
        self._saved_overrides: Any = _UNSET
        self.channel = channel.ChildChannel({"child": self._child_report})

    def prepare(self) -> None:
        """Cross-process broker/backend (unless real ones are set); open the channel."""
        app, conf = self.app, self.app.conf
        changes: dict[str, Any] = {}
        self._dir = tempfile.mkdtemp(prefix="celerybase-prefork-")
        if self._on_dir is not None:
            self._on_dir(self._dir)
        if str(conf.broker_url).startswith("memory://"):
            # A child's retry/chain/send_task publishes from the child: an in-memory
            # broker would keep it there.  Celery's file-system transport needs no server.
            messages = os.path.join(self._dir, "broker")
            os.mkdir(messages)
            options = dict(conf.broker_transport_options or {})
            # kombu keeps its exchange tables in ./control by default: the user's project.
            control = os.path.join(self._dir, "control")
            options.update(data_folder_in=messages, data_folder_out=messages,
                           control_folder=control)
            changes.update(broker_url="filesystem://localhost/", broker_transport_options=options,
                           broker_transport=f"{backends.__name__}:FileTransport")
        if str(conf.result_backend).startswith("cache+memory://"):
            results = os.path.join(self._dir, "results")
            os.mkdir(results)
            changes["result_backend"] = f"file://{results}"
        self._saved_conf = {key: conf.get(key) for key in changes}
        conf.update(changes)
        if "broker_url" in changes:
            _reset_producer_pool(app)  # one made for the old broker URL
        loader = app.loader
        self._saved_overrides = vars(loader).get("override_backends", _MISSING)
        loader.override_backends = {**loader.override_backends,
                                    "file": f"{backends.__name__}:FileResultBackend"}
        self.channel.open()

    def wait_for_children(self, deadline: float) -> str | None:
        """Wait until every child reported ready; the failure to report, if any."""
        with self._changed:
            while len(self.ready) < self.concurrency and not self.failures:
                left = deadline - time.monotonic()
                if left <= 0:
                    return (f"{len(self.ready)} of {self.concurrency} prefork children "
                            "were ready")
                self._changed.wait(left)
            if self.failures:
                pid, reason = self.failures[0]
                return f"prefork child {pid} failed to start: {reason}"
        return None

    def _child_report(self, payload: tuple[str, int, str | None]) -> None:
        status, pid, reason = payload
        with self._changed:
            if status == "ready":
                self.ready.add(pid)
            else:
                self.failures.append((pid, reason or "?"))
            self._changed.notify_all()

    def unfinished(self) -> list[str]:
        """``name[id]`` of each task handed to the pool and not finished."""
        pending = getattr(getattr(self._controller(), "pool", None), "deliveries", {})
        return sorted(f"{name}[{task_id}]" for task_id, name in dict(pending).items())

    def child_pids(self) -> list[int]:
        """The pids of the pool's child processes now."""
        pool = getattr(self._controller(), "pool", None)
        inner = getattr(pool, "_pool", None)
        return [p.pid for p in list(getattr(inner, "_pool", ())) if p.pid]

    def kill_child(self, task_id: str, sig: int, timeout: float) -> int:
        """Send ``sig`` to the child running ``task_id``, once it runs the task; its pid.

        "Runs" means the child's ``before_start`` of the task has reached the test's
        recorder (so the kill lands mid-task, as an OOM kill would); with no recorder,
        that a child accepted the task.
        """
        deadline = time.monotonic() + timeout
        while True:
            pid = self._running_in(task_id)
            if pid is not None:
                os.kill(pid, sig)
                return pid
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"kill_child: task {task_id!r} was not running in a child of "
                    f"{self.hostname} within {timeout:g}s"
                )
            time.sleep(0.002)

    def _running_in(self, task_id: str) -> int | None:
        from celery.worker import state

        for request in list(state.active_requests):
            pid = getattr(request, "worker_pid", None)
            if request.id == task_id and pid and request.hostname == self.hostname:
                if not STACK:
                    return int(pid)
                channel.flush()
                started = any(
                    c.hook == "before_start" and c.pid == pid
                    for c in STACK[-1].calls_for(task_id=task_id)
                )
                return int(pid) if started else None
        return None

    def kill_children(self) -> None:
        """SIGKILL every child and fail their tasks as lost (a task still running at stop:
        threads cannot be killed, processes can); the pool's join can then finish."""
        inner = getattr(getattr(self._controller(), "pool", None), "_pool", None)
        for pid in self.child_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if inner is not None:
            # billiard's supervisor is closed by now: nobody else will notice the loss.
            for job in list(inner._cache.values()):
                if not job.ready():
                    inner.mark_as_worker_lost(job, -signal.SIGKILL)

    def reap(self) -> None:
        """Kill and reap any child still alive once the pool has stopped.

        billiard's supervisor can fork a replacement for a child that died while the pool
        was shutting down, after the sentinels went out: nothing would ever stop it.
        """
        for pid in sorted(self.ready | {pid for pid, _ in self.failures}):
            try:
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    continue  # exited and reaped now
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                continue  # billiard reaped it

    def close(self) -> None:
        """Close the channel, put the configuration back, remove the temp dir."""
        self.reap()
        self.channel.close()
        app = self.app
        if self._saved_conf:
            app.conf.update(self._saved_conf)
            if "broker_url" in self._saved_conf:
                _reset_producer_pool(app)
            self._saved_conf = {}
        if self._saved_overrides is not _UNSET:
            if self._saved_overrides is _MISSING:
                vars(app.loader).pop("override_backends", None)
            else:
                app.loader.override_backends = self._saved_overrides
            self._saved_overrides = _UNSET
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _reset_producer_pool(app: Any) -> None:
    # Celery caches the connection pool on the app and the producer pool on app.amqp.
    app._pool = None
    vars(app.amqp).pop("_producer_pool", None)
