"""Recording Celery's task signals into the active recorder (no pytest import).

:func:`connect` is called by :func:`.instrument.install`: a receiver per signal of
:data:`~pytest_celerybase.recorder.SIGNALS`, connected only while some recorder is
active.  The three signals of every eager success (``task_prerun``, ``task_success``,
``task_postrun``) take a cheaper path: Celery's tracer sends them
through module globals of ``celery.app.trace`` (``send_prerun`` ...) when the signal has
receivers at all, so those globals are replaced by functions that record and then call
Celery's ``Signal.send`` only when a receiver other than ours is connected.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.recorder.records import SIGNALS
from pytest_celerybase.recorder.threads import ACTIVE_THREADS, LEFT_RUNNING, counts_for

__all__ = ["connect", "disconnect"]

_UID = "pytest_celerybase.recorder.signals."
_clock = time.perf_counter
_current_thread = threading.current_thread
_get_ident = threading.get_ident
# Signal -> the celery.app.trace global its tracer sends it through.
_TRACER_SENDERS = {
    "task_prerun": "send_prerun",
    "task_success": "send_success",
    "task_postrun": "send_postrun",
}


def _message_ids(named: dict[str, Any]) -> tuple[Any, Any]:
    headers = named.get("headers")
    if headers is None:
        message = named.get("message")
        headers = getattr(message, "headers", None)
    body = named.get("body")
    task_id = task_name = None
    if isinstance(headers, dict):
        task_id, task_name = headers.get("id"), headers.get("task")
    if task_id is None and isinstance(body, dict):  # task protocol 1
        task_id, task_name = body.get("id"), body.get("task")
    return task_name, task_id


def _message_eta(named: dict[str, Any]) -> Any:
    headers, body = named.get("headers"), named.get("body")
    if isinstance(headers, dict) and "id" in headers:
        return headers.get("eta")
    return body.get("eta") if isinstance(body, dict) else None  # task protocol 1


# Signals saying a worker dropped a message without running it.
_DISCARDED = frozenset({"task_revoked", "task_rejected", "task_unknown"})


def _request_ids(named: dict[str, Any]) -> tuple[Any, Any]:
    request = named.get("request")
    return getattr(request, "name", None) or getattr(request, "task", None), getattr(
        request, "id", None
    )


# How to find the task name and id in what each signal is sent with.
_IDS: dict[str, Callable[[Any, dict[str, Any]], tuple[Any, Any]]] = {
    "before_task_publish": lambda sender, named: (sender, _message_ids(named)[1]),
    "after_task_publish": lambda sender, named: (sender, _message_ids(named)[1]),
    "task_received": lambda sender, named: _request_ids(named),
    "task_prerun": lambda sender, named: (getattr(sender, "name", None), named.get("task_id")),
    "task_postrun": lambda sender, named: (getattr(sender, "name", None), named.get("task_id")),
    # reading sender.request costs more than the rest of the recording: the recorder
    # takes the id from the task_prerun before it in the same thread
    "task_success": lambda sender, named: (getattr(sender, "name", None), None),
    "task_failure": lambda sender, named: (getattr(sender, "name", None), named.get("task_id")),
    "task_retry": lambda sender, named: (getattr(sender, "name", None), _request_ids(named)[1]),
    "task_revoked": lambda sender, named: (
        getattr(sender, "name", None) or _request_ids(named)[0],
        _request_ids(named)[1],
    ),
    "task_rejected": lambda sender, named: _message_ids(named),
    "task_unknown": lambda sender, named: (named.get("name"), named.get("id")),
    "task_internal_error": lambda sender, named: (
        getattr(sender, "name", None),
        named.get("task_id"),
    ),
}


def _record(name: str, sender: Any, named: dict[str, Any]) -> None:
    if not STACK:
        return
    task_name, task_id = _IDS[name](sender, named)
    recorder = STACK[-1]
    task_id = None if task_id is None else str(task_id)
    task_name = "" if task_name is None else str(task_name)
    if recorder.add_signal(name, task_name, task_id, named) and task_id is not None:
        if name == "before_task_publish":
            recorder.before_publish(task_id, task_name, _message_eta(named))
        elif name == "after_task_publish":
            recorder.after_publish(task_id, task_name)
        elif name in _DISCARDED:
            recorder.discarded(task_id)


def _receiver(name: str) -> Callable[..., None]:
    def receiver(sender: Any = None, signal: Any = None, **named: Any) -> None:
        _record(name, sender, named)

    receiver.__name__ = f"record_{name}"
    return receiver


def _ignore(sender: Any = None, **named: Any) -> None:
    """Keeps the signal's receiver list non-empty, so Celery's tracer sends it."""


def _tracer_sender(name: str, signal: Any, send: Callable[..., Any]) -> Callable[..., Any]:
    receivers = signal.receivers  # Celery changes this list in place

    # Sent for every eager execution: stored as sent (the sending task object) and
    # resolved to a task name and id when the records are read.  Only what the recorder
    # needs of the arguments is kept: keeping them all alive for the rest of the test
    # costs more garbage-collection time than recording them.
    def send_and_record(sender: Any = None, **named: Any) -> Any:
        if STACK:
            thread = ACTIVE_THREADS.get(_get_ident()) or _current_thread()
            if LEFT_RUNNING and not counts_for(STACK[-1], thread):
                STACK[-1].stray(thread, sender)
            else:
                STACK[-1].raw.extend((name, sender, named.get("task_id"), named.get("state"),
                                       _clock(), thread))  # fmt: skip
        if len(receivers) > 1:  # someone else listens too: Celery's own send
            return send(sender=sender, **named)
        return []

    send_and_record.__wrapped__ = send  # type: ignore[attr-defined]
    return send_and_record


def connect(patch: Callable[[Any, str, Any], None]) -> None:
    """Connect the receivers; ``patch(module, name, value)`` replaces a module global."""
    from celery import signals
    from celery.app import trace

    for name in SIGNALS:
        signal = getattr(signals, name)
        global_name = _TRACER_SENDERS.get(name)
        if global_name is not None and hasattr(trace, global_name):
            patch(trace, global_name, _tracer_sender(name, signal, getattr(trace, global_name)))
            signal.connect(_ignore, weak=False, dispatch_uid=_UID + name)
        else:
            signal.connect(_receiver(name), weak=False, dispatch_uid=_UID + name)


def disconnect() -> None:
    """Disconnect every receiver :func:`connect` connected (module globals are unpatched
    by whoever applied ``patch``)."""
    from celery import signals

    for name in SIGNALS:
        getattr(signals, name).disconnect(dispatch_uid=_UID + name)
