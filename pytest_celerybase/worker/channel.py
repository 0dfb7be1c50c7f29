"""The channel from forked worker children to the test process (no pytest import).

A prefork live worker opens a :class:`ChildChannel` before it forks.  While one
is open, every ``os.fork()`` of this process gets a ``socketpair()``: the parent's end
goes to the channel's reader thread, the child keeps the other and its recorder stack is
replaced by a :class:`ForwardingRecorder`, whose hook calls, executions and publications
are sent to the parent instead of being kept in the child's copy of the test's recorder.
One stream per child keeps each child's events in order; no path, no ``accept()``.
Other capabilities start forwarding in a child through :data:`CHILD_STARTS`.

Everything a child sends is a :data:`Frame` ``(kind, payload, time)`` and the parent
applies it with one function, :func:`ingest`, through :data:`INGESTERS` (one entry per
kind; ``sent_tasks`` registers the kind for the task messages a child sends).  A child
writes synchronously before it goes on, so what it wrote before returning a task's result
through the pool is readable when the pool's callback runs in the parent:
:meth:`ChildChannel.flush` there makes the parent's view exact.  Values that cannot be
pickled cross as their ``repr()``; an exception that cannot be pickled crosses as
Celery's ``UnpickleableExceptionWrapper`` (what the result backend stores for it).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from pytest_celerybase.recorder import records
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.recorder.hook_recorder import BEFORE_READ, HookRecorder, Publication
from pytest_celerybase.recorder.records import HookCall

__all__ = ["CHILD_STARTS", "INGESTERS", "OUTPUTS", "ChildChannel", "ForwardingRecorder",
           "Frame", "flush", "in_child", "ingest", "portable", "send"]  # fmt: skip

#: ``(kind, payload, time.monotonic())``: what a child sends, one at a time.
Frame = tuple[str, Any, float]

_HEADER = struct.Struct(">I")
_PROTOCOL = pickle.HIGHEST_PROTOCOL


# -- child side --------------------------------------------------------------------------
class _Sender:
    """A child's end of the channel (writes under a lock: a task may start threads)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.broken = False

    def send(self, kind: str, payload: Any) -> None:
        data = pickle.dumps((kind, payload, time.monotonic()), protocol=_PROTOCOL)
        with self.lock:
            if self.broken:
                return
            try:
                self.sock.sendall(_HEADER.pack(len(data)) + data)
            except OSError:
                self.broken = True  # the test process is gone: nobody to tell


_sender: _Sender | None = None  # set in a child of an open channel


def in_child() -> bool:
    """Whether this process is a worker child of an open channel (it can :func:`send`)."""
    return _sender is not None and not _sender.broken


def send(kind: str, payload: Any) -> bool:
    """Send an event to the parent when this process is a worker child; else ``False``."""
    sender = _sender
    if sender is None or sender.broken:
        return False
    sender.send(kind, payload)
    return True


def _picklable(value: Any) -> bool:
    """Whether ``value`` survives the trip: some values pickle but cannot be rebuilt (an
    exception whose ``__init__`` takes other arguments than its ``args``)."""
    try:
        pickle.loads(pickle.dumps(value, protocol=_PROTOCOL))
    except Exception:
        return False
    return True


def portable(call: HookCall) -> HookCall:
    """``call`` with every field unpicklable in the parent replaced (see module doc)."""
    if _picklable(call):
        return call
    from celery.utils.serialization import get_pickleable_exception

    values: dict[str, Any] = {}
    for f in dataclasses.fields(call):
        value = getattr(call, f.name)
        if _picklable(value):
            values[f.name] = value
        elif f.name == "exc":
            values[f.name] = get_pickleable_exception(value)
        else:
            values[f.name] = repr(value)
    return HookCall(**values)


def _portable_value(value: Any) -> Any:
    if _picklable(value):
        return value
    if isinstance(value, BaseException):
        from celery.utils.serialization import get_pickleable_exception

        return get_pickleable_exception(value)
    return repr(value)


# What a signal's keyword arguments say that the parent shows (state, exception).
_SIGNAL_DETAIL = ("state", "exception", "reason", "exc")


