"""The task messages sent during a test: held, inspected and run (no pytest import).

``with capture_sent_tasks() as sent:`` (the ``sent_tasks`` fixture does this for a test)
holds every task message any Celery app in the process publishes: ``delay``,
``apply_async``, ``send_task``, signatures, chains (one message carrying the rest),
groups (one per task) and chords (one per header task), also from apps configured with
``task_always_eager``, which publish instead while messages are held.  The messages are
built for real (see :mod:`pytest_celerybase.sent_tasks.capture`), so what a worker could not
receive fails at send time with Celery's own error.  :meth:`SentTasks.run` runs the held
messages first-in first-out the way a worker would (:mod:`pytest_celerybase.sent_tasks.run`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from pytest_celerybase.errors import HeldMessageError, RunawayTasksError
from pytest_celerybase.recorder.active import STACK as RECORDERS
from pytest_celerybase.sent_tasks import capture
from pytest_celerybase.sent_tasks.assertions import check_task_not_sent, check_task_sent
from pytest_celerybase.sent_tasks.message import CapturedMessage, SentTask
from pytest_celerybase.sent_tasks.query import Query
from pytest_celerybase.sent_tasks.run import Runner
from pytest_celerybase.worker import channel

if TYPE_CHECKING:
    from celery.result import EagerResult

__all__ = ["SentTasks", "capture_sent_tasks", "current_sent_tasks", "held_now"]

class SentTasks(Sequence[SentTask]):
    """The task messages sent during a test, in send order (the ``sent_tasks`` fixture).

    A sequence of :class:`SentTask` and the test's history: :meth:`run` removes nothing,
    :attr:`pending` lists the messages still held.  With a ``live_worker`` in the test the
    messages are delivered, not held (:attr:`holding` is ``False``).
    """

    def __init__(self, *, hold: bool = True) -> None:
        self._holding = hold
        self._records: list[SentTask] = []
        self._pending: deque[SentTask] = deque()
        self._lock = threading.Lock()

    @property
    def holding(self) -> bool:
        """Whether messages are held (``False``: they go to the broker and are recorded)."""
        return self._holding

    def captured(self, message: CapturedMessage, result: Any) -> None:
        """Take a message sent just now (the capture calls it; ``result``: what the
        sender got back, guarded when the message is held)."""
        record = SentTask(message)
        with self._lock:
            self._records.append(record)
            if message.held:
                self._pending.append(record)
        if message.held:
            _guard_result(result, record)

    # -- the sequence ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> SentTask: ...
    @overload
    def __getitem__(self, index: slice) -> list[SentTask]: ...
    def __getitem__(self, index: int | slice) -> SentTask | list[SentTask]:
        return self._records[index]

    def __iter__(self) -> Iterator[SentTask]:
        return iter(list(self._records))

    def __repr__(self) -> str:
        names = Counter(r.name for r in list(self._records))
        shown = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in names.items())
        held = f", {len(self._pending)} held" if self._holding else " (delivered)"
        return f"<SentTasks {len(self)} sent{held}: {shown or '-'}>"

    @property
    def pending(self) -> list[SentTask]:
        """The messages still held (not run yet), oldest first."""
        with self._lock:
            return list(self._pending)

    def clear(self) -> None:
        """Forget every message sent so far; held ones are dropped and never run."""
        with self._lock:
            for record in self._pending:
                record.still_held = False
            self._records.clear()
            self._pending.clear()

    # -- running ---------------------------------------------------------------------------
    def run(self, max_tasks: int = 100) -> list[EagerResult]:
        """Run the held messages first-in first-out as a worker would; return the results.

        What they send in turn (chain steps, ``link`` callbacks, retries, tasks sent by
        tasks) is held and run too, until nothing is left; an ETA is not waited for.
        Raises :class:`RunawayTasksError` when ``max_tasks`` messages ran and more are
        held (those stay held).
        """
        __tracebackhide__ = True
        if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 0:
            raise TypeError(f"max_tasks must be an int >= 0, got {max_tasks!r}")
        if not self._holding:
            raise RuntimeError(
                "sent_tasks.run(): nothing is held in this test: with live_worker the "
                "messages go to the broker and the worker runs them (result.get() waits "
                "for it)"
            )
        results: list[EagerResult] = []
        with Runner() as runner:
            while True:
                with self._lock:
                    if not self._pending:
                        return results
                    if len(results) >= max_tasks:
                        raise RunawayTasksError(_runaway_message(self, max_tasks))
                    record = self._pending[0]
                result = runner.execute(record.captured)  # leaves it held if it raises
                record.result = result
                with self._lock:
                    record.still_held = False
                    with contextlib.suppress(ValueError):
                        self._pending.remove(record)
                results.append(result)

    # -- queries and assertions -----------------------------------------------------------
    def filter(
        self, task: Any = None, args: Any = None, kwargs: Any = None, **options: Any
    ) -> list[SentTask]:
        """The messages of ``task`` (any task when ``None``) matching args/kwargs/options.

        Options match as in :func:`~pytest_celerybase.assert_task_sent`.
        """
        __tracebackhide__ = True
        query = Query.build(task, args, kwargs, options, self, "sent_tasks.filter()")
        self.settle()
        return [r for r in list(self._records) if query.matches(r)]

    def settle(self) -> None:
        """With a live worker in the test, wait (bounded, ``celerybase_wait_timeout``) until
        it has run every task due now: what they send is recorded by then.  Tasks with an
        ETA still ahead are not waited for."""
        if self._holding or not RECORDERS:
            return
        recorder = RECORDERS[-1]
        deadline = time.monotonic() + recorder.wait_timeout
        while True:
            recorder.wait_idle(timeout=0)  # takes in what prefork children wrote
            later = {r.id for r in list(self._records) if r.eta is not None and r.eta > r.app.now()}
            due = [tid for tid in recorder.inflight.busy() if tid not in later]
            remaining = deadline - time.monotonic()
            if not due or remaining <= 0:
                return
            recorder.wait_idle(task_id=due[0], timeout=remaining)

    def assert_task_sent(
        self, task: Any, args: Any = None, kwargs: Any = None, *,
        count: int | None = None, **options: Any,
    ) -> None:  # fmt: skip
        """:func:`~pytest_celerybase.assert_task_sent` on these messages."""
        __tracebackhide__ = True
        check_task_sent(self, task, args, kwargs, count, options)

    def assert_task_not_sent(
        self, task: Any, args: Any = None, kwargs: Any = None, **options: Any
    ) -> None:
        """:func:`~pytest_celerybase.assert_task_not_sent` on these messages."""
        __tracebackhide__ = True
        check_task_not_sent(self, task, args, kwargs, options)


def _guard_result(result: Any, record: SentTask) -> None:
    """Make ``result.get()`` of a message still held fail at once instead of never ending."""
    get = getattr(result, "get", None)
    if get is None:
        return

    def guarded_get(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if record.still_held:
            raise HeldMessageError(
                f"result.get() of task {record.name!r} (id {record.id}): its message is "
                "held by sent_tasks and has not run, so no result will ever come; call "
                "sent_tasks.run() first (or assert on the message with assert_task_sent)"
            )
        return get(*args, **kwargs)

    try:
        result.get = guarded_get
        result.wait = guarded_get
    except AttributeError:  # a custom result class with __slots__: left as it is
        pass


def _runaway_message(sent: SentTasks, max_tasks: int) -> str:
    pending = list(sent._pending)
    names = {r.id: r.name for r in sent._records}
    counts = Counter((r.name, names.get(str(r.fields().get("parent_id")))) for r in pending)
    lines = [
        f"sent_tasks.run(max_tasks={max_tasks}) ran {max_tasks} task(s) and {len(pending)} "
        "more are held: tasks keep sending tasks. Held now, by task (and the task that "
        "sent them):"
    ]
    for (name, parent), n in counts.most_common(5):
        origin = f" (sent by {parent!r})" if parent else ""
        lines.append(f"  - {name!r} x{n}{origin}")
    lines.append(
        "If that many is expected, pass a larger max_tasks; the held messages stay in "
        "sent_tasks.pending."
    )
    return "\n".join(lines)


@contextlib.contextmanager
def capture_sent_tasks(*, hold: bool = True) -> Iterator[SentTasks]:
    """Capture every task message sent inside the block (and with ``hold``, hold it).

    The ``sent_tasks`` fixture wraps each test in this; use it directly outside pytest.
    """
    sent = SentTasks(hold=hold)
    capture.activate(sent)
    try:
        yield sent
    finally:
        capture.deactivate(sent)


def current_sent_tasks() -> SentTasks:
    """The innermost active :class:`SentTasks` (the current test's ``sent_tasks``)."""
    sink = capture.current_sink()
    assert isinstance(sink, SentTasks), sink  # the only kind of sink there is
    return sink


def held_now() -> list[SentTask]:
    """The messages the current test's ``sent_tasks`` holds now (none without one)."""
    sink = capture.STACK[-1] if capture.STACK else None
    return sink.pending if isinstance(sink, SentTasks) else []


def _record_from_child(message: CapturedMessage) -> None:
    """Record a message a prefork worker's child sent (its app given by name)."""
    from celery import _state

    sink = capture.STACK[-1] if capture.STACK else None
    if isinstance(sink, SentTasks):
        apps = [a for a in list(_state._get_active_apps()) if a.main == message.app]
        current = _state.get_current_app()
        app = current if current.main == message.app or not apps else apps[0]
        sink.captured(dataclasses.replace(message, app=app), None)


# What a prefork worker's child sends of its task messages reaches the test's sent_tasks.
channel.INGESTERS["sent_task"] = lambda recorder, message: _record_from_child(message)
