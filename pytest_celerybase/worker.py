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

import copy
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from celery.backends.cache import CacheBackend

from pytest_celerybase._celery_state import CeleryGlobals
from pytest_celerybase._controller import (
    UnregisteredTaskError,
    describe_unregistered,
    make_controller,
    raise_shutdown,
)

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "BROKER_URL_ENV",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "LIVE_DEFAULTS",
    "RESULT_BACKEND_ENV",
    "SUPPORTED_POOLS",
    "LiveWorker",
    "MemoryResultBackend",
    "UnregisteredTaskError",
    "WorkerOptions",
    "WorkerStartError",
    "WorkerStopError",
    "check_pool",
    "describe_unregistered",
    "live_defaults",
    "worker_options",
]

#: Environment variable naming the broker live workers use instead of ``memory://``.
BROKER_URL_ENV = "CELERYBASE_BROKER_URL"
#: Environment variable naming their result backend (default: the broker URL for
#: ``redis://``/``rediss://`` brokers, else ``cache+memory://``).
RESULT_BACKEND_ENV = "CELERYBASE_RESULT_BACKEND"

#: Pools that run inside the test process (prefork/eventlet/gevent cannot).
SUPPORTED_POOLS: tuple[str, ...] = ("solo", "threads")

#: Configuration a live worker's app starts from (test overrides are applied on top).
LIVE_DEFAULTS: dict[str, Any] = {
    "broker_url": "memory://",
    # The memory transport polls every second by default: a round trip would cost ~1 s.
    "broker_transport_options": {"polling_interval": 0.005},
    "result_backend": "cache+memory://",
    "task_always_eager": False,
    "broker_connection_retry_on_startup": False,
    "worker_pool": "solo",
    "worker_concurrency": 1,
    # Remote control adds a broadcast consumer per worker (and global fanout bindings on
    # the memory transport); enable it per test for revoke()/inspect().
    "worker_enable_remote_control": False,
    "worker_hijack_root_logger": False,
    # The ETA timer thread sleeps up to this long between checks (also when stopping).
    "worker_timer_precision": 0.01,
}

# Seconds between checks of the in-memory result store while result.get() waits
# (Celery's default is 0.5 s: most of a test's run time).
_RESULT_POLL_INTERVAL = 0.005
_MISSING: Any = object()

#: Seconds a live worker may take to start consuming / to stop (running tasks included).
DEFAULT_START_TIMEOUT = 10.0
DEFAULT_STOP_TIMEOUT = 10.0
# Worker options that are ours, not Celery settings (taken out of the app config).
_OPTION_KEYS = ("celerybase_worker_start_timeout", "celerybase_worker_stop_timeout")


def live_defaults(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:data:`LIVE_DEFAULTS`, pointed at the broker/backend named by the environment.

    With ``CELERYBASE_BROKER_URL`` set, the worker uses that broker, the result backend
    from ``CELERYBASE_RESULT_BACKEND`` (default: the same URL for Redis) and a default
    queue private to the worker, so workers of other test processes sharing the broker
    never take each other's messages.
    """
    env = os.environ if environ is None else environ
    settings = copy.deepcopy(LIVE_DEFAULTS)
    broker = env.get(BROKER_URL_ENV, "").strip()
    if broker:
        settings["broker_url"] = broker
        # Redis: also its BRPOP timeout, which closing the worker's channel waits out
        # (1 s by default).  Fractional timeouts need Redis >= 6.
        settings["broker_transport_options"] = {"polling_interval": 0.05}
        settings["task_default_queue"] = f"celerybase.{uuid.uuid4().hex[:12]}"
        redis = broker.split("://", 1)[0] in ("redis", "rediss")
        settings["result_backend"] = broker if redis else "cache+memory://"
    backend = env.get(RESULT_BACKEND_ENV, "").strip()
    if backend:
        settings["result_backend"] = backend
    return settings


@dataclass(frozen=True)
class WorkerOptions:
    """How a live worker runs: its pool, concurrency and start/stop time-outs."""

    pool: str = "solo"
    concurrency: int = 1
    start_timeout: float = DEFAULT_START_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT


def worker_options(settings: Mapping[str, Any]) -> tuple[dict[str, Any], WorkerOptions]:
    """Check a live worker's test settings; return the Celery settings and the options.

    ``settings`` are the test's own (applied over :func:`live_defaults`).  The
    ``celerybase_worker_start_timeout``/``..._stop_timeout`` options are taken out; the
    pool is ``worker_pool`` (default solo, or threads when only ``worker_concurrency > 1``
    is given).  Raises ``ValueError`` naming what is wrong and what is valid.
    """
    celery_settings = dict(settings)
    if celery_settings.get("task_always_eager"):
        raise ValueError(
            "task_always_eager=True would run every task in the test thread instead of on "
            "the worker; remove it from celerybase_config / @pytest.mark.celerybase (use "
            "eager_app for eager tests)"
        )
    timeouts: dict[str, float] = {}
    for key in _OPTION_KEYS:
        if key in celery_settings:
            value = celery_settings.pop(key)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{key} must be a positive number of seconds, got {value!r}")
            timeouts[key.removeprefix("celerybase_worker_")] = float(value)
    concurrency = celery_settings.get("worker_concurrency", LIVE_DEFAULTS["worker_concurrency"])
    pool = celery_settings.get("worker_pool")
    if pool is None:
        # concurrency asked for without a pool: solo cannot give it
        multiple = isinstance(concurrency, int) and concurrency > 1
        pool = "threads" if multiple else LIVE_DEFAULTS["worker_pool"]
    check_pool(pool, concurrency)
    return celery_settings, WorkerOptions(pool, concurrency, **timeouts)


def check_pool(pool: Any, concurrency: Any) -> None:
    """Raise ``ValueError`` unless ``pool`` runs in-process with ``concurrency`` slots."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"worker_concurrency must be an int >= 1, got {concurrency!r}")
    if pool not in SUPPORTED_POOLS:
        raise ValueError(
            f"live_worker runs in-process, so worker_pool must be one of "
            f"{', '.join(map(repr, SUPPORTED_POOLS))}, got {pool!r}; e.g. "
            "@pytest.mark.celerybase(worker_pool='threads', worker_concurrency=4)"
        )
    if pool == "solo" and concurrency > 1:
        raise ValueError(
            f"the solo pool runs one task at a time, got worker_concurrency={concurrency}; "
            "use worker_pool='threads' for concurrency"
        )


class WorkerStartError(RuntimeError):
    """The live worker did not become ready (broker unreachable, bad pool, timeout)."""


class WorkerStopError(RuntimeError):
    """The live worker thread did not finish within its stop timeout."""


class MemoryResultBackend(CacheBackend):  # type: ignore[misc]
    """Celery's ``cache+memory://`` result backend, checked every 5 ms while waiting.

    ``result.get()`` polls a key-value backend every ``interval`` (0.5 s by default);
    for a dict in this process that is pure waiting.  Storage is Celery's own.
    """

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5,
                 **kwargs: Any) -> Any:
        interval = min(interval, _RESULT_POLL_INTERVAL)
        return super().wait_for(task_id, timeout=timeout, interval=interval, **kwargs)

    def get_many(self, task_ids: Any, timeout: float | None = None, interval: float = 0.5,
                 **kwargs: Any) -> Any:
        interval = min(interval, _RESULT_POLL_INTERVAL)
        return super().get_many(task_ids, timeout=timeout, interval=interval, **kwargs)