class _ForwardingLog(list[Any]):
    """A forwarding recorder's log: each event extended onto it is sent, as the parent
    keeps events of another process: ``(name, task name, a, b, time, (thread, pid))``."""

    def __init__(self, recorder: HookRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def extend(self, items: Any) -> None:
        event = tuple(items)
        recorder = self.recorder
        name = event[0]
        if name in records.HOOK_PARAMS:
            call = portable(records.hook_call(event, recorder.pid))
            a, b = call, None
        elif name in (records.COOPERATION, records.OVERRIDE_RAN):
            a, b = event[2], event[3]  # task id; hook and class names / class; method
        else:  # a signal
            event = recorder.resolve_signal(event)
            named = event[3] or {}
            a = event[2]
            b = {k: _portable_value(named[k]) for k in _SIGNAL_DETAIL if k in named}
        thread = event[5]
        send("event", (name, event[1], a, b, event[4], (thread.name, recorder.pid)))


class ForwardingRecorder(HookRecorder):
    """The recorder of a worker child: records go to the test process."""

    def __init__(self, parent: HookRecorder) -> None:
        super().__init__(
            wait_timeout=parent.wait_timeout, watch_overrides=parent.watch_overrides
        )
        self.raw = _ForwardingLog(self)
        # thread -> publications announced to the parent and not confirmed yet
        self._unconfirmed: dict[int, list[str]] = {}

    def execution_started(self, task_id: str, name: str, eager: bool, propagate: bool) -> None:
        send("execution", (task_id, name, eager, propagate))

    def execution_finished(self, task_id: str) -> None:
        # The parent ends the delivery itself, when the pool reports it (see .prefork).
        self._drop_unconfirmed()

    def execution_escaped(self, task_id: str, name: str, exc: BaseException) -> None:
        # The child dies of it: the parent reports WorkerLostError, as in production.
        pass

    def before_publish(self, task_id: str, name: str, eta: Any = None) -> None:
        self._drop_unconfirmed()
        self._unconfirmed.setdefault(threading.get_ident(), []).append(task_id)
        send("before_publish", (task_id, name, eta))

    def after_publish(self, task_id: str, name: str) -> None:
        pending = self._unconfirmed.get(threading.get_ident())
        if pending and task_id in pending:
            pending.remove(task_id)
        send("after_publish", (task_id, name))

    def _drop_unconfirmed(self) -> None:
        # A thread publishes one message at a time: an unconfirmed one failed to go out.
        for task_id in self._unconfirmed.pop(threading.get_ident(), []):
            send("publish_failed", task_id)


# -- parent side -------------------------------------------------------------------------
def _ingest_event(rec: HookRecorder, event: tuple[Any, ...]) -> None:
    rec.add_remote(event)


def _ingest_execution(rec: HookRecorder, payload: tuple[str, str, bool, bool]) -> None:
    rec.note_execution(*payload)


def _ingest_before_publish(rec: HookRecorder, payload: tuple[str, str, Any]) -> None:
    # Each child's stream has its own "thread": the reader thread would otherwise take
    # one child's unconfirmed publication for another's failed one.
    task_id, name, eta = payload
    if not rec.schedule(task_id, eta):
        rec.inflight.publishing(task_id, name, confirm=False)


def _ingest_after_publish(rec: HookRecorder, payload: tuple[str, str]) -> None:
    task_id, name = payload
    rec.published.append(Publication(task_id, name, rec.unschedule(task_id)))


def _ingest_publish_failed(rec: HookRecorder, task_id: str) -> None:
    rec.inflight.finished(task_id)


#: How the parent applies each kind of event to the test's recorder.
INGESTERS: dict[str, Callable[[HookRecorder, Any], None]] = {
    "event": _ingest_event,
    "execution": _ingest_execution,
    "before_publish": _ingest_before_publish,
    "after_publish": _ingest_after_publish,
    "publish_failed": _ingest_publish_failed,
}


#: How the parent applies each kind of event that needs no recorder (a child's log
#: record, warning or output: see :mod:`.child_output`).
OUTPUTS: dict[str, Callable[[Any], None]] = {}

def ingest(event: Frame, channel: ChildChannel | None = None) -> None:
    """Apply one event from a child: to the innermost recorder, or to ``channel``."""
    kind, payload, _ = event
    if channel is not None and kind in channel.handlers:
        channel.handlers[kind](payload)
    elif kind in OUTPUTS:
        OUTPUTS[kind](payload)
    elif STACK:
        INGESTERS[kind](STACK[-1], payload)


#: Called in each worker child forked while a channel is open, once it can :func:`send`
#: (the metrics capture starts forwarding what the child counts, .child_output its logs).
CHILD_STARTS: list[Callable[[], None]] = []

_open: ChildChannel | None = None
_pending = threading.local()  # the pair made by _before_fork, in the forking thread


class ChildChannel:
    """The test process's end: one reader thread ingesting every child's events.

    ``handlers`` take event kinds that are not recorder events (e.g. a child's start
    report) before :func:`ingest` looks at the recorder.
    """

    def __init__(self, handlers: dict[str, Callable[[Any], None]] | None = None) -> None:
        self.handlers = dict(handlers or {})
        self.errors: list[BaseException] = []
        self._owner = os.getpid()
        self._lock = threading.RLock()  # one reader at a time: frames stay in order
        self._selector = selectors.DefaultSelector()
        self._buffers: dict[socket.socket, bytearray] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name="celerybase-child-events", daemon=True
        )

    def open(self) -> None:
        """Instrument forks from now on (one channel at a time) and start reading."""
        global _open
        if _open is not None:
            raise RuntimeError("a prefork live worker is running already in this process")
        _open = self
        self._thread.start()

    def close(self) -> None:
        """Read what is left, stop the reader and close every socket; idempotent."""
        global _open
        if _open is self:
            _open = None
        with self._lock:
            if self._closed:
                return
            self._drain()
            self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(5.0)
        with self._lock:
            for sock in list(self._buffers):
                self._drop(sock)
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def flush(self) -> None:
        """Ingest everything children have written so far (from any thread)."""
        with self._lock:
            if not self._closed:
                self._drain()

    def _add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        with self._lock:
            self._buffers[sock] = bytearray()
            self._selector.register(sock, selectors.EVENT_READ)
        os.write(self._wake_w, b"x")  # the reader selects again, with the new socket

    def _drop(self, sock: socket.socket) -> None:
        self._buffers.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _run(self) -> None:
        while not self._closed:
            try:
                self._selector.select()
            except (OSError, ValueError):  # closed under us
                return
            with self._lock:
                if self._closed:
                    return
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
                self._drain()

    def _drain(self) -> None:
        events: list[Frame] = []
        for sock, buf in list(self._buffers.items()):
            eof = False
            while True:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    break
                except OSError:
                    chunk = b""
                if not chunk:
                    eof = True
                    break
                buf += chunk
            events.extend(self._frames(buf))
            if eof:
                self._drop(sock)  # a killed child's partial frame goes with it
        # Several children's streams: apply in the order the events happened.
        events.sort(key=lambda e: e[2])
        for event in events:
            try:
                ingest(event, self)
            except Exception as exc:  # kept for the worker to report; never kill the reader
                self.errors.append(exc)

    def _frames(self, buf: bytearray) -> list[Frame]:
        frames = []
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            end = _HEADER.size + size
            if len(buf) < end:
                break
            data = bytes(buf[_HEADER.size:end])
            del buf[:end]
            try:
                frames.append(pickle.loads(data))
            except Exception as exc:  # one frame lost, never the reader (or the session)
                self.errors.append(exc)
        return frames


