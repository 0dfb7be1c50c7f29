"""Run held task messages the way a worker does (no pytest import).

A worker's consumer turns a message into a ``celery.worker.request.Request`` (which
decodes the body with the app's ``accept_content`` and reads eta, expiry, time limits and
delivery info), drops it if expired, sends ``task_received``, and its pool runs the task
through the app's non-eager tracer.  :class:`Runner` does the same with the held message
rebuilt as a kombu ``Message``, then what ``Request.execute`` does: ``trace_task`` runs
it, hooks and signals fire, the result is stored, and what the task sends (``link``
callbacks, the next step of a chain, retries, tasks sent by the task) is published, so
held in turn.  Unlike a worker: the ETA is not waited for, acks and rejects go nowhere
(there is no broker to redeliver), and the worker's process-global state (revoked ids)
is left as it was.
"""

from __future__ import annotations

import difflib
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_celerybase._compat import eager_result
from pytest_celerybase.errors import UnregisteredSentTaskError

if TYPE_CHECKING:
    from celery.result import EagerResult

    from pytest_celerybase.sent_tasks.message import CapturedMessage

__all__ = ["Runner"]

_MISSING: Any = object()


def _ignore(*_: Any, **__: Any) -> None:
    """Acks and rejects of a held message: there is no broker to tell."""


class Runner:
    """Runs held messages; on exit, gives each task it ran its cached tracer back.

    ``trace_task`` caches the worker tracer it builds in ``task.__trace__`` (as a worker
    does, for speed within one ``run()``); keeping it would make a later eager or worker
    run in the process reuse a tracer built for this one.
    """

    def __init__(self) -> None:
        from celery import signals, states
        from celery.app import trace
        from celery.worker import state as worker_state
        from celery.worker.request import Request

        self._traces: dict[int, tuple[Any, Any]] = {}
        self._accept: dict[int, Any] = {}  # per app: what its workers accept
        self._signals, self._states, self._trace = signals, states, trace
        self._revoked, self._request_cls = worker_state.revoked, Request

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task, saved in self._traces.values():
            if saved is _MISSING:
                task.__dict__.pop("__trace__", None)
            else:
                task.__dict__["__trace__"] = saved
        self._traces.clear()

    def execute(self, held: CapturedMessage) -> EagerResult:
        """Run one held message through the worker's ``Request`` and the tracer."""
        states = self._states
        app = held.app
        accept = self._accept.get(id(app))
        if accept is None:
            accept = self._accept[id(app)] = _accept_content(app)
        message = _message(held, accept)
        extra: dict[str, Any] = {}
        if "task" not in message.headers:  # task protocol 1: the fields are in the body
            from celery.worker.strategy import proto1_to_proto2

            body, headers, decoded, utc = proto1_to_proto2(message, _payload(message, app))
            extra = {"body": body, "headers": headers, "decoded": decoded, "utc": utc}
        else:
            _payload(message, app)  # refused content fails here, naming the task
        name = (extra.get("headers") or message.headers)["task"]
        task = app.tasks.get(name)
        if task is None:
            close = difflib.get_close_matches(name, list(app.tasks), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise UnregisteredSentTaskError(
                f"sent_tasks.run(): a message of task {name!r} was sent, but app "
                f"{app.main!r} has no task of that name: a worker of this app would "
                f"discard it as unregistered{hint}"
            )
        request = self._request_cls(
            message, on_ack=_ignore, on_reject=_ignore, app=app, task=task, **extra
        )
        self._signals.task_received.send(sender=None, request=request)
        already_revoked = request.id in self._revoked
        if request.revoked():  # expired: stored as REVOKED, task_revoked sent
            if not already_revoked:
                self._revoked.discard(request.id)  # the worker's global set
            return eager_result(request.id, None, states.REVOKED, None, name)
        if id(task) not in self._traces:
            self._traces[id(task)] = (task, task.__dict__.get("__trace__", _MISSING))
        # Request.execute, keeping the trace's state instead of only its value.
        if not task.acks_late:
            request.acknowledge()
        _, _, embed = request._payload
        request_dict = request.request_dict
        request_dict.update({"loglevel": None, "logfile": None, "is_eager": False}, **embed or {})
        # Looked up per call: the recorder wraps celery.app.trace.trace_task.
        retval, info, _, _ = self._trace.trace_task(
            task, request.id, request.args, request.kwargs, request_dict,
            hostname=request.hostname, loader=app.loader, app=app,
        )  # fmt: skip
        if info is None:
            request.acknowledge()
            return eager_result(request.id, retval, states.SUCCESS, None, name)
        request.reject(requeue=False)
        traceback = getattr(retval, "traceback", None)
        return eager_result(request.id, info.retval, info.state, traceback, name)


def _accept_content(app: Any) -> Any:
    from kombu import serialization

    prepare_accept_content: Any = serialization.prepare_accept_content
    return prepare_accept_content(app.conf.accept_content)


def _message(held: CapturedMessage, accept: Any) -> Any:
    from kombu import message

    Message: Any = message.Message
    properties = dict(held.properties or {})
    return Message(
        body=held.body,
        content_type=held.content_type,
        content_encoding=held.content_encoding,
        headers=dict(held.headers or {}),
        properties=properties,
        delivery_info={
            "exchange": held.exchange,
            "routing_key": held.routing_key,
            "priority": properties.get("priority"),
            "redelivered": False,
        },
        # What a worker of this app accepts: a pickled message to a JSON-only app fails.
        accept=accept,
    )


def _payload(message: Any, app: Any) -> Any:
    from kombu.exceptions import ContentDisallowed

    try:
        return message.decode()
    except ContentDisallowed as exc:
        task = message.headers.get("task", "?")
        raise ContentDisallowed(
            f"sent_tasks.run(): a worker of app {app.main!r} would refuse the message of "
            f"task {task!r}: {exc} (the app's accept_content is "
            f"{list(app.conf.accept_content)!r}); a worker logs the error and drops it"
        ) from None
