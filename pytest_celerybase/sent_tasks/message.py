"""One task message sent during a test: what it carries, read as a worker reads it.

:class:`CapturedMessage` is a message as the capture (:mod:`.capture`) took it;
:class:`SentTask` is the record :class:`~pytest_celerybase.SentTasks` keeps per message.
A held message keeps its serialized body and is decoded on first use (as a worker
decodes it); a delivered one keeps what the publish signal saw.  Task protocol 2 keeps
the task's fields (id, eta, retries...) in the headers, protocol 1 in the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Signature
    from celery.result import EagerResult

__all__ = ["CapturedMessage", "SentTask"]

_NOT_DECODED: Any = object()
# Options in the order failure messages show them (others follow as given).
_SHOWN_FIRST = ("countdown", "eta", "expires", "queue", "routing_key", "exchange",
                "priority", "headers", "link", "link_error")  # fmt: skip


@dataclass(slots=True)
class CapturedMessage:
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


class SentTask:
    """One task message sent during the test.

    ``args``/``kwargs`` are what a worker decodes from the message (JSON makes tuples
    lists); ``options`` are the options the caller chose (``countdown``, ``eta``,
    ``expires``, ``queue``, ``priority``, ``headers``, ``link``, ...; the task's own
    defaults are not repeated); ``eta`` is an aware datetime or ``None``; ``queue`` is
    the queue the message reaches as Celery routed it (``None`` when it goes to a named
    exchange whose bindings decide); ``headers`` are the message headers.  ``result`` is
    set once :meth:`SentTasks.run` has run the message.
    """

    __slots__ = ("_decoded", "captured", "eta", "headers", "id", "name", "options", "queue",
                 "result", "sent_at", "still_held")  # fmt: skip

    def __init__(self, message: CapturedMessage) -> None:
        #: The message as the capture took it (serialized body, headers, properties).
        self.captured = message
        self._decoded: Any = _NOT_DECODED
        #: The message headers (task protocol 2 keeps the task's fields there).
        self.headers: dict[str, Any] = message.headers
        fields = self.fields()
        #: The task's name.
        self.name: str = str(fields.get("task") or message.name)
        #: The task id (the result's id; a retry keeps it).
        self.id: str = str(fields.get("id"))
        #: The options the caller gave.
        self.options: dict[str, Any] = message.options
        #: When the message was sent (aware, the app's clock).
        self.sent_at: datetime = message.sent_at
        #: When the task is due (aware), or ``None`` to run now.
        self.eta: datetime | None = _aware(fields.get("eta"), message.app)
        #: The queue the message reaches, or ``None``.
        self.queue: str | None = _queue_name(message)
        #: What :meth:`SentTasks.run` got running it (``None`` until then).
        self.result: EagerResult | None = None
        #: Held and not run (nor dropped by ``clear()``) yet.
        self.still_held = message.held

    @property
    def args(self) -> tuple[Any, ...]:
        """Positional arguments, as a worker receives them."""
        return tuple(self._payload()[0])

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments, as a worker receives them."""
        return dict(self._payload()[1])

    @property
    def expires(self) -> datetime | None:
        """When the message expires (aware), or ``None``."""
        return _aware(self.fields().get("expires"), self.captured.app)

    @property
    def app(self) -> Any:
        """The Celery app that sent the message."""
        return self.captured.app

    @property
    def held(self) -> bool:
        """Whether the message was held (``False``: it went to a broker)."""
        return self.captured.held

    @property
    def content_type(self) -> str | None:
        """The serializer's content type (``None`` for a delivered message)."""
        return self.captured.content_type

    @property
    def serializer(self) -> str | None:
        """The serializer's name (``"json"``, ``"pickle"``...)."""
        content_type = self.captured.content_type
        if content_type is None:
            return self.captured.serializer
        from kombu.serialization import registry

        return str(registry.type_to_name.get(content_type, content_type))

    @property
    def routing_key(self) -> str | None:
        """The routing key it was published with."""
        return self.captured.routing_key

    @property
    def exchange(self) -> str | None:
        """The exchange it was published to (``""``: the default exchange)."""
        return self.captured.exchange

    @property
    def priority(self) -> Any:
        """The message priority (an int as Celery sends it), or ``None``.

        As sent, not converted: ``priority=True`` reaches the broker as ``True``, and
        ``assert_task_sent(priority=1)`` must not match it as if it were ``1``.
        """
        return (self.captured.properties or {}).get("priority")

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """The ``link`` callbacks the message carries, as signature dicts."""
        return list((self._payload()[2] or {}).get("callbacks") or [])

    @property
    def errbacks(self) -> list[dict[str, Any]]:
        """The ``link_error`` errbacks the message carries, as signature dicts."""
        return list((self._payload()[2] or {}).get("errbacks") or [])

    def signature(self) -> Signature:
        """A signature sending this task again with the same arguments and options."""
        from celery import signature

        return signature(
            self.name, args=self.args, kwargs=self.kwargs, options=dict(self.options),
            app=self.captured.app,
        )  # fmt: skip

    def fields(self) -> dict[str, Any]:
        """The message's task fields (id, eta, retries, ...): its headers, or its body
        under task protocol 1."""
        headers = self.headers
        if "id" in headers:
            return headers
        body = self._payload()[3]
        return headers if body is None else body

    def describe(self) -> str:
        """``name(args, kwargs) option=value ... [queue 'q']`` as failure messages show it."""
        parts = [repr(a) for a in self.args]
        parts.extend(f"{k}={v!r}" for k, v in self.kwargs.items())
        text = f"{self.name}({', '.join(parts)})"
        order = {key: i for i, key in enumerate(_SHOWN_FIRST)}
        shown = {
            key: _task_names(value) if key in ("link", "link_error") else value
            for key, value in sorted(
                self.options.items(), key=lambda kv: order.get(kv[0], len(order))
            )
        }
        if shown:
            text += " " + " ".join(f"{k}={v!r}" for k, v in shown.items())
        if self.queue is not None:
            text += f" [queue {self.queue!r}]"
        return text

    def __repr__(self) -> str:
        if not self.held:
            state = "delivered"
        elif self.result is None:
            state = "held" if self.still_held else "dropped"
        else:
            state = f"ran: {self.result.state}"
        return f"<SentTask {self.describe()} id={self.id} {state}>"

    def _payload(self) -> tuple[Any, Any, Any, Any]:
        if self._decoded is _NOT_DECODED:
            self._decoded = _decode(self.captured)
        payload: tuple[Any, Any, Any, Any] = self._decoded
        return payload