def flush() -> None:
    """Ingest what the children of the open channel wrote so far (no channel: no-op)."""
    channel = _open
    if channel is not None:
        channel.flush()


# -- fork hooks ----------------------------------------------------------------------------
def _before_fork() -> None:
    channel = _open
    if channel is not None and channel._owner == os.getpid():
        _pending.pair = (channel, *socket.socketpair())


def _after_fork_in_parent() -> None:
    pending = getattr(_pending, "pair", None)
    if pending is not None:
        _pending.pair = None
        channel, mine, theirs = pending
        theirs.close()
        channel._add(mine)


def _after_fork_in_child() -> None:
    global _open, _sender
    pending = getattr(_pending, "pair", None)
    _pending.pair = None
    inherited, _open, _sender = _open, None, None
    if inherited is not None:
        # The parent's reader thread does not exist here: drop its sockets unused.
        for sock in list(inherited._buffers):
            sock.close()
    if pending is None:
        return
    _, mine, theirs = pending
    mine.close()
    _sender = _Sender(theirs)
    if STACK:
        # A parent thread may have held the inherited recorder's locks at fork time:
        # the child records through its own forwarder only.
        STACK[:] = [ForwardingRecorder(STACK[-1])]
    for start in CHILD_STARTS:
        start()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)

# An assertion's wait reads in what the children wrote first (the recorder cannot import
# this module: it is below the worker).
BEFORE_READ.append(flush)
