"""What the outbox changes in Celery to capture and hold task messages (no pytest import).

Every task message Celery publishes goes through ``Celery.send_task``: ``delay``,
``apply_async``, signatures, chain/group/chord, retries, and the link callbacks and chain
steps the tracer sends.  While an outbox is active:

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

:func:`deactivate` of the last outbox undoes everything.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = ["STACK", "Captured", "Sink", "activate", "deactivate", "portable"]


@dataclass(slots=True)
class Captured:
    """One task message as published: serialized when held, as given when delivered."""

    app: Any
    name: str
    options: dict[str, Any]
    sent_at: datetime
    held: bool
    body: Any = None
    content_type: str | None = None
    content_encoding: str | None = None
    headers: Any = None
    properties: Any = None
    exchange: str | None = None
    routing_key: str | None = None
    declare: tuple[Any, ...] = ()
    #: The serializer's name, for a delivered message (a held one has its content type).
    serializer: str | None = None


class Sink(Protocol):
    """Where captured messages go: the innermost active outbox."""

    @property
    def holding(self) -> bool: ...

    def _captured(self, message: Captured, result: Any) -> None: ...


#: Active outboxes, innermost last; messages go to the innermost.  Read without the lock
#: on the send path (a list read is atomic); changed under _lock.
STACK: list[Sink] = []

_lock = threading.RLock()
_local = threading.local()
_patches: list[tuple[Any, str, Any, bool]] = []  # (owner, attribute, original, existed)
_muted: list[Any] = []  # backends whose on_task_call is skipped, until uninstall

_BEFORE_UID = "pytest_celerybase.holding.before_publish"
_AFTER_UID = "pytest_celerybase.holding.after_publish"

# send_task arguments that are Celery's plumbing rather than options the caller chose.
_INTERNAL = frozenset({
    "task_id", "producer", "connection", "publisher", "router", "result_cls",
    "add_to_parent", "group_id", "group_index", "retries", "chord", "reply_to",
    "root_id", "parent_id", "route_name", "chain", "task_type",
    "replaced_task_nesting", "stamped_headers",
})  # fmt: skip
_BOUND_AWAY = ("self", "name", "args", "kwargs", "options")


def activate(sink: Sink) -> None:
    """Push ``sink``: task messages sent from now on are captured into it."""
    with _lock:
        if not STACK:
            _install()
        if sink.holding and not any(p[1] == "task_always_eager" for p in _patches):
            _install_holding()
        STACK.append(sink)


def deactivate(sink: Sink) -> None:
    """Pop ``sink``; the last one out undoes every patch."""
    with _lock:
        if sink in STACK:
            STACK.remove(sink)
        if not STACK and _patches:
            _uninstall()


# -- send_task ---------------------------------------------------------------------------
@dataclass(slots=True)
class _Frame:
    """A send in progress in this thread (sends nest: a publish receiver may send)."""

    sink: Sink
    message: Captured
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
        message = Captured(
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
            sink._captured(message, result)
        return result

    send_task.__wrapped__ = original  # type: ignore[attr-defined]
    return send_task


def _to_test_process(message: Captured) -> bool:
    """In a prefork worker's child, send a delivered message's record to the test process
    (the child's copy of the outbox is nobody's); ``False`` anywhere else."""
    import pytest_celerybase

    # Not imported unless a prefork worker ran: then the package attribute is the copy
    # whose fork hooks ran (an in-process pytester run may have dropped it from
    # sys.modules and left the worker using it).
    candidates = {
        id(m): m
        for m in (getattr(pytest_celerybase, "_children", None),
                  sys.modules.get("pytest_celerybase._children"))
        if m is not None
    }  # fmt: skip
    payload = None
    for children in candidates.values():
        if getattr(children, "_sender", None) is not None:
            payload = payload or portable(message)
            if children.send("sent_task", payload):
                return True
    return False


def portable(message: Captured) -> Captured:
    """``message`` as it can cross to the test process: the app by name, the declared
    queues as plain namespaces, what does not pickle as its ``repr()``."""
    from types import SimpleNamespace

    def plain(value: Any) -> Any:
        try:
            pickle.dumps(value)
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
                connection = Connection("memory://")  # type: ignore[no-untyped-call]
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
            backend.__dict__["on_task_call"] = _skip_on_task_call
            _muted.append(backend)


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
    existed = name in owner.__dict__
    _patches.append((owner, name, owner.__dict__.get(name), existed))
    setattr(owner, name, value)


def _uninstall() -> None:
    from celery import signals

    signals.before_task_publish.disconnect(dispatch_uid=_BEFORE_UID)
    signals.after_task_publish.disconnect(dispatch_uid=_AFTER_UID)
    while _patches:
        owner, name, value, existed = _patches.pop()
        if existed:
            setattr(owner, name, value)
        else:
            delattr(owner, name)
    while _muted:
        _muted.pop().__dict__.pop("on_task_call", None)