def _task_names(links: Any) -> list[str]:
    items = links if isinstance(links, (list, tuple)) else [links]
    return [str(i.get("task") if isinstance(i, dict) else getattr(i, "name", i)) for i in items]


def _decode(message: CapturedMessage) -> tuple[Any, Any, Any, Any]:
    """``(args, kwargs, embed, protocol-1 body or None)`` of a message."""
    body = message.body
    if message.content_type is not None:  # held: serialized, as a worker receives it
        from kombu import message as kombu_message

        Message: Any = kombu_message.Message
        body = Message(
            body=body,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            headers=message.headers,
            accept=[message.content_type],  # we serialized it: trust it for reading
        ).decode()
    if isinstance(body, dict):  # task protocol 1
        embed = {k: body.get(k) for k in ("callbacks", "errbacks", "chord")}
        return body.get("args") or (), body.get("kwargs") or {}, embed, body
    args, kwargs, embed = body
    return args or (), kwargs or {}, embed, None


def _aware(value: Any, app: Any) -> datetime | None:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(when, datetime):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=app.timezone)  # how a worker reads a naive eta
    return when


def _queue_name(message: CapturedMessage) -> str | None:
    """The queue the message reaches: Celery publishes to the default exchange with the
    queue's name as routing key; to a named exchange, the queue it declared if that queue
    is bound to it with the message's routing key (else the broker's bindings decide)."""
    if not message.exchange:
        return str(message.routing_key) if message.routing_key else None
    for entity in message.declare:
        if not hasattr(entity, "queue_arguments"):
            continue  # an exchange, not a queue
        bound_to = getattr(getattr(entity, "exchange", None), "name", None)
        if bound_to == message.exchange and entity.routing_key == message.routing_key:
            return str(entity.name)
    return None
