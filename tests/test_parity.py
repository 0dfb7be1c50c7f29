"""Eager vs worker parity: every row of ``_parity.PARITY`` measured in both modes.

Each scenario runs eagerly (``eager_app``) and on a real worker (``live_worker`` with the
solo pool and the threads pool); the recorded hooks and the outcome must equal the table
exactly (the manual renders its table from ``PARITY``).  The tasks are declared on the test's
app after the worker started, so the worker's late-registration path is covered too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import celery
import pytest
from celery import Celery, Task
from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded

from pytest_celerybase import HookRecorder, assert_hooks_called, hook_calls, timeline
from pytest_celerybase._parity import PARITY, RAISED, Outcome, Scenario, known_difference
from scripts.parity_table import (
    TABLE_END,
    TABLE_START,
    parse_table,
    render_lifecycle_table,
    render_table,
)
from tests.conftest import RunPytest

WAIT = 5.0  # bound on every wait: a broken worker fails the test instead of hanging it

# The table is measured on Celery 5.7.  Measured on 5.3-5.6: a worker stores no result for
# ``Reject(requeue=False)`` (the task stays PENDING and get() would time out); 5.7 stores
# FAILURE (celery#4222).  Hooks are the same on every version.
REJECT_STORES_FAILURE = tuple(celery.VERSION[:2]) >= (5, 7)
REJECT_WORKER_BEFORE_5_7 = Outcome(
    ("before_start",),
    "PENDING",
    None,
    ("before_task_publish", "after_task_publish", "task_received", "task_prerun",
     "before_start", "task_postrun"),
)  # fmt: skip


class NotJSON:
    """An argument the JSON serializer cannot encode."""


def _measure(
    app: Celery, task: Task, call: Callable[[], Any], *, stores_result: bool = True
) -> Outcome:
    try:
        result = call()
    except Exception as exc:
        hooks = tuple(c.hook for c in hook_calls(task))
        return Outcome(hooks, RAISED, type(exc).__name__, _lifecycle(task))
    if stores_result:
        result.get(timeout=WAIT, propagate=False)  # bounded; eager results are ready
    hooks = tuple(c.hook for c in hook_calls(task))  # waits for the worker to finish
    state = result.state
    value = result.result
    if state == "SUCCESS":
        shown: str | None = repr(value)
    elif isinstance(value, BaseException):
        shown = type(value).__name__
    else:
        shown = None
    return Outcome(hooks, state, shown, _lifecycle(task))


def _lifecycle(task: Task) -> tuple[str, ...]:
    return tuple(e.name for e in timeline(task))


def run_success(app: Celery) -> Outcome:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    return _measure(app, add, lambda: add.delay(1, 2))


def run_raises(app: Celery) -> Outcome:
    @app.task
    def boom() -> None:
        raise ValueError("boom")

    return _measure(app, boom, boom.delay)


def run_retry_success(app: Celery) -> Outcome:
    # countdown 0: a worker republishes at once instead of waiting 180 s.
    @app.task(bind=True, default_retry_delay=0)
    def flaky(self: Task) -> str:
        if self.request.retries < 2:
            raise self.retry(exc=KeyError("again"))
        return "done"

    return _measure(app, flaky, flaky.delay)


def run_retries_exhausted(app: Celery) -> Outcome:
    @app.task(bind=True, max_retries=2, default_retry_delay=0)
    def hopeless(self: Task) -> None:
        raise self.retry(exc=KeyError("again"))

    return _measure(app, hopeless, hopeless.delay)


def run_autoretry_backoff(app: Celery) -> Outcome:
    # retry_backoff_max=0 keeps the exponential backoff code path but a zero countdown.
    @app.task(
        bind=True, autoretry_for=(KeyError,), retry_backoff=True, retry_backoff_max=0, max_retries=3
    )
    def backoff(self: Task) -> str:
        if self.request.retries < 1:
            raise KeyError("flaky")
        return "done"

    return _measure(app, backoff, backoff.delay)


def run_ignore(app: Celery) -> Outcome:
    @app.task
    def ignored() -> None:
        raise Ignore()

    # A worker stores nothing for Ignore: get() would only time out.
    return _measure(app, ignored, ignored.delay, stores_result=False)


def run_reject(app: Celery) -> Outcome:
    @app.task
    def rejected() -> None:
        raise Reject("no thanks", requeue=False)

    stores = REJECT_STORES_FAILURE or bool(app.conf.task_always_eager)
    return _measure(app, rejected, rejected.delay, stores_result=stores)


def run_soft_time_limit(app: Celery) -> Outcome:
    @app.task(soft_time_limit=0.01)
    def slow() -> str:
        try:
            time.sleep(0.05)
        except SoftTimeLimitExceeded:  # what an enforcing pool would raise
            return "soft limit hit"
        return "completed"

    return _measure(app, slow, slow.delay)


def run_unserializable_delay(app: Celery) -> Outcome:
    @app.task
    def takes(obj: object) -> str:
        return "ran"

    return _measure(app, takes, lambda: takes.delay(NotJSON()))


def run_unserializable_apply(app: Celery) -> Outcome:
    @app.task
    def takes(obj: object) -> str:
        return "ran"

    if app.conf.task_always_eager:
        return _measure(app, takes, lambda: takes.apply((NotJSON(),)))
    return _measure(app, takes, lambda: takes.delay(NotJSON()))


RUNNERS: dict[str, Callable[[Celery], Outcome]] = {
    "success": run_success,
    "raises": run_raises,
    "raises_propagating": run_raises,
    "retry_success": run_retry_success,
    "retry_propagating": run_retry_success,
    "retries_exhausted": run_retries_exhausted,
    "autoretry_backoff": run_autoretry_backoff,
    "ignore": run_ignore,
    "reject": run_reject,
    "soft_time_limit": run_soft_time_limit,
    "unserializable_delay": run_unserializable_delay,
    "unserializable_apply": run_unserializable_apply,
}

MODES: dict[str, dict[str, Any]] = {
    "eager": {},
    "worker-solo": {},
    "worker-threads": {"worker_pool": "threads", "worker_concurrency": 1},
    "worker-threads4": {"worker_pool": "threads", "worker_concurrency": 4},
}
# Not run with four pool threads: Task.retry() publishes the next attempt before the
# tracer calls on_retry and stores RETRY, so with an immediate retry another pool thread
# may run the next attempts first: hooks interleave, and the late RETRY can overwrite the
# final state (measured: ~7% of runs, get() then waits forever).  See the manual's
# live_worker how-to.
RETRYING = {"retry_success", "retry_propagating", "retries_exhausted", "autoretry_backoff"}


def _params() -> list[Any]:
    params = []
    for scenario in PARITY:
        for mode, settings in MODES.items():
            if mode == "worker-threads4" and scenario.key in RETRYING:
                continue
            config = dict(settings)
            if scenario.key.endswith("_propagating"):
                config["task_eager_propagates"] = True  # a worker must ignore it
            params.append(
                pytest.param(
                    scenario,
                    mode,
                    marks=[pytest.mark.celerybase(**config)] if config else [],
                    id=f"{scenario.key}-{mode}",
                )
            )
    return params


@pytest.mark.parametrize(("scenario", "mode"), _params())
def test_parity(scenario: Scenario, mode: str, request: pytest.FixtureRequest) -> None:
    if mode == "eager":
        app = request.getfixturevalue("eager_app")
        expected = scenario.eager
    else:
        app = request.getfixturevalue("live_worker").app
        expected = scenario.worker
        if scenario.key == "reject" and not REJECT_STORES_FAILURE:
            expected = REJECT_WORKER_BEFORE_5_7
    measured = RUNNERS[scenario.key](app)
    assert measured == expected, (
        f"{scenario.title!r} in {mode} mode measured {measured}, but the parity table "
        f"(pytest_celerybase/_parity.py) says {expected}"
    )


def test_every_scenario_has_a_runner() -> None:
    assert sorted(RUNNERS) == sorted(s.key for s in PARITY)
    assert len({s.title for s in PARITY}) == len(PARITY)


def test_parse_table_reads_what_render_table_writes() -> None:
    text = f"intro\n{TABLE_START}\n{render_table()}\n{TABLE_END}\nmore"
    rows = parse_table(text)
    assert list(rows) == [s.title for s in PARITY]
    with pytest.raises(ValueError, match="parity-table:start"):
        parse_table("no table here")


def test_known_difference_names_the_row() -> None:
    hint = known_difference(
        ["before_start", "on_failure", "after_return"], ["before_start"], eager=True
    )
    assert hint is not None
    assert "task_eager_propagates=True" in hint and "a worker records" in hint
    assert known_difference(["on_success"], ["before_start"], eager=True) is None
    back = known_difference(
        ["before_start"], ["before_start", "on_failure", "after_return"], eager=False
    )
    assert back is not None and back.startswith("this is a known eager/worker difference")


def test_known_difference_of_lifecycles() -> None:
    raises = next(s for s in PARITY if s.key == "raises_propagating")
    hint = known_difference(
        raises.worker.lifecycle, raises.eager.lifecycle, eager=True, lifecycle=True
    )
    assert hint is not None and "'task_internal_error'" in hint and "'task_failure'" in hint
    # the same sequences, compared as hooks: not a known difference
    assert known_difference(raises.worker.lifecycle, raises.eager.lifecycle, eager=True) is None


def test_lifecycle_table_renders_every_scenario() -> None:
    table = render_lifecycle_table().splitlines()
    assert len(table) == 2 + len(PARITY)
    assert all(f"| {s.title} |" in table[i + 2] for i, s in enumerate(PARITY))
    assert not any("task_received" in s.eager.lifecycle for s in PARITY)  # eager: never
    assert all("task_received" in s.worker.lifecycle or s.worker.state == RAISED for s in PARITY)


def test_eager_failure_message_names_the_worker_difference(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_celerybase import assert_hooks_called

        @pytest.mark.celerybase(task_eager_propagates=True)
        def test_it(eager_app):
            @eager_app.task
            def boom():
                raise ValueError("boom")

            with pytest.raises(ValueError):
                boom.delay()
            assert_hooks_called(boom, ["before_start", "on_failure", "after_return"])
        """
    )
    result = run()
    result.assert_outcomes(failed=1)
    # (fnmatch reads "[...]" as a character class: match around the lists.)
    result.stdout.fnmatch_lines(
        [
            "*Hint: 1 execution(s) ran eagerly with exceptions propagating*",
            "*Hint: this is a known eager/worker difference (raises, "
            "`task_eager_propagates=True`): eager records *'before_start'*, a worker "
            "records *'before_start', 'on_failure', 'after_return'*",
        ]
    )


def test_worker_hooks_wait_for_after_return(live_worker: Any, hook_recorder: HookRecorder) -> None:
    """result.get() returns before on_success/after_return: the assertion must wait."""
    app = live_worker.app

    class Slow(Task):  # type: ignore[misc]
        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            time.sleep(0.05)

        def after_return(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.05)

    @app.task(base=Slow)
    def quick() -> int:
        return 1

    result = quick.delay()
    assert result.get(timeout=WAIT) == 1
    assert_hooks_called(result, ["before_start", "on_success", "after_return"])
