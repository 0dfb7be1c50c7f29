"""Capture: what changes in Celery so that sent task messages are recorded, and held.

Every task message Celery publishes goes through ``Celery.send_task``: ``delay``,
``apply_async``, signatures, chain/group/chord, retries, and the link callbacks and chain
steps the tracer sends.  While a capture is active (:func:`activate`):

* ``Celery.send_task`` is wrapped.  The wrapper notes what the caller passed and when,
  then calls the real ``send_task``, so routing, ``create_task_message``, the queue
  resolution and publish signals of ``send_task_message``, and kombu's serialization and
  compression all run for real: what a worker could not receive fails here with Celery's
  own error.  To *hold* the message, ``send_task`` is handed a holding producer whose last
  step (kombu's ``Producer._publish``, the hand-over to a channel) keeps the serialized
  message instead; no connection is ever opened.  The backend's ``on_task_call`` (Redis
  subscribes for the result, RPC declares its reply queue: the only other network step of
  a send) is skipped for held messages.
* ``Settings.task_always_eager`` reads False while messages are held: every place Celery
  decides to run eagerly (``Task.apply_async``, ``chain``/``group``/``chord.apply_async``,
  the tracer's callback publishing, backends' errbacks) reads the setting as an attribute
  of ``app.conf``, so one property makes every app publish instead, also apps created
  later.  ``app.conf["task_always_eager"]`` still shows the configured value.
* When delivering (a live worker consumes the messages) only the wrapper is added: the
  message is read from ``before_task_publish`` and recorded once ``after_task_publish``
  confirms it went out.

:func:`deactivate` of the last capture undoes everything; every change is a
:mod:`pytest_celerybase._patching` patch owned by :data:`OWNER`.  In a prefork worker's
child, a delivered message's record goes to the test process through the worker's
channel (:mod:`pytest_celerybase.worker.channel`).
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_celerybase import _patching
from pytest_celerybase.errors import NoSentTasksError
from pytest_celerybase.sent_tasks.message import CapturedMessage, SentTask
from pytest_celerybase.worker import channel

__all__ = ["OWNER", "STACK", "Sink", "activate", "current_sink",
           "deactivate", "portable"]  # fmt: skip

#: The owner of the patches capturing makes (see :mod:`pytest_celerybase._patching`).
OWNER = "sent_tasks"


class Sink(Protocol):
    """Where captured messages go, and what the sent-task checks read of them
    (:class:`~pytest_celerybase.SentTasks` is the one kind there is)."""

    @property
    def holding(self) -> bool:
        """Whether messages are held (``False``: delivered to the broker, and recorded)."""

    def captured(self, message: CapturedMessage, result: Any) -> None:
        """Take a message sent just now (``result``: what the sender got back)."""

    def settle(self) -> None:
        """Wait until a live worker has run what is due now (held: nothing to wait for)."""

    def __iter__(self) -> Iterator[SentTask]:
        """Every message sent so far, in send order."""


#: Active sinks, innermost last; messages go to the innermost.  Read without the lock on
#: the send path (a list read is atomic); changed under _lock.
STACK: list[Sink] = []

_lock = threading.RLock()
_local = threading.local()

_BEFORE_UID = "pytest_celerybase.sent_tasks.before_publish"
_AFTER_UID = "pytest_celerybase.sent_tasks.after_publish"

# send_task arguments that are Celery's plumbing rather than options the caller chose.
_INTERNAL = frozenset({
    "task_id", "producer", "connection", "publisher", "router", "result_cls",
    "add_to_parent", "group_id", "group_index", "retries", "chord", "reply_to",
    "root_id", "parent_id", "route_name", "chain", "task_type",
    "replaced_task_nesting", "stamped_headers",
})  # fmt: skip
_BOUND_AWAY = ("self", "name", "args", "kwargs", "options")


def current_sink() -> Sink:
    """The innermost active sink (the current test's ``sent_tasks``)."""
    if not STACK:
        raise NoSentTasksError(
            "no task messages are being captured: request the sent_tasks fixture in the "
            "test (or use `with pytest_celerybase.capture_sent_tasks():` outside pytest)"
        )
    return STACK[-1]


def activate(sink: Sink) -> None:
    """Push ``sink``: task messages sent from now on are captured into it."""
    with _lock:
        if not STACK:
            _install()
        holding = any(p.name == "task_always_eager" for p in _patching.active() if p.owner == OWNER)
        if sink.holding and not holding:
            _install_holding()
        STACK.append(sink)


def deactivate(sink: Sink) -> None:
    """Pop ``sink``; the last one out undoes every patch."""
    with _lock:
        if sink in STACK:
            STACK.remove(sink)
        if not STACK:
            _uninstall()


# -- send_task ---------------------------------------------------------------------------
@dataclass(slots=True)
class _Frame:
    """A send in progress in this thread (sends nest: a publish receiver may send)."""

    sink: Sink
    message: CapturedMessage
    done: bool = False


def _install() -> None:
    from celery import Celery, signals

    _patch(Celery, "send_task", _make_send_task(Celery.send_task))
    signals.before_task_publish.connect(_before_publish, weak=False, dispatch_uid=_BEFORE_UID)
    signals.after_task_publish.connect(_after_publish, weak=False, dispatch_uid=_AFTER_UID)


def _make_send_task(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)
    # Celery 5.7 marks omitted expires/time limits with a sentinel object, not None.
    sentinels = tuple(
        p.default
        for p in signature.parameters.values()
        if p.default is not inspect.Parameter.empty
        and p.default is not None
        and not isinstance(p.default, (bool, int, float, str))
    )

    # Task.apply_async passes args and kwargs positionally, options by keyword.
    def send_task(
        self: Any, name: Any, args: Any = None, kwargs: Any = None, *more: Any, **options: Any
    ) -> Any:
        if not STACK:
            return original(self, name, args, kwargs, *more, **options)
        sink = STACK[-1]
        if more:  # options given positionally: rare, so binding's cost is fine here
            bound = signature.bind(self, name, args, kwargs, *more, **options).arguments
            options = {k: v for k, v in bound.items() if k not in _BOUND_AWAY}
            options.update(bound.get("options", {}))
        holding = sink.holding
        message = CapturedMessage(
            self, str(name), _caller_options(options, sentinels), self.now(), holding
        )
        if not holding:
            message.serializer = options.get("serializer") or self.conf.task_serializer
        else:
            options["producer"] = _producer()
            options.pop("connection", None)
            options.pop("publisher", None)
            if not options.get("ignore_result"):
                _mute_on_task_call(self)
        frame = _Frame(sink, message)
        try:
            frames: list[_Frame] = _local.frames
        except AttributeError:
            frames = _local.frames = []
        frames.append(frame)
        try:
            result = original(self, name, args, kwargs, **options)
        finally:
            frames.pop()
        if frame.done and not (not holding and _to_test_process(message)):
            sink.captured(message, result)
        return result

    send_task.__wrapped__ = original  # type: ignore[attr-defined]
    return send_task


def _to_test_process(message: CapturedMessage) -> bool:
    """In a prefork worker's child, send a delivered message's record to the test process
    (the child's copy of the sink is nobody's); ``False`` anywhere else."""
    return channel.in_child() and channel.send("sent_task", portable(message))


def portable(message: CapturedMessage) -> CapturedMessage:
    """``message`` as it can cross to the test process: the app by name, the declared
    queues as plain namespaces, what does not pickle as its ``repr()``."""
    from types import SimpleNamespace

    def plain(value: Any) -> Any:
        try:  # the whole trip: some values pickle but cannot be rebuilt
            pickle.loads(pickle.dumps(value))
        except Exception:
            return repr(value)
        return value

    declare = tuple(
        SimpleNamespace(
            name=getattr(e, "name", None),
            queue_arguments=None,
            routing_key=getattr(e, "routing_key", None),
            exchange=SimpleNamespace(name=getattr(getattr(e, "exchange", None), "name", None)),
        )
        for e in message.declare
        if hasattr(e, "queue_arguments")
    )
    return dataclasses.replace(
        message,
        app=getattr(message.app, "main", None),
        options={k: plain(v) for k, v in message.options.items()},
        body=plain(message.body),
        headers={k: plain(v) for k, v in (message.headers or {}).items()},
        properties={k: plain(v) for k, v in (message.properties or {}).items()},
        declare=declare,
    )


def _caller_options(options: dict[str, Any], sentinels: tuple[Any, ...]) -> dict[str, Any]:
    """The options the caller chose: no plumbing, no None, not the task's own defaults."""
    task = options.get("task_type")
    defaults: dict[str, Any] = {}
    if task is not None and hasattr(task, "_get_exec_options"):
        # Task.apply_async merged the task's defaults (queue, priority...) in already.
        defaults = dict(task._get_exec_options())
        defaults["ignore_result"] = getattr(task, "ignore_result", None)
    stamps = options.get("stamped_headers") or ()
    chosen: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or key in _INTERNAL or key in stamps:
            continue
        if any(value is s for s in sentinels):
            continue
        if key in defaults and _same(defaults[key], value):
            continue
        chosen[key] = value
    return chosen


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:  # an odd __eq__ must not break a send
        return False


def _before_publish(
    sender: Any = None,
    body: Any = None,
    exchange: Any = None,
    routing_key: Any = None,
    headers: Any = None,
    properties: Any = None,
    declare: Any = None,
    **_: Any,
) -> None:
    frames = getattr(_local, "frames", None)
    if not frames or frames[-1].sink.holding:
        return  # held messages are captured by the producer, with their serialized body
    message = frames[-1].message
    message.body = body
    message.headers = dict(headers or {})
    message.properties = dict(properties or {})
    message.exchange = getattr(exchange, "name", exchange)
    message.routing_key = routing_key
    message.declare = tuple(declare or ())


def _after_publish(sender: Any = None, **_: Any) -> None:
    frames = getattr(_local, "frames", None)
    if frames and not frames[-1].sink.holding:
        frames[-1].done = True


# -- holding -----------------------------------------------------------------------------
_holding_producer: list[Any] = []  # created on first use, kept for the process


def _producer() -> Any:
    if not _holding_producer:
        with _lock:
            if not _holding_producer:
                from kombu.connection import Connection

                # Never connected: send_task only enters its error-translating context.
                connection = Connection("memory://localhost/")  # type: ignore[no-untyped-call]
                _holding_producer.append(
                    _holding_producer_class()(connection, auto_declare=False)
                )
    return _holding_producer[0]


def _holding_producer_class() -> type:
    from kombu.messaging import Producer

    class HoldingProducer(Producer):
        """A kombu producer whose hand-over to the channel keeps the message instead."""

        def publish(self, body: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["retry"] = False  # no connection to retry
            publish: Any = super().publish
            return publish(body, *args, **kwargs)

        # kombu calls it positionally; these 11 parameters are the same in kombu 5.3-5.7
        # (later versions add timeouts and retry settings at the end).
        def _publish(
            self, body: Any, priority: Any, content_type: Any, content_encoding: Any,
            headers: Any, properties: Any, routing_key: Any, mandatory: Any,
            immediate: Any, exchange: Any, declare: Any, *_: Any, **__: Any,
        ) -> None:  # fmt: skip
            frames = getattr(_local, "frames", None)
            if not frames or frames[-1].done:
                return  # not the task message (e.g. a task-sent event): dropped
            frame = frames[-1]
            message = frame.message
            message.body = body
            message.content_type = content_type
            message.content_encoding = content_encoding
            message.headers = headers
            if priority and properties.get("priority") is None:
                properties["priority"] = priority
            message.properties = properties
            message.exchange = exchange
            message.routing_key = routing_key
            message.declare = tuple(declare or ())
            frame.done = True

    return HoldingProducer


def _skip_on_task_call(producer: Any, task_id: Any) -> None:
    """Stands in for ``backend.on_task_call`` of held messages: nothing to listen for."""


def _mute_on_task_call(app: Any) -> None:
    backend = app.backend
    if backend.__dict__.get("on_task_call") is not _skip_on_task_call:
        with _lock:
            _patching.apply(backend, "on_task_call", _skip_on_task_call, owner=OWNER)


def _install_holding() -> None:
    from celery.app.utils import Settings

    original = Settings.__dict__.get("task_always_eager")

    def task_always_eager(conf: Any) -> Any:
        if STACK and STACK[-1].holding:
            return False
        if original is not None:
            return original.__get__(conf, type(conf))
        return conf["task_always_eager"]

    _patch(Settings, "task_always_eager", property(task_always_eager))


# -- undo --------------------------------------------------------------------------------
def _patch(owner: Any, name: str, value: Any) -> None:
    _patching.apply(owner, name, value, owner=OWNER)


def _uninstall() -> None:
    from celery import signals

    signals.before_task_publish.disconnect(dispatch_uid=_BEFORE_UID)
    signals.after_task_publish.disconnect(dispatch_uid=_AFTER_UID)
    _patching.undo_all(OWNER)