_MEMORY_BACKEND = f"{__name__}:MemoryResultBackend"


class LiveWorker:
    """A Celery worker consuming for :attr:`app` in a thread of this process.

    Use it as a context manager (or :meth:`start`/:meth:`stop`); :meth:`stop` is
    idempotent.  ``pool`` is ``"solo"`` (tasks run in the worker thread, one at a time)
    or ``"threads"`` (``concurrency`` pool threads).
    """

    def __init__(
        self,
        app: Celery,
        *,
        pool: str | None = None,
        concurrency: int | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        conf = app.conf
        pool = pool if pool is not None else str(conf.worker_pool)
        concurrency = concurrency if concurrency is not None else conf.worker_concurrency
        check_pool(pool, concurrency)
        #: The app the worker consumes for (current and default during the test).
        self.app = app
        #: ``"solo"`` or ``"threads"``.
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
        #: Names of tasks the worker received but could not find on :attr:`app`.
        self.unregistered: list[str] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._hub: Any = None
        self._crash: BaseException | None = None
        # What start() changed and stop() puts back (None: nothing to restore).
        self._saved_globals: CeleryGlobals | None = None
        self._saved_backend_alias: tuple[Any] | None = None

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
    def from_options(cls, app: Celery, options: WorkerOptions) -> LiveWorker:
        """A worker for ``app`` configured by :func:`worker_options`."""
        return cls(
            app,
            pool=options.pool,
            concurrency=options.concurrency,
            start_timeout=options.start_timeout,
            stop_timeout=options.stop_timeout,
        )

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
        self._saved_globals = CeleryGlobals.save(finalizers=False)
        self.app.set_current()
        self.app.set_default()
        self._use_memory_backend()
        self._purge_leftovers()
        try:
            self.controller = make_controller(self)
        except Exception as exc:
            self._restore_globals()
            raise WorkerStartError(f"live_worker could not be created: {exc!r}") from exc
        self._thread = threading.Thread(
            target=self.controller.start, name=f"celerybase-worker-{self.hostname}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.005):
            if not self._thread.is_alive() or time.monotonic() >= deadline:
                break
        if not self._ready.is_set():
            died = not self._thread.is_alive()
            crash = self._crash
            try:
                self.stop()
            except WorkerStopError:
                pass  # the start failure below is the error to report
            broker = self.app.conf.broker_url
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
                self._stopping.set()
                hub = self._hub
                if hub is not None:
                    hub.call_soon(raise_shutdown)
                thread.join(self.stop_timeout)
                if thread.is_alive():
                    raise WorkerStopError(self._stop_failure())
        finally:
            if thread is not None and not thread.is_alive():
                self._purge_leftovers(delete=True)
            self._restore_globals()

    def _stop_failure(self) -> str:
        from celery.worker import state

        running = sorted(
            f"{req.name}[{req.id}]" for req in list(state.active_requests)
            if getattr(req, "hostname", self.hostname) == self.hostname
        )
        what = f"task(s) still running: {', '.join(running)}" if running else "no task running"
        return (
            f"live_worker did not stop within {self.stop_timeout:g}s ({what}). A task that "
            "blocks keeps the worker thread busy and threads cannot be killed, so it is "
            "left running as a daemon thread; make the task return (e.g. mock the call it "
            "waits on) or raise celerybase_worker_stop_timeout"
        )

    def _use_memory_backend(self) -> None:
        # ``cache+memory://`` resolves the ``cache`` alias through the loader's
        # override_backends (Celery's hook for custom backends): point it at the fast
        # subclass for this app only.  Backends are built lazily per thread, after this.
        loader = self.app.loader
        if str(self.app.conf.result_backend).startswith("cache+memory://"):
            self._saved_backend_alias = (vars(loader).get("override_backends", _MISSING),)
            loader.override_backends = {**loader.override_backends, "cache": _MEMORY_BACKEND}

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
