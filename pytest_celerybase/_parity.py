"""Eager vs worker, held vs broker: what Celery does in each mode, as measured (no pytest,
no Celery).

:data:`PARITY` is the single source of the manual's "Eager vs worker" table, rendered
from it when the manual is built (docs/explanation/eager-vs-worker.md):
``tests/test_parity.py`` runs every scenario eagerly (``eager_app``) and on a real worker
(``live_worker``, solo and threads pools) and fails when the measurement differs from
the table; ``scripts/parity_table.py`` renders it as Markdown.  Hook assertions use
:func:`known_difference` to say when a failure is one of these differences.

:data:`HELD_PARITY` is the same for messages held by ``sent_tasks`` and run by
``sent_tasks.run()`` vs messages sent to a broker and run by a worker, measured by
``tests/test_sent_parity.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
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


@dataclass(frozen=True)
class Outcome:
    """Hooks recorded for the task (in order) and how the call ended.

    ``state`` is the result's Celery state as the caller sees it once the task is done
    (``AsyncResult(id).state``), or :data:`RAISED` when the call itself raised;
    ``result`` is the return value's repr, the exception's class name, or ``None``;
    ``lifecycle`` is every hook and task signal recorded for the task, in order.
    """

    hooks: tuple[str, ...]
    state: str
    result: str | None = None
    lifecycle: tuple[str, ...] = ()

    def render_hooks(self) -> str:
        return ", ".join(self.hooks) if self.hooks else "(none)"

    def render_outcome(self) -> str:
        if self.state == RAISED:
            return f"call raises {self.result}"
        return self.state if self.result is None else f"{self.state}: {self.result}"


@dataclass(frozen=True)
class Scenario:
    """One row: how the task behaves, eagerly and on a worker, and why they differ."""

    key: str
    title: str
    eager: Outcome
    worker: Outcome
    note: str


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

#: The measured table (Celery 5.7; ``task_eager_propagates=False`` unless the row says).
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
        "not enforced by eager runs nor by the solo/threads pools (only prefork, "
        "eventlet and gevent enforce time limits): no `SoftTimeLimitExceeded`",
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
            return (
                f"this is a known eager/worker difference ({s.title}): {here} records "
                f"{list(here_seen)}, {there} records {list(there_seen)}; {s.note}. "
                f"See {_TABLE_DOCS}; run the test with the live_worker fixture to check "
                "the worker's behaviour."
            )
    return None
