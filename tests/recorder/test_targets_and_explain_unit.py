"""Unit tests of pytest_celerybase.assertions (fast; also the mutation-testing selection).

Each test records into its own ``recording()`` block (the innermost recorder wins), runs
tasks of a private eager app and checks exact messages, so that a changed word, hint or
condition in assertions.py fails a test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import celery
import pytest
from celery import Celery, group

from pytest_celerybase import (
    apply_and_raise,
    assert_hooks_called,
    assert_hooks_called_in_order,
    assert_hooks_not_called,
    hook_calls,
    recording,
)
from pytest_celerybase.apps import names as app_names
from pytest_celerybase.recorder import HookCall, HookRecorder
from pytest_celerybase.recorder import targets as tg
from pytest_celerybase.recorder.explain import per_execution

SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]
VALID = "before_start, on_success, on_failure, on_retry, after_return"


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("unitapp", set_as_current=False)
    app.conf.update(
        task_always_eager=True,
        task_eager_propagates=False,
        task_store_eager_result=True,
        broker_url="memory://",
        result_backend="cache+memory://",
    )
    yield app
    app.close()


@pytest.fixture
def rec() -> Iterator[HookRecorder]:
    with recording(wait_timeout=1.0) as recorder:
        yield recorder


@pytest.fixture
def tasks(app: Celery) -> Any:
    @app.task(shared=False, name="u.ok")
    def ok(x: int = 1) -> int:
        return x

    @app.task(shared=False, name="u.bad")
    def bad(x: int = 1) -> int:
        raise ValueError(f"bad {x}")

    @app.task(shared=False, name="u.idle")
    def idle() -> None:
        return None

    @app.task(shared=False, bind=True, max_retries=3, name="u.flaky")
    def flaky(self: Any) -> str:
        if self.request.retries < 1:
            raise self.retry(countdown=0)
        return "done"

    app.finalize()  # registers them: names resolve without running them first

    class Tasks:
        pass

    t = Tasks()
    t.ok, t.bad, t.idle, t.flaky = ok, bad, idle, flaky  # type: ignore[attr-defined]
    return t


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    # task ids are random: make them stable
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", str(excinfo.value))


# -- passing forms -------------------------------------------------------------------------
def test_task_name_result_and_task_id_forms(rec: HookRecorder, tasks: Any) -> None:
    r1 = tasks.ok.delay(1)
    r2 = tasks.bad.delay(2)
    r3 = tasks.ok.delay(3)
    assert_hooks_called(tasks.ok, SUCCESS * 2)
    assert_hooks_called("u.ok", SUCCESS * 2)
    assert_hooks_called(r1, SUCCESS)
    assert_hooks_called(r2, FAILURE)
    assert_hooks_called(tasks.ok, SUCCESS, task_id=r3.id)
    assert_hooks_called("u.ok", SUCCESS, task_id=r1.id)
    assert_hooks_called(r1, SUCCESS, task_id=r1.id)
    assert_hooks_called(tasks.ok._get_current_object(), SUCCESS * 2)
    assert_hooks_called(tasks.idle, [])
    assert_hooks_called(tasks.idle, ())
    assert_hooks_called(tasks.ok, iter(SUCCESS * 2))  # any iterable of names
    assert [c.hook for c in hook_calls()] == SUCCESS + FAILURE + SUCCESS
    assert [c.task_id for c in hook_calls(r2)] == [r2.id] * 3
    assert [c.hook for c in hook_calls(task_id=r3.id)] == SUCCESS
    assert [c.hook for c in hook_calls(tasks.ok, task_id=r1.id)] == SUCCESS
    assert hook_calls("u.ok") == [c for c in rec.calls if c.task_name == "u.ok"]


def test_result_of_an_unrecorded_execution_has_no_name(rec: HookRecorder, app: Celery) -> None:
    result = app.AsyncResult("never-seen")
    target = tg.resolve(result, None)
    assert (target.name, target.task_id) == (None, "never-seen")
    assert target.description == "task (execution never-seen)"
    # An execution this test never saw has no records: nothing can be asserted about it.
    with pytest.raises(ValueError, match=r"^task id 'never-seen' was never sent, run or "):
        assert_hooks_called(result, [])


def test_result_name_is_taken_from_records(rec: HookRecorder, app: Celery, tasks: Any) -> None:
    result = tasks.ok.delay(5)
    plain = app.AsyncResult(result.id)  # carries no name
    assert getattr(plain, "name", None) is None
    target = tg.resolve(plain, None)
    assert (target.name, target.description) == ("u.ok", f"task 'u.ok' (execution {result.id})")
    rec.calls.clear()
    rec.executions[result.id] = rec.executions.get(result.id) or _info(
        result.id, "u.from_execution"
    )
    assert tg.recorded_name_of(result.id, rec) == "u.from_execution"
    rec.executions.clear()
    rec.published.append(_pub(result.id, "u.from_publication"))
    assert tg.recorded_name_of(result.id, rec) == "u.from_publication"
    rec.published.clear()
    rec.calls.append(HookCall("before_start", "u.from_call", result.id))
    rec.published.append(_pub(result.id, "u.from_publication"))
    assert tg.recorded_name_of(result.id, rec) == "u.from_call"
    assert tg.recorded_name_of("other", rec) is None


def _info(task_id: str, name: str) -> Any:
    from pytest_celerybase.recorder import ExecutionInfo

    return ExecutionInfo(task_id, name, eager=False, propagate=False)


def _pub(task_id: str, name: str) -> Any:
    from pytest_celerybase.recorder import Publication

    return Publication(task_id, name)


def test_task_proxy_is_accepted(rec: HookRecorder) -> None:
    lazy = Celery("lazy", set_as_current=False)
    lazy.conf.task_always_eager = True

    @lazy.task(shared=False, name="u.lazy")
    def proxied() -> int:
        return 1

    assert tg.is_task_proxy(proxied) is True
    assert tg.is_task_proxy(object()) is False
    proxied.delay()
    assert_hooks_called(proxied, SUCCESS)
    lazy.close()


def test_in_order_and_not_called_pass(rec: HookRecorder, tasks: Any) -> None:
    tasks.flaky.delay()
    assert_hooks_called_in_order(tasks.flaky, ["on_retry", "on_success"])
    assert_hooks_called_in_order(tasks.flaky, ["before_start", "before_start", "after_return"])
    assert_hooks_called_in_order(tasks.flaky, ["before_start"])
    assert_hooks_not_called(tasks.flaky, ["on_failure"])
    with pytest.raises(ValueError, match=r"hooks must name at least one hook"):
        assert_hooks_not_called(tasks.flaky, [])  # vacuous: true whatever ran
    assert_hooks_not_called(tasks.idle)
    assert_hooks_not_called("u.idle", None)


# -- failure messages ----------------------------------------------------------------------
def test_exact_mismatch_message(rec: HookRecorder, tasks: Any) -> None:
    tasks.bad.delay(3)
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.bad, SUCCESS)
    assert _message(excinfo) == "\n".join(
        [
            "Expected task 'u.bad' to call exactly:",
            "  ['before_start', 'on_success', 'after_return']",
            "but the recorded hooks were:",
            "  ['before_start', 'on_failure', 'after_return']",
            "Per execution (task id):",
            "  <id> [u.bad]: before_start, on_failure(ValueError('bad 3')), "
            "after_return(FAILURE)",
            "Diff (- expected, + actual):",
            "    before_start",
            "  - on_success",
            "  + on_failure",
            "    after_return",
        ]
    )


def test_mismatch_per_execution_groups_by_task_id(rec: HookRecorder, tasks: Any) -> None:
    a = tasks.ok.delay(1)
    b = tasks.ok.delay(2)
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.ok, SUCCESS)
    text = str(excinfo.value)
    assert f"  {a.id} [u.ok]: before_start, on_success, after_return(SUCCESS)" in text
    assert f"  {b.id} [u.ok]: before_start, on_success, after_return(SUCCESS)" in text
    assert text.index(a.id) < text.index(b.id)
    assert "Hint" not in text


def test_in_order_mismatch_message_has_no_diff(rec: HookRecorder, tasks: Any) -> None:
    tasks.ok.delay()
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called_in_order(tasks.ok, ["after_return", "on_success"])
    assert _message(excinfo) == "\n".join(
        [
            "Expected task 'u.ok' to call in order:",
            "  ['after_return', 'on_success']",
            "but the recorded hooks were:",
            "  ['before_start', 'on_success', 'after_return']",
            "Per execution (task id):",
            "  <id> [u.ok]: before_start, on_success, after_return(SUCCESS)",
        ]
    )
    with pytest.raises(AssertionError, match="to call in order"):
        assert_hooks_called_in_order(tasks.ok, ["on_failure"])
    with pytest.raises(AssertionError, match="to call in order"):
        assert_hooks_called_in_order(tasks.ok, ["before_start", "before_start"])


def test_not_called_messages(rec: HookRecorder, tasks: Any) -> None:
    tasks.bad.delay(1)
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_not_called(tasks.bad, ["on_failure", "on_retry"])
    assert _message(excinfo) == "\n".join(
        [
            "Expected task 'u.bad' not to call any of ['on_failure', 'on_retry'], "
            "but 1 call(s) were recorded:",
            "  <id> [u.bad]: before_start, on_failure(ValueError('bad 1')), "
            "after_return(FAILURE)",
        ]
    )
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_not_called(tasks.bad)
    assert _message(excinfo).splitlines()[0] == (
        "Expected task 'u.bad' not to call any hook, but 3 call(s) were recorded:"
    )


def test_hint_never_ran_and_nothing_ran(rec: HookRecorder, tasks: Any) -> None:
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.ok, SUCCESS)
    assert str(excinfo.value) == "\n".join(
        [
            "Expected task 'u.ok' to call exactly:",
            "  ['before_start', 'on_success', 'after_return']",
            "but the recorded hooks were:",
            "  []",
            "Hint: no task ran in this test at all",
        ]
    )
    tasks.idle.delay()
    tasks.bad.delay()
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.ok, SUCCESS)
    assert str(excinfo.value).splitlines()[-1] == (
        "Hint: the task never ran in this test; tasks that ran: u.idle, u.bad"
    )


def test_hint_sent_to_a_broker(rec: HookRecorder, app: Celery, tasks: Any) -> None:
    app.conf.task_always_eager = False
    first = tasks.ok.delay()
    tasks.ok.delay()
    tasks.idle.delay()
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.ok, SUCCESS)
    hint = (
        "Hint: the task was sent to a broker {n} time(s) during this test but never executed "
        "in this process: the app that sent it is not eager (task_always_eager=False) and no "
        "in-process worker (live_worker) consumed it"
    )
    lines = str(excinfo.value).splitlines()
    assert lines[-1] == hint.format(n=2)
    assert len([line for line in lines if line.startswith("Hint")]) == 1
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(first, SUCCESS)
    assert str(excinfo.value).splitlines()[-1] == hint.format(n=1)
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.bad, SUCCESS)
    assert str(excinfo.value).splitlines()[-1] == "Hint: no task ran in this test at all"


def test_hint_propagation(rec: HookRecorder, app: Celery, tasks: Any) -> None:
    app.conf.task_eager_propagates = True
    with pytest.raises(ValueError):
        tasks.bad.delay()
    with pytest.raises(ValueError):
        tasks.bad.delay()
    hint = (
        "Hint: 2 execution(s) ran eagerly with exceptions propagating "
        "(task_eager_propagates=True, or apply(throw=True)): Celery raises before "
        "on_failure/on_retry/after_return run (https://github.com/celery/celery/issues/5666). "
        "Keep task_eager_propagates=False (the eager_app default) or use "
        "pytest_celerybase.apply_and_raise() to get the exception after the hooks ran."
    )
    for expected in (FAILURE * 2, ["before_start", "on_retry"], ["after_return"]):
        with pytest.raises(AssertionError) as excinfo:
            assert_hooks_called(tasks.bad, expected)
        assert hint in str(excinfo.value).splitlines()
    # not about failure hooks: no propagation hint
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.bad, ["before_start", "on_success"])
    assert "propagating" not in str(excinfo.value)


def test_no_propagation_hint_for_non_propagating_runs(rec: HookRecorder, tasks: Any) -> None:
    result = tasks.bad.delay()
    rec.executions[result.id] = _info(result.id, "u.bad")  # a worker run, not eager
    rec.executions[result.id].propagate = True
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.bad, ["on_failure"])
    assert "propagating" not in str(excinfo.value)
    rec.executions[result.id].eager = True
    rec.executions[result.id].propagate = False
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(tasks.bad, ["on_failure"])
    assert "propagating" not in str(excinfo.value)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hooks", "error", "message"),
    [
        (
            ["on_sucess"],
            ValueError,
            f"unknown hook 'on_sucess' (did you mean 'on_success'?); valid hooks are: {VALID}",
        ),
        (["zzz"], ValueError, f"unknown hook 'zzz'; valid hooks are: {VALID}"),
        (
            "on_success",
            TypeError,
            "hooks must be a list of hook names, got the str 'on_success'; write ['on_success']",
        ),
        (None, TypeError, "hooks must be a list of hook names, got NoneType: None"),
        (3, TypeError, "hooks must be a list of hook names, got int: 3"),
        (["before_start", 1], TypeError, "hook names must be str, got int 1 in hooks"),
    ],
)
def test_bad_hooks(
    rec: HookRecorder, tasks: Any, hooks: Any, error: type[Exception], message: str
) -> None:
    checks = [assert_hooks_called, assert_hooks_called_in_order]
    if hooks is not None:  # None means "any hook" there
        checks.append(assert_hooks_not_called)
    for check in checks:
        with pytest.raises(error) as excinfo:
            check(tasks.ok, hooks)
        assert str(excinfo.value) == message


def test_check_hooks_accepts_any_iterable_and_names_the_mistake() -> None:
    assert tg.check_hooks(("before_start",)) == ["before_start"]
    with pytest.raises(TypeError, match=r"^hooks must be a list of hook names, got the str"):
        tg.check_hooks("before_start")
    with pytest.raises(TypeError, match=r"^hooks must be a list of hook names, got int"):
        tg.check_hooks(1)
    with pytest.raises(TypeError, match=r"^hook names must be str, got int 1 in hooks$"):
        tg.check_hooks([1])
    assert tg.check_hooks({"on_retry"}, ordered=False) == ["on_retry"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda t: assert_hooks_called(42, SUCCESS),
            TypeError,
            "expected a Celery task, a registered task name (str) or a task result "
            "(AsyncResult/EagerResult), got int: 42",
        ),
        (lambda t: assert_hooks_called("", SUCCESS), ValueError, "task name must not be empty"),
        (
            lambda t: assert_hooks_called(t.ok, SUCCESS, task_id=5),
            TypeError,
            "task_id must be a str, got int 5",
        ),
        (
            lambda t: assert_hooks_called("u.nope", SUCCESS),
            ValueError,
            "no task named 'u.nope' is registered on any Celery app, ran, or was sent in this "
            "test; did you mean 'u.ok'?",
        ),
        (
            lambda t: assert_hooks_called("completely-unrelated-name", SUCCESS),
            ValueError,
            "no task named 'completely-unrelated-name' is registered on any Celery app, ran, "
            "or was sent in this test",
        ),
        (
            lambda t: assert_hooks_called_in_order(t.ok, []),
            ValueError,
            "hooks must name at least one hook for an in-order check",
        ),
        (
            lambda t: hook_calls(42),
            TypeError,
            "expected a Celery task, a registered task name (str) or a task result "
            "(AsyncResult/EagerResult), got int: 42",
        ),
    ],
)
def test_bad_targets(
    rec: HookRecorder, tasks: Any, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as excinfo:
        call(tasks)
    assert str(excinfo.value) == message


def test_result_contradicting_task_id_and_group_result(rec: HookRecorder, tasks: Any) -> None:
    result = tasks.ok.delay()
    with pytest.raises(ValueError) as excinfo:
        assert_hooks_called(result, SUCCESS, task_id="other")
    assert str(excinfo.value) == (
        f"task_id='other' contradicts the result given, whose id is {result.id!r}"
    )
    grouped = group([tasks.ok.s(1)]).apply_async()
    with pytest.raises(TypeError) as excinfo:
        assert_hooks_called(grouped, SUCCESS)
    assert str(excinfo.value) == (
        "expected a single task's result, got GroupResult: assert on each child result "
        "(e.g. `for r in result.results: ...`) or on the task itself"
    )


def test_known_names_come_from_records_publications_and_registries(
    rec: HookRecorder, app: Celery, tasks: Any
) -> None:
    tg.check_known_name("u.ok", rec)  # registered on a live app
    tg.check_known_name("celery.chord", rec)  # built-in
    rec.calls.append(HookCall("before_start", "only.recorded", "1"))
    tg.check_known_name("only.recorded", rec)
    rec.published.append(_pub("2", "only.published"))
    tg.check_known_name("only.published", rec)
    rec.executions["3"] = _info("3", "only.executed")
    tg.check_known_name("only.executed", rec)
    names = app_names.registered_names()
    assert "u.ok" in names and "celery.chord" in names


def test_registered_names_survive_a_broken_current_app(
    rec: HookRecorder, tasks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import celery

    class Broken:
        @property
        def tasks(self) -> Any:
            raise RuntimeError("cannot finalize")

    monkeypatch.setattr(celery, "current_app", Broken())
    from celery import current_app

    assert isinstance(current_app, Broken)
    assert "u.ok" in app_names.registered_names()


def test_hook_calls_settles_and_filters(rec: HookRecorder, tasks: Any) -> None:
    rec.watch_worker_tasks(lambda: {"u.ok"})
    rec.after_publish("w1", "u.ok")
    rec.wait_timeout = 0.05
    # waited (bounded) for the worker, then refused to return records still coming
    with pytest.raises(AssertionError, match=r"^Cannot judge the test's executions: .*u.ok\[w1\]"):
        hook_calls()
    rec.calls.append(HookCall("before_start", "u.ok", "w1"))
    with pytest.raises(AssertionError, match=r"^Cannot judge execution w1: "):
        hook_calls(task_id="w1")
    rec.execution_finished("w1")
    assert [c.task_id for c in hook_calls(task_id="w1")] == ["w1"]
    assert len(hook_calls("u.ok")) == 1
    assert len(hook_calls()) == 1


# -- apply_and_raise -------------------------------------------------------------------------
def test_apply_and_raise(rec: HookRecorder, app: Celery, tasks: Any) -> None:
    app.conf.task_eager_propagates = True
    with pytest.raises(ValueError, match=r"^bad 4$"):
        apply_and_raise(tasks.bad, (4,))
    assert_hooks_called(tasks.bad, FAILURE)
    with pytest.raises(ValueError, match=r"^bad 5$"):
        apply_and_raise(tasks.bad, kwargs={"x": 5})
    result = apply_and_raise(tasks.ok, (6,), task_id="fixed-id")
    assert result.get() == 6 and result.id == "fixed-id"
    assert_hooks_called(tasks.ok, SUCCESS)
    with pytest.raises(TypeError) as excinfo:
        apply_and_raise(3)
    assert str(excinfo.value) == "expected a Celery task, got int: 3"
    with pytest.raises(TypeError) as excinfo:
        apply_and_raise(tasks.ok, throw=False)
    assert str(excinfo.value) == (
        "apply_and_raise() always raises after the hooks ran; drop throw="
    )


def test_per_execution_lines() -> None:
    calls = [
        HookCall("before_start", "a", "1"),
        HookCall("before_start", "b", None),
        HookCall("after_return", "a", "1", status="SUCCESS"),
    ]
    assert per_execution(calls) == [
        "  1 [a]: before_start, after_return(SUCCESS)",
        "  None [b]: before_start",
    ]


# -- mutation-testing additions: each pins one decision of assertions.py ----------------------
def test_helper_frames_are_hidden_from_tracebacks(rec: HookRecorder, tasks: Any) -> None:
    tasks.ok.delay()
    calls: list[Any] = [
        lambda: assert_hooks_called(tasks.ok, ["on_failure"]),
        lambda: assert_hooks_called_in_order(tasks.ok, ["on_failure"]),
        lambda: assert_hooks_not_called(tasks.ok),
        lambda: assert_hooks_called(tasks.ok, ["nope"]),  # raised in _check_hooks
        lambda: assert_hooks_called(3, []),  # raised in _resolve
        lambda: assert_hooks_called("u.typo", []),  # raised in _check_known_name
    ]
    for call in calls:
        with pytest.raises((AssertionError, TypeError, ValueError)) as excinfo:
            call()
        shown = excinfo.traceback.filter(excinfo)
        assert not [e for e in shown if e.path.name == "assertions.py"], str(excinfo.value)


def test_descriptions(rec: HookRecorder, tasks: Any) -> None:
    assert tg.resolve("u.ok", None).description == "task 'u.ok'"
    assert tg.resolve(tasks.ok, "x").description == "task 'u.ok'"
    result = tasks.ok.delay()
    rec.clear()  # the name must come from the result itself
    target = tg.resolve(result, None)
    # Measured: EagerResult carries the task name from Celery 5.3.5 on; on 5.3.0-5.3.4 it
    # has none, so with the records cleared only the id is known (it still selects).
    has_name = tuple(celery.VERSION[:3]) >= (5, 3, 5)
    assert (target.name, target.task_id) == ("u.ok" if has_name else None, result.id)


def test_several_close_names_are_all_suggested(rec: HookRecorder, app: Celery) -> None:
    def job() -> None:
        return None

    for name in ("u.job1", "u.job2"):
        app.task(shared=False, name=name)(job)
    app.finalize()
    with pytest.raises(ValueError) as excinfo:
        assert_hooks_called("u.job", [])
    assert str(excinfo.value).endswith("did you mean 'u.job2' or 'u.job1'?")  # closest first


def test_sets_of_hooks(rec: HookRecorder, tasks: Any) -> None:
    tasks.ok.delay()
    for check in (assert_hooks_called, assert_hooks_called_in_order):
        with pytest.raises(TypeError) as excinfo:
            check(tasks.ok, frozenset({"on_success"}))
        assert str(excinfo.value) == (
            "hooks must be a list of hook names in call order, got a frozenset "
            "frozenset({'on_success'}), which has no order; write a list"
        )
    with pytest.raises(TypeError, match=r"^hooks must be a list .* got a dict "):
        assert_hooks_called(tasks.ok, {"on_success": 1})
    assert_hooks_not_called(tasks.ok, {"on_failure"})
    with pytest.raises(AssertionError, match="not to call any of"):
        assert_hooks_not_called(tasks.ok, {"on_success"})


def test_task_id_narrows_in_order_and_not_called(rec: HookRecorder, tasks: Any) -> None:
    ok = tasks.ok.delay()
    bad = tasks.bad.delay()
    assert_hooks_called_in_order("u.ok", ["on_success"], task_id=ok.id)
    with pytest.raises(AssertionError):
        assert_hooks_called_in_order("u.ok", ["on_success"], task_id=bad.id)
    assert_hooks_not_called("u.ok", task_id=bad.id)
    with pytest.raises(AssertionError):
        assert_hooks_not_called("u.ok", task_id=ok.id)


def test_publications_of_other_executions_are_not_counted(
    rec: HookRecorder, app: Celery, tasks: Any
) -> None:
    app.conf.task_always_eager = False
    first = tasks.ok.delay()
    tasks.ok.delay()
    tasks.ok.delay()
    with pytest.raises(AssertionError) as excinfo:
        assert_hooks_called(first, SUCCESS)
    assert "sent to a broker 1 time(s)" in str(excinfo.value)


def test_assertions_wait_only_for_their_own_task(rec: HookRecorder, tasks: Any) -> None:
    import threading

    rec.wait_timeout = 20
    waits: list[tuple[Any, Any, bool]] = []
    wait_idle = rec.inflight.wait_idle

    def spy(task_name: Any = None, task_id: Any = None, timeout: float = 0.0) -> bool:
        idle = wait_idle(task_name, task_id, timeout)
        waits.append((task_name, task_id, idle))
        return idle

    rec.inflight.wait_idle = spy  # type: ignore[method-assign]
    rec.watch_worker_tasks(lambda: {"u.ok", "u.idle"})
    rec.after_publish("stuck", "u.idle")  # never finishes

    def finish() -> None:
        rec.calls.extend(HookCall(h, "u.ok", "w1") for h in SUCCESS)
        rec.execution_finished("w1")

    for check in (
        lambda: assert_hooks_called("u.ok", SUCCESS),
        lambda: assert_hooks_called(tasks.ok, SUCCESS, task_id="w1"),
    ):
        rec.calls.clear()
        rec.after_publish("w1", "u.ok")
        timer = threading.Timer(0.05, finish)
        timer.start()
        try:
            check()  # waited for w1 (and not for "stuck")
        finally:
            timer.join()
    # each assertion waited for its own task only, and that wait ended before its timeout
    assert waits == [("u.ok", None, True), (None, "w1", True)]


def test_tasks_of_a_current_app_not_finalized_yet_are_known(
    rec: HookRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import _state

    pending = Celery("pending", set_as_current=False)

    @pending.task(shared=False, name="u.pending")
    def job() -> None:
        return None

    assert not pending.finalized
    monkeypatch.setattr(_state._tls, "current_app", pending)
    tg.check_known_name("u.pending", rec)  # current_app.tasks finalizes it
    assert "u.pending" in app_names.registered_names()
    pending.close()
