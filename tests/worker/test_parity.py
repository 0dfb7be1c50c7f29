"""Eager vs worker vs prefork parity: every row of ``_parity.PARITY`` measured in each mode.

Each scenario runs eagerly (``eager_app``), on a real worker (``live_worker`` with the
solo pool and the threads pool) and on a prefork worker (one child process); the recorded
hooks, signals and the outcome must equal the table exactly (the manual renders its table
from ``PARITY``).  On the solo and threads pools the tasks are declared on the test's app
after the worker started, so the worker's late-registration path is covered too; a
prefork worker's child has the tasks its app had when it was forked, so there they are
declared first, with ``@shared_task``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery
import pytest
from celery import Celery, Task, shared_task
from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded

from pytest_celerybase import HookRecorder, assert_hooks_called, hook_calls, timeline
from pytest_celerybase.apps.celery_globals import celery_globals_restored
from pytest_celerybase.recorder.parity import (
    CANNOT_RUN,
    PARITY,
    RAISED,
    Outcome,
    Scenario,
    known_difference,
)
from pytest_celerybase.worker import LiveWorker
from scripts.parity_table import (
    TABLE_END,
    TABLE_START,
    parse_table,
    render_lifecycle_table,
    render_table,
)
from tests.conftest import RunPytest

WAIT = 5.0  # bound on every wait: a broken worker fails the test instead of hanging it
TEST_PID = os.getpid()
_PUB = ("before_task_publish", "after_task_publish")

# The table is measured on Celery 5.7.  Measured on 5.3-5.6: a worker stores no result for
# ``Reject(requeue=False)`` (the task stays PENDING and get() would time out); 5.7 stores
# FAILURE (celery#4222).  Hooks are the same on every version.
REJECT_STORES_FAILURE = tuple(celery.VERSION[:2]) >= (5, 7)
REJECT_WORKER_BEFORE_5_7 = Outcome(
    ("before_start",),
    "PENDING",
    None,
    (*_PUB, "task_received", "task_prerun", "before_start", "task_postrun"),
)
# Measured on 5.6: a hard time limit runs no hook in the parent and sends task_failure
# once (5.7 runs on_failure/after_return there, celery#10226).
HARD_LIMIT_RUNS_HOOKS = tuple(celery.VERSION[:2]) >= (5, 7)
TIME_LIMIT_PREFORK_BEFORE_5_7 = Outcome(
    ("before_start",),
    "FAILURE",
    "TimeLimitExceeded",
    (*_PUB, "task_received", "task_prerun", "before_start", "task_failure", "task_postrun"),
)


class NotJSON:
    """An argument the JSON serializer cannot encode."""


@dataclass(frozen=True)
class Mode:
    """Where a scenario is measured: the app, its live worker (eager: none), a tmp dir."""

    app: Celery
    worker: LiveWorker | None
    tmp: Path


#: Declares a scenario's task: ``app.task``, or ``celery.shared_task`` before a prefork
#: worker forks its child.
Declare = Callable[..., Any]
Measure = Callable[[Mode], Outcome]


def _overrun() -> float:
    """How long the time-limited tasks run: past their limits (0.05 s) in the test
    process; in a prefork child until the limit stops them (bounded)."""
    return 0.05 if os.getpid() == TEST_PID else WAIT


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


def prepare_success(task: Declare) -> Measure:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    return lambda mode: _measure(mode.app, add, lambda: add.delay(1, 2))


def prepare_raises(task: Declare) -> Measure:
    @task
    def boom() -> None:
        raise ValueError("boom")

    return lambda mode: _measure(mode.app, boom, boom.delay)


def prepare_retry_success(task: Declare) -> Measure:
    # countdown 0: a worker republishes at once instead of waiting 180 s.
    @task(bind=True, default_retry_delay=0)
    def flaky(self: Task) -> str:
        if self.request.retries < 2:
            raise self.retry(exc=KeyError("again"))
        return "done"

    return lambda mode: _measure(mode.app, flaky, flaky.delay)


def prepare_retries_exhausted(task: Declare) -> Measure:
    @task(bind=True, max_retries=2, default_retry_delay=0)
    def hopeless(self: Task) -> None:
        raise self.retry(exc=KeyError("again"))

    return lambda mode: _measure(mode.app, hopeless, hopeless.delay)


def prepare_autoretry_backoff(task: Declare) -> Measure:
    # retry_backoff_max=0 keeps the exponential backoff code path but a zero countdown.
    @task(
        bind=True, autoretry_for=(KeyError,), retry_backoff=True, retry_backoff_max=0, max_retries=3
    )
    def backoff(self: Task) -> str:
        if self.request.retries < 1:
            raise KeyError("flaky")
        return "done"

    return lambda mode: _measure(mode.app, backoff, backoff.delay)


def prepare_ignore(task: Declare) -> Measure:
    @task
    def ignored() -> None:
        raise Ignore()

    # A worker stores nothing for Ignore: get() would only time out.
    return lambda mode: _measure(mode.app, ignored, ignored.delay, stores_result=False)


def prepare_reject(task: Declare) -> Measure:
    @task
    def rejected() -> None:
        raise Reject("no thanks", requeue=False)

    def measure(mode: Mode) -> Outcome:
        stores = REJECT_STORES_FAILURE or bool(mode.app.conf.task_always_eager)
        return _measure(mode.app, rejected, rejected.delay, stores_result=stores)

    return measure


def prepare_soft_time_limit(task: Declare) -> Measure:
    @task(soft_time_limit=0.01)
    def slow() -> str:
        try:
            time.sleep(_overrun())
        except SoftTimeLimitExceeded:  # what an enforcing pool raises
            return "soft limit hit"
        return "completed"

    return lambda mode: _measure(mode.app, slow, slow.delay)


def prepare_time_limit(task: Declare) -> Measure:
    @task(time_limit=0.02)
    def stuck() -> str:
        time.sleep(_overrun())
        return "completed"

    return lambda mode: _measure(mode.app, stuck, stuck.delay)


def prepare_child_killed(task: Declare) -> Measure:
    @task
    def sleeps() -> None:
        time.sleep(WAIT)  # the kill lands mid-task

    def measure(mode: Mode) -> Outcome:
        assert mode.worker is not None
        result = sleeps.delay()
        mode.worker.kill_child(result.id, timeout=WAIT)  # SIGKILL once before_start ran
        return _measure(mode.app, sleeps, lambda: result)

    return measure


def prepare_child_exits(task: Declare) -> Measure:
    @task
    def exits() -> None:
        os._exit(3)

    return lambda mode: _measure(mode.app, exits, exits.delay)


def prepare_child_lost_redelivered(task: Declare) -> Measure:
    @task(bind=True, acks_late=True, reject_on_worker_lost=True)
    def dies_once(self: Task, marker: str) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()  # the first delivery leaves a mark, then its child dies
            os._exit(9)
        return "second delivery"

    return lambda mode: _measure(
        mode.app, dies_once, lambda: dies_once.delay(str(mode.tmp / "died"))
    )


def prepare_max_tasks_per_child(task: Declare) -> Measure:
    @task
    def pid() -> int:
        return os.getpid()

    def measure(mode: Mode) -> Outcome:
        pids = []
        for _ in range(3):
            result = pid.delay()
            pids.append(result.get(timeout=WAIT))
            hook_calls(pid)  # the call is over (after_return ran) before the next one
        if set(pids) == {TEST_PID}:
            where = "the test process"
        elif TEST_PID in pids:
            where = f"{len(set(pids))} processes, the test's among them"
        else:
            where = f"{len(set(pids))} child processes"
        hooks = tuple(c.hook for c in hook_calls(pid))
        return Outcome(hooks, result.state, f"{len(pids)} calls in {where}", _lifecycle(pid))

    return measure


def prepare_unserializable_delay(task: Declare) -> Measure:
    @task
    def takes(obj: object) -> str:
        return "ran"

    return lambda mode: _measure(mode.app, takes, lambda: takes.delay(NotJSON()))


def prepare_unserializable_apply(task: Declare) -> Measure:
    @task
    def takes(obj: object) -> str:
        return "ran"

    def measure(mode: Mode) -> Outcome:
        if mode.app.conf.task_always_eager:
            return _measure(mode.app, takes, lambda: takes.apply((NotJSON(),)))
        return _measure(mode.app, takes, lambda: takes.delay(NotJSON()))

    return measure


RUNNERS: dict[str, Callable[[Declare], Measure]] = {
    "success": prepare_success,
    "raises": prepare_raises,
    "raises_propagating": prepare_raises,
    "retry_success": prepare_retry_success,
    "retry_propagating": prepare_retry_success,
    "retries_exhausted": prepare_retries_exhausted,
    "autoretry_backoff": prepare_autoretry_backoff,
    "ignore": prepare_ignore,
    "reject": prepare_reject,
    "soft_time_limit": prepare_soft_time_limit,
    "time_limit": prepare_time_limit,
    "child_killed": prepare_child_killed,
    "child_exits": prepare_child_exits,
    "child_lost_redelivered": prepare_child_lost_redelivered,
    "max_tasks_per_child": prepare_max_tasks_per_child,
    "unserializable_delay": prepare_unserializable_delay,
    "unserializable_apply": prepare_unserializable_apply,
}

MODES: dict[str, dict[str, Any]] = {
    "eager": {},
    "worker-solo": {},
    "worker-threads": {"worker_pool": "threads", "worker_concurrency": 1},
    "worker-threads4": {"worker_pool": "threads", "worker_concurrency": 4},
    # One child: a second one would only add a fork per test (the prefork tests are the
    # slowest of the suite); tests/test_prefork.py runs two.
    "worker-prefork": {"worker_pool": "prefork", "worker_concurrency": 1},
}
# Not run with four pool threads: Task.retry() publishes the next attempt before the
# tracer calls on_retry and stores RETRY, so with an immediate retry another pool thread
# may run the next attempts first: hooks interleave, and the late RETRY can overwrite the
# final state (measured: ~7% of runs, get() then waits forever).  See the manual's
# live_worker how-to.
RETRYING = {"retry_success", "retry_propagating", "retries_exhausted", "autoretry_backoff"}
# Settings a scenario needs (worker settings only in the worker modes: eager_app refuses
# them, since they would change nothing there).
SETTINGS: dict[str, dict[str, Any]] = {
    "raises_propagating": {"task_eager_propagates": True},  # a worker must ignore it
    "retry_propagating": {"task_eager_propagates": True},
    "max_tasks_per_child": {"worker_max_tasks_per_child": 1},
}


def expected_outcome(scenario: Scenario, mode: str) -> Outcome:
    """What the table says ``mode`` records for ``scenario`` (on this Celery version)."""
    if mode == "eager":
        return scenario.eager
    expected = scenario.on_prefork if mode == "worker-prefork" else scenario.worker
    if scenario.key == "reject" and not REJECT_STORES_FAILURE:
        return REJECT_WORKER_BEFORE_5_7
    if scenario.key == "time_limit" and mode == "worker-prefork" and not HARD_LIMIT_RUNS_HOOKS:
        return TIME_LIMIT_PREFORK_BEFORE_5_7
    return expected


def _params() -> list[Any]:
    params = []
    for scenario in PARITY:
        for mode, settings in MODES.items():
            if mode == "worker-threads4" and scenario.key in RETRYING:
                continue
            if expected_outcome(scenario, mode).state == CANNOT_RUN:
                continue  # e.g. no child process to kill: nothing to measure
            config = {**settings, **SETTINGS.get(scenario.key, {})}
            if mode == "eager":
                config = {k: v for k, v in config.items() if not k.startswith("worker_")}
            params.append(
                pytest.param(
                    scenario,
                    mode,
                    marks=[pytest.mark.celerybase(**config)] if config else [],
                    id=f"{scenario.key}-{mode}",
                )
            )
    return params


def _shared(prefix: str) -> Declare:
    """``@shared_task``, naming each task ``parity.<prefix>.<function>``.

    ``@shared_task`` also registers the task on every app that exists (e.g. an earlier
    test's, not collected yet): a name of its own per scenario keeps two scenarios'
    ``boom`` apart there (no DuplicateTaskNameWarning).
    """

    def declare(*args: Any, **options: Any) -> Any:
        def named(fun: Callable[..., Any]) -> Any:
            return shared_task(name=f"parity.{prefix}.{fun.__name__}", **options)(fun)

        if len(args) == 1 and callable(args[0]) and not options:
            return named(args[0])
        return named

    return declare


@pytest.fixture
def shared_tasks_dropped_after() -> Iterator[None]:
    """Forget the ``@shared_task`` declarations made from here on, after the test.

    Celery registers a shared task on every app finalized later, so a later test's app
    would run this test's body under the same name.  (Set up before ``live_worker``, so
    torn down after it.)
    """
    with celery_globals_restored():
        yield


@pytest.mark.parametrize(("scenario", "mode"), _params())
def test_parity(
    scenario: Scenario, mode: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    prepare = RUNNERS[scenario.key]
    if mode == "eager":
        app = request.getfixturevalue("eager_app")
        measure, worker = prepare(app.task), None
    elif mode == "worker-prefork":
        request.getfixturevalue("shared_tasks_dropped_after")
        measure = prepare(_shared(scenario.key))  # before live_worker forks its child
        worker = request.getfixturevalue("live_worker")
        app = worker.app
    else:
        worker = request.getfixturevalue("live_worker")
        app = worker.app
        measure = prepare(app.task)
    expected = expected_outcome(scenario, mode)
    measured = measure(Mode(app, worker, tmp_path))
    assert measured == expected, (
        f"{scenario.title!r} in {mode} mode measured {measured}, but the parity table "
        f"(pytest_celerybase/_parity.py) says {expected}"
    )


def test_every_mode_of_every_row_is_measured_or_cannot_happen() -> None:
    measured = {(p.values[0].key, p.values[1]) for p in _params()}
    for scenario in PARITY:
        assert (scenario.key, "worker-prefork") in measured, scenario.key
        for mode, outcome in (("eager", scenario.eager), ("worker-solo", scenario.worker)):
            assert ((scenario.key, mode) in measured) == (outcome.state != CANNOT_RUN)
        for outcome in (scenario.eager, scenario.worker):
            # a cell that cannot happen says why, and shows nothing else
            assert outcome.state != CANNOT_RUN or (outcome.result and not outcome.hooks)


def test_every_scenario_has_a_runner() -> None:
    assert sorted(RUNNERS) == sorted(s.key for s in PARITY)
    assert len({s.title for s in PARITY}) == len(PARITY)


def test_parse_table_reads_what_render_table_writes() -> None:
    text = f"intro\n{TABLE_START}\n{render_table()}\n{TABLE_END}\nmore"
    rows = parse_table(text)
    assert list(rows) == [s.title for s in PARITY]
    assert rows[PARITY[0].title] == (
        PARITY[0].eager.render_hooks(), PARITY[0].eager.render_outcome(),
        PARITY[0].worker.render_hooks(), PARITY[0].worker.render_outcome(),
        "same as the worker",
    )
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
    for outcome in [o for s in PARITY for o in (s.worker, s.on_prefork)]:
        assert "task_received" in outcome.lifecycle or outcome.state in (RAISED, CANNOT_RUN)
    killed = table[2 + [s.key for s in PARITY].index("child_killed")]
    cells = [c.strip() for c in killed.strip("| ").split(" | ")]
    assert cells[1:3] == ["-", "-"] and cells[3].endswith("before_start, task_failure")


def test_table_shows_the_prefork_cell_only_where_it_differs() -> None:
    rows = parse_table(f"{TABLE_START}\n{render_table()}\n{TABLE_END}")
    for s in PARITY:
        prefork = rows[s.title][4]
        assert (prefork == "same as the worker") == (s.prefork is None)
        assert s.prefork is None or s.prefork.render_outcome() in prefork
    recycled = next(s for s in PARITY if s.key == "max_tasks_per_child").on_prefork
    assert recycled.render_hooks() == "3 times: before_start, on_success, after_return"
    assert Outcome(("a", "b", "a"), "SUCCESS").render_hooks() == "a, b, a"


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
    # The propagation hint explains it; the parity row says the same, so it is not added.
    result.stdout.fnmatch_lines(["*Hint: 1 execution(s) ran eagerly with exceptions propagating*"])
    assert "known eager/worker difference" not in result.stdout.str()


def test_worker_failure_message_names_the_eager_difference(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Expecting what an eager run with propagation gives, on a worker: the parity row says
    # why the worker records more.
    pytester.makepyfile(
        """
        from pytest_celerybase import assert_hooks_called

        def test_it(live_worker):
            @live_worker.app.task
            def boom():
                raise ValueError("boom")

            boom.delay().get(timeout=10, propagate=False)
            assert_hooks_called(boom, ["before_start"])
        """
    )
    result = run()
    result.assert_outcomes(failed=1)
    # (fnmatch reads "[...]" as a character class: match around the lists.)
    result.stdout.fnmatch_lines(
        [
            "*Hint: this is a known eager/worker difference (raises, "
            "`task_eager_propagates=True`): a worker records *'before_start', 'on_failure', "
            "'after_return'*, eager records *'before_start'*; eager raises before*; expect "
            "what a worker records: production runs on one.",
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
