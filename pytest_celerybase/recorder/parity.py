"""Eager vs worker vs prefork, held vs broker: what Celery does in each mode, as measured
(no pytest, no Celery).

:data:`PARITY` is the single source of the manual's "Eager vs worker" table, rendered
from it when the manual is built (docs/explanation/eager-vs-worker.md):
``tests/test_parity.py`` runs every scenario eagerly (``eager_app``), on a real worker
(``live_worker``, solo and threads pools) and on a prefork worker (child processes) and
fails when the measurement differs from the table; ``scripts/parity_table.py`` renders
it as Markdown.  Hook assertions use :func:`known_difference` to say when a failure is
one of the eager/worker differences.

:data:`HELD_PARITY` is the same for messages held by ``sent_tasks`` and run by
``sent_tasks.run()`` vs messages sent to a broker and run by a worker, measured by
``tests/test_sent_parity.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CANNOT_RUN",
    "HELD_PARITY",
    "PARITY",
    "RAISED",
    "HeldScenario",
    "Outcome",
    "Scenario",
    "known_difference",
]

#: Where the manual shows the table (checked by scripts/check_readme_links.py).
_TABLE_DOCS = "https://pytest-celerybase.readthedocs.io/en/latest/explanation/eager-vs-worker.html"

#: ``Outcome.state`` of a call that raised instead of returning a result.
RAISED = "RAISED"
#: ``Outcome.state`` of a scenario that cannot run in that mode (``result`` says why).
CANNOT_RUN = "CANNOT_RUN"


@dataclass(frozen=True)
class Outcome:
    """Hooks recorded for the task (in order) and how the call ended.

    ``state`` is the result's Celery state as the caller sees it once the task is done
    (``AsyncResult(id).state``), :data:`RAISED` when the call itself raised, or
    :data:`CANNOT_RUN` when the scenario cannot happen in that mode; ``result`` is the
    return value's repr (for a scenario of several calls, what they show together), the
    exception's class name, why it cannot run, or ``None``; ``lifecycle`` is every hook
    and task signal recorded for the task, in order.
    """

    hooks: tuple[str, ...]
    state: str
    result: str | None = None
    lifecycle: tuple[str, ...] = ()

    def render_hooks(self) -> str:
        if self.state == CANNOT_RUN:
            return "-"
        return _names(self.hooks)

    def render_outcome(self) -> str:
        if self.state == RAISED:
            return f"call raises {self.result}"
        if self.state == CANNOT_RUN:
            return f"cannot happen: {self.result}"
        return self.state if self.result is None else f"{self.state}: {self.result}"

    def render_lifecycle(self) -> str:
        if self.state == CANNOT_RUN:
            return "-"
        return _names(self.lifecycle)


def _names(names: tuple[str, ...]) -> str:
    """``names`` joined, a sequence repeated n times as ``n times: ...``."""
    if not names:
        return "(none)"
    for size in range(1, len(names) // 2 + 1):
        times, rest = divmod(len(names), size)
        if not rest and names == names[:size] * times:
            return f"{times} times: {', '.join(names[:size])}"
    return ", ".join(names)


@dataclass(frozen=True)
class Scenario:
    """One row: how the task behaves eagerly, on a worker and on a prefork worker, and why.

    ``worker`` is measured on the solo and threads pools; ``prefork`` on the prefork pool
    (tasks run in child processes, as in production), ``None`` when it is the same as
    ``worker``.
    """

    key: str
    title: str
    eager: Outcome
    worker: Outcome
    note: str
    prefork: Outcome | None = None

    @property
    def on_prefork(self) -> Outcome:
        """What a prefork worker records (``prefork``, or ``worker`` when the same)."""
        return self.worker if self.prefork is None else self.prefork


_OK = ("before_start", "on_success", "after_return")
_FAIL = ("before_start", "on_failure", "after_return")
_RETRY_TWICE_OK = ("before_start", "on_retry", "before_start", "on_retry", *_OK)

# Lifecycles (hooks and signals).  Eager: one execution after another in the caller's
# thread.  Worker: the caller publishes, the worker receives and runs; a retry publishes
# the next message from inside the attempt, before on_retry.
_PUB = ("before_task_publish", "after_task_publish")
_RUN_OK = ("task_prerun", "before_start", "on_success", "task_success", "after_return",
           "task_postrun")  # fmt: skip
_RUN_FAIL = ("task_prerun", "before_start", "on_failure", "task_failure", "after_return",
             "task_postrun")  # fmt: skip
_RUN_RETRY = ("task_prerun", "before_start", "on_retry", "task_retry", "task_postrun")
_RUN_STOPPED = ("task_prerun", "before_start", "task_postrun")  # Ignore, Reject
_RUN_RAISED = (*_RUN_STOPPED, "task_internal_error")  # eager, propagating
_W_RETRY = ("task_received", "task_prerun", "before_start", *_PUB, "on_retry", "task_retry",
            "task_postrun")  # fmt: skip
_W_OK = (*_PUB, "task_received", *_RUN_OK)
_W_FAIL = (*_PUB, "task_received", *_RUN_FAIL)
_W_RETRY_TWICE_OK = (*_PUB, *_W_RETRY, *_W_RETRY, "task_received", *_RUN_OK)

# Only a prefork worker has child processes to lose.
_NO_CHILD_EAGER = Outcome((), CANNOT_RUN, "no child process (eager runs in the test's thread)")
_NO_CHILD_WORKER = Outcome((), CANNOT_RUN, "no child process (solo/threads run in threads)")
_LOST_CHILD = Outcome(
    ("before_start",), "FAILURE", "WorkerLostError",
    (*_PUB, "task_received", "task_prerun", "before_start", "task_failure"),
)

#: The measured table (Celery 5.7; ``task_eager_propagates=False`` unless the row says;
#: prefork rows with ``worker_concurrency=1``).
PARITY: tuple[Scenario, ...] = (
    Scenario(
        "success", "returns",
        Outcome(_OK, "SUCCESS", "3", _RUN_OK), Outcome(_OK, "SUCCESS", "3", _W_OK),
        "same hooks; a worker adds the publish signals and `task_received`",
    ),
    Scenario(
        "raises", "raises `ValueError`",
        Outcome(_FAIL, "FAILURE", "ValueError", _RUN_FAIL),
        Outcome(_FAIL, "FAILURE", "ValueError", _W_FAIL),
        "same (with the plugin default `task_eager_propagates=False`)",
    ),
    Scenario(
        "raises_propagating", "raises, `task_eager_propagates=True`",
        Outcome(("before_start",), RAISED, "ValueError", _RUN_RAISED),
        Outcome(_FAIL, "FAILURE", "ValueError", _W_FAIL),
        "eager raises before `on_failure`/`after_return` run and before `task_failure` is "
        "sent, sending `task_internal_error` instead (celery#5666); a worker ignores the "
        "setting",
    ),
    Scenario(
        "retry_success", "`self.retry()` twice, then returns",
        Outcome(_RETRY_TWICE_OK, "SUCCESS", "'done'", (*_RUN_RETRY, *_RUN_RETRY, *_RUN_OK)),
        Outcome(_RETRY_TWICE_OK, "SUCCESS", "'done'", _W_RETRY_TWICE_OK),
        "same hooks; eager retries inline and ignores `countdown`, a worker publishes a "
        "new message per retry and waits the countdown (default 180 s)",
    ),
    Scenario(
        "retry_propagating", "`self.retry()` twice, then returns, `task_eager_propagates=True`",
        Outcome(("before_start",), RAISED, "Retry", _RUN_RAISED),
        Outcome(_RETRY_TWICE_OK, "SUCCESS", "'done'", _W_RETRY_TWICE_OK),
        "eager raises `Retry` out of the call: no `on_retry`, no retry",
    ),
    Scenario(
        "retries_exhausted", "`self.retry()` past `max_retries=2`",
        Outcome(("before_start", "on_retry", "before_start", "on_retry", *_FAIL),
                "FAILURE", "KeyError", (*_RUN_RETRY, *_RUN_RETRY, *_RUN_FAIL)),
        Outcome(("before_start", "on_retry", "before_start", "on_retry", *_FAIL),
                "FAILURE", "KeyError",
                (*_PUB, *_W_RETRY, *_W_RETRY, "task_received", *_RUN_FAIL)),
        "same; the stored exception is the one passed as `exc=`",
    ),
    Scenario(
        "autoretry_backoff", "`autoretry_for` + `retry_backoff`: fails once, then returns",
        Outcome(("before_start", "on_retry", *_OK), "SUCCESS", "'done'",
                (*_RUN_RETRY, *_RUN_OK)),
        Outcome(("before_start", "on_retry", *_OK), "SUCCESS", "'done'",
                (*_PUB, *_W_RETRY, "task_received", *_RUN_OK)),
        "same hooks; eager ignores the backoff delay, a worker waits it",
    ),
    Scenario(
        "ignore", "raises `Ignore`",
        Outcome(("before_start",), "IGNORED", "Ignore", _RUN_STOPPED),
        Outcome(("before_start",), "PENDING", None, (*_PUB, "task_received", *_RUN_STOPPED)),
        "a worker stores no result: `get()` waits until its timeout",
    ),
    Scenario(
        "reject", "raises `Reject(requeue=False)`",
        Outcome(("before_start",), "REJECTED", "Reject", _RUN_STOPPED),
        Outcome(("before_start",), "FAILURE", "Reject",
                (*_PUB, "task_received", *_RUN_STOPPED, "task_failure")),
        "no `on_failure`/`after_return` in either mode; a worker drops the message, "
        "stores FAILURE and sends `task_failure` after `task_postrun`; `get()` raises "
        "`Reject`",
    ),
    Scenario(
        "soft_time_limit", "runs past `soft_time_limit`",
        Outcome(_OK, "SUCCESS", "'completed'", _RUN_OK),
        Outcome(_OK, "SUCCESS", "'completed'", _W_OK),
        "not enforced by eager runs nor by the solo/threads pools: no "
        "`SoftTimeLimitExceeded`; prefork raises it inside the task, which can clean up "
        "and return",
        prefork=Outcome(_OK, "SUCCESS", "'soft limit hit'", _W_OK),
    ),
    Scenario(
        "time_limit", "runs past `time_limit`",
        Outcome(_OK, "SUCCESS", "'completed'", _RUN_OK),
        Outcome(_OK, "SUCCESS", "'completed'", _W_OK),
        "not enforced eagerly nor by solo/threads; prefork kills the child: "
        "`before_start` ran in the child, the worker's parent process sends "
        "`task_failure`, runs `on_failure` and `after_return` and sends `task_failure` "
        "again (celery#10226), then the dying child sends `task_postrun`",
        prefork=Outcome(
            ("before_start", "on_failure", "after_return"), "FAILURE", "TimeLimitExceeded",
            (*_PUB, "task_received", "task_prerun", "before_start", "task_failure",
             "on_failure", "after_return", "task_failure", "task_postrun"),
        ),
    ),
    Scenario(
        "child_killed", "its process is killed mid-task (`live_worker.kill_child`)",
        _NO_CHILD_EAGER, _NO_CHILD_WORKER,
        "as by the OOM killer: no hook runs after `before_start` (in the child); the "
        "worker's parent process sends `task_failure`",
        prefork=_LOST_CHILD,
    ),
    Scenario(
        "child_exits", "calls `os._exit()`",
        Outcome((), CANNOT_RUN, "it would end the test process"),
        Outcome((), CANNOT_RUN, "it would end the test process"),
        "the same as a killed child: `WorkerLostError`, no hook after `before_start`",
        prefork=_LOST_CHILD,
    ),
    Scenario(
        "child_lost_redelivered",
        "its process dies once, `acks_late=True`, `reject_on_worker_lost=True`",
        _NO_CHILD_EAGER, _NO_CHILD_WORKER,
        "the message goes back to the queue and runs again in another child: no hook "
        "after the lost attempt's `before_start`, no `task_failure`",
        prefork=Outcome(
            ("before_start", *_OK), "SUCCESS", "'second delivery'",
            (*_PUB, "task_received", "task_prerun", "before_start", "task_received",
             *_RUN_OK),
        ),
    ),
    Scenario(
        "max_tasks_per_child", "`worker_max_tasks_per_child=1`, called three times",
        Outcome((*_OK, *_OK, *_OK), "SUCCESS", "3 calls in the test process",
                (*_RUN_OK, *_RUN_OK, *_RUN_OK)),
        Outcome((*_OK, *_OK, *_OK), "SUCCESS", "3 calls in the test process",
                (*_W_OK, *_W_OK, *_W_OK)),
        "only prefork recycles its children: each call runs in a new child process",
        prefork=Outcome((*_OK, *_OK, *_OK), "SUCCESS", "3 calls in 3 child processes",
                        (*_W_OK, *_W_OK, *_W_OK)),
    ),
    Scenario(
        "unserializable_delay", "argument not JSON-serializable, `delay()`",
        Outcome((), RAISED, "EncodeError"),
        Outcome((), RAISED, "EncodeError", ("before_task_publish",)),
        "eager `delay()`/`apply_async()` round-trip the arguments through the serializer "
        "too (Celery 5.7); a worker's publish fails after `before_task_publish`",
    ),
    Scenario(
        "unserializable_apply",
        "argument not JSON-serializable, eager `apply()` vs worker `delay()`",
        Outcome(_OK, "SUCCESS", "'ran'", _RUN_OK),
        Outcome((), RAISED, "EncodeError", ("before_task_publish",)),
        "`apply()` never serializes: it accepts what a worker's publish rejects",
    ),
)


@dataclass(frozen=True)
class HeldScenario:
    """One row: what happens to a message held by ``sent_tasks`` and run by ``run()``,
    what happens to it on a real broker with a worker, and why they differ."""

    key: str
    title: str
    held: str
    broker: str
    note: str


#: The measured held-vs-broker table (Celery 5.7, memory broker and solo worker).
HELD_PARITY: tuple[HeldScenario, ...] = (
    HeldScenario(
        "countdown", "`apply_async(countdown=0.5)`",
        "ran before its eta", "ran after its eta",
        "`run()` does not wait for an ETA (nor a retry's countdown): assert it with "
        "`assert_task_sent(..., countdown=...)`",
    ),
    HeldScenario(
        "unconsumed_queue", "sent to a queue no worker consumes (`queue='elsewhere'`)",
        "SUCCESS", "PENDING, never ran",
        "no broker-side routing: `run()` runs every held message whatever its queue, a "
        "worker only its own queues (`-Q`); assert `queue=` to catch a routing mistake",
    ),
    HeldScenario(
        "reject_requeue", "`acks_late=True`, raises `Reject(requeue=True)` once",
        "REJECTED, ran 1 time", "SUCCESS, ran 2 times",
        "no broker, no ack: a requeued (or unacknowledged) message is not delivered "
        "again; `run()` returns REJECTED (nothing is stored)",
    ),
    HeldScenario(
        "refused_serializer", "sent as pickle, the app accepts only JSON",
        "`run()` raises ContentDisallowed", "PENDING, never ran",
        "the same refusal: a worker logs it and drops the message, `run()` raises it",
    ),
    HeldScenario(
        "expired", "`expires` passed before it runs",
        "REVOKED, never ran", "REVOKED, never ran",
        "same (`task_revoked` with `expired=True`)",
    ),
    HeldScenario(
        "chain_and_link", "chain of three, `link` callback on the last",
        "SUCCESS: 112, 4 tasks ran", "SUCCESS: 112, 4 tasks ran",
        "same: each step and the callback is a new message, held and run in turn",
    ),
)  # fmt: skip


def known_difference(
    expected: Sequence[str], actual: Sequence[str], *, eager: bool, lifecycle: bool = False
) -> str | None:
    """Explain ``actual != expected`` when it is a known eager/worker difference.

    True when ``actual`` is what this mode records for a scenario of :data:`PARITY` and
    ``expected`` is what the other mode records for it (hooks, or with ``lifecycle``
    hooks and signals).
    """
    for s in PARITY:
        mine, other = (s.eager, s.worker) if eager else (s.worker, s.eager)
        here_seen = mine.lifecycle if lifecycle else mine.hooks
        there_seen = other.lifecycle if lifecycle else other.hooks
        if here_seen != there_seen and tuple(actual) == here_seen and (
            tuple(expected) == there_seen
        ):
            here, there = ("eager", "a worker") if eager else ("a worker", "eager")
            check = (
                "run the test with the live_worker fixture to check the worker's behaviour"
                if eager
                else "expect what a worker records: production runs on one"
            )
            return (
                f"this is a known eager/worker difference ({s.title}): {here} records "
                f"{list(here_seen)}, {there} records {list(there_seen)}; {s.note}. "
                f"See {_TABLE_DOCS}; {check}."
            )
    return None
