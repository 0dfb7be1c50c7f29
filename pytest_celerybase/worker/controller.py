"""Celery's worker machinery, adapted to run inside the test process (no pytest import).

:func:`make_controller` builds the ``WorkController`` that a live worker
(:class:`~pytest_celerybase.worker.LiveWorker`) runs: its consumer loop stops on request
within milliseconds, its strategy table learns tasks registered after the worker
started, an unregistered task fails with an explanation, and its ETA timer stops at once.
The worker and its loop share one :class:`LoopControl`: the worker asks, the loop obeys
and reports.
"""

from __future__ import annotations

import difflib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery.exceptions import NotRegistered

from pytest_celerybase.errors import UnregisteredTaskError
from pytest_celerybase.worker.prefork import PreforkPool

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "HubWaker",
    "LoopControl",
    "describe_forked_too_early",
    "describe_unregistered",
    "make_controller",
    "raise_shutdown",
]

# Seconds between stop-request checks while the synchronous loop waits for messages.
_STOP_CHECK_INTERVAL = 0.01


@dataclass(eq=False)
class LoopControl:
    """What a live worker and its consumer loop share, from either thread."""

    #: Set by the loop once the consumer consumes.
    ready: threading.Event = field(default_factory=threading.Event)
    #: Set by the worker to ask the loop to stop.
    stopping: threading.Event = field(default_factory=threading.Event)
    #: The event loop of a real broker's consumer (``None``: the synchronous loop).
    hub: Any = None
    #: Wakes :attr:`hub`'s poll from another thread.
    hub_waker: HubWaker | None = None
    #: Why the worker failed before it was ready.
    crash: BaseException | None = None
    #: Why the worker ended after it was ready without being asked to stop.
    died: BaseException | None = None
    #: Names of tasks the worker received but could not find on its app.
    unregistered: list[str] = field(default_factory=list)

    def request_stop(self) -> None:
        """Ask the loop to stop (Celery's warm shutdown, in the worker's thread)."""
        self.stopping.set()
        hub, waker = self.hub, self.hub_waker
        if hub is not None:
            hub.call_soon(raise_shutdown)
        if waker is not None:
            waker.wake()  # the hub may be polling for seconds (kombu < 5.7)


def describe_unregistered(app: Celery, name: str) -> str:
    """Explain why ``name`` is unknown to the worker running ``app``, and how to fix it."""
    from celery import _state

    text = f"task {name!r} is not registered on the live worker's app {app.main!r} ({app!r})."
    owners = [
        other
        for other in list(_state._get_active_apps())
        if other is not app and name in other._tasks
    ]
    if owners:
        text += " It is registered on " + ", ".join(
            f"app {other.main!r} ({other!r})" for other in owners
        ) + ", which is not the worker's app."
    own = sorted(n for n in app.tasks if not n.startswith("celery."))
    close = difflib.get_close_matches(name, own, n=3, cutoff=0.6)
    if close:
        text += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    text += (
        " Fix: declare the task on the worker's app (@live_worker.app.task), with "
        "@shared_task (registered on every app), or name the app that declares it in the "
        "celerybase_app ini key (celerybase_app = \"package.module:app\") so that "
        "live_worker runs that app."
    )
    if not close:
        text += f" Tasks the worker knows: {', '.join(own) if own else '(none)'}."
    return text


def describe_forked_too_early(name: str) -> str:
    """Explain that a prefork worker's children do not have task ``name``, and the fix."""
    return (
        f"task {name!r} was declared after the prefork live worker forked its children, "
        "so they do not have it (a child's tasks are those of the app when it was forked, "
        "as in production). Fix: declare it before live_worker starts: at module level "
        "(@shared_task, or on the app named by the celerybase_app ini key), or in a "
        "fixture that the test requests before live_worker."
    )


def raise_shutdown() -> None:
    """Raise Celery's warm-shutdown exception (in the thread running the worker)."""
    from celery.exceptions import WorkerShutdown

    raise WorkerShutdown(0)


def make_controller(
    app: Celery, *, hostname: str, pool: str, concurrency: int, loop: LoopControl
) -> Any:
    """The ``WorkController`` of a live worker, with the adaptations listed above."""
    from celery.worker import WorkController
    from celery.worker.consumer import Consumer

    class _Blueprint(WorkController.Blueprint):  # type: ignore[misc]
        def start(self, parent: Any) -> None:
            try:
                super().start(parent)
            except BaseException as exc:
                # WorkController.start only logs it; a broker that cannot be reached
                # arrives as WorkerShutdown(1) raised from the connection error.
                if not loop.ready.is_set():
                    loop.crash = exc.__cause__ if isinstance(exc, SystemExit) else exc
                elif not loop.stopping.is_set():
                    loop.died = exc
                raise

    class _Consumer(Consumer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.strategies = _LearningStrategies(self, prefork=pool == "prefork")
            self.loop = _stoppable_loop(self.loop, loop)  # type: ignore[has-type]

        def on_unknown_task(self, body: Any, message: Any, exc: Any) -> None:
            headers = message.headers or {}
            name = headers.get("task") or (body or {}).get("task") or "?"
            loop.unregistered.append(str(name))
            if pool == "prefork" and name in self.app.tasks:
                text = describe_forked_too_early(str(name))
            else:
                text = describe_unregistered(self.app, str(name))
            error = UnregisteredTaskError(text)
            # Celery stores NotRegistered(name) as the result; store the explanation
            # instead.  app.backend is per thread, so this patch is seen by this call only.
            backend = self.app.backend
            original = backend.mark_as_failure

            def mark_as_failure(task_id: Any, exc: Any, *args: Any, **kwargs: Any) -> Any:
                if isinstance(exc, NotRegistered):
                    exc = error
                return original(task_id, exc, *args, **kwargs)

            backend.mark_as_failure = mark_as_failure
            try:
                super().on_unknown_task(body, message, exc)
            finally:
                vars(backend).pop("mark_as_failure", None)

    class _Controller(WorkController):  # type: ignore[misc]
        Blueprint = _Blueprint

        def on_consumer_ready(self, consumer: Any) -> None:
            loop.ready.set()

    return _Controller(
        app=app,
        timer_cls=_prompt_timer_class(),
        hostname=hostname,
        pool=PreforkPool if pool == "prefork" else pool,
        concurrency=concurrency,
        consumer_cls=_Consumer,
        ready_callback=None,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )


def _prompt_timer_class() -> type:
    """Celery's ETA timer thread (solo/threads pools), stopping in ms instead of ~1 s.

    With nothing scheduled the thread idles in ``not_empty.wait(1.0)`` and only sees the
    shutdown flag after that; this wakes it.  If Celery renames its private flag this
    degrades to Celery's own (slower) stop.
    """
    from celery.utils.timer2 import Timer

    class PromptTimer(Timer):  # type: ignore[misc]
        def stop(self) -> None:
            shutdown = getattr(self, "_Timer__is_shutdown", None)
            if self.running and isinstance(shutdown, threading.Event):
                shutdown.set()
                with self.not_empty:
                    self.not_empty.notify_all()
            super().stop()

    return PromptTimer


class _LearningStrategies(dict[str, Any]):
    """The consumer's task-name -> strategy table, learning tasks registered after start.

    Celery fills it once (``Consumer.update_strategies``) and treats a miss as an
    unregistered task; a miss here first looks the name up on the app and, when the task
    is there now, prepares it exactly like ``update_strategies`` does.
    """

    def __init__(self, consumer: Any, prefork: bool = False) -> None:
        super().__init__()
        self._consumer = consumer
        self._prefork = prefork

    def __missing__(self, name: str) -> Any:
        from celery.worker.consumer import consumer as consumer_module

        consumer = self._consumer
        app = consumer.app
        task = app.tasks.get(name)
        if task is None or self._prefork:
            # prefork: the children were forked before the task existed; they cannot
            # run it (on_unknown_task explains).
            raise KeyError(name)
        strategy = task.start_strategy(app, consumer)
        # Looked up on the module at call time, like Celery does, so the hook recorder's
        # wrapper (if active) builds this tracer too.
        task.__trace__ = consumer_module.build_tracer(
            name, task, app.loader, consumer.hostname, app=app
        )
        consumer.task_buckets[name] = consumer.bucket_for_task(task)
        self[name] = strategy
        return strategy


def _stoppable_loop(loop: Callable[..., Any], control: LoopControl) -> Callable[..., Any]:
    """Wrap the consumer's loop so that :meth:`LoopControl.request_stop` ends it promptly."""

    def run(obj: Any, connection: Any, consumer: Any, blueprint: Any, hub: Any, *rest: Any) -> Any:
        waker = None
        if hub is not None:
            # asynloop (real brokers): a stop request queues a callback that raises on the
            # hub, and wakes the hub's poll.
            waker = HubWaker(hub)
            control.hub = hub
            control.hub_waker = waker
        else:
            # synloop: drain in short slices, checking for a stop request in between.
            connection.drain_events = _interruptible(connection.drain_events, control.stopping)
        try:
            if control.stopping.is_set():
                raise_shutdown()
            return loop(obj, connection, consumer, blueprint, hub, *rest)
        finally:
            if waker is not None:
                control.hub_waker = None
                waker.close()

    return run


class HubWaker:
    """A socket pair the event loop polls, written to by :meth:`wake` from any thread.

    kombu < 5.7's ``Hub.call_soon`` does not wake the loop, which polls for up to 10 s on
    an idle AMQP connection: a stop right after a task waited that long (measured:
    ``WorkerStopError`` at the 10 s stop timeout).  kombu 5.7 wakes it too: harmless.
    """

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        hub.add_reader(self.reader, self._drain)

    def _drain(self) -> None:
        try:
            self.reader.recv(4096)
        except OSError:
            pass

    def wake(self) -> None:
        try:
            self.writer.send(b"x")
        except OSError:  # closed already, or a wake-up is pending: either way, awake
            pass

    def close(self) -> None:
        try:
            self.hub.remove_reader(self.reader)
        except Exception:  # the hub may have been closed with its readers
            pass
        self.reader.close()
        self.writer.close()


def _interruptible(drain: Callable[..., Any], stopping: threading.Event) -> Callable[..., Any]:
    def drain_events(timeout: float | None = None, **kwargs: Any) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if stopping.is_set():
                raise_shutdown()
            step = _STOP_CHECK_INTERVAL
            if deadline is not None:
                step = min(step, max(deadline - time.monotonic(), 0.0))
            try:
                return drain(timeout=step, **kwargs)
            except TimeoutError:  # socket.timeout
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return drain_events
