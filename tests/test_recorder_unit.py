"""Unit tests of pytest_celerybase.recorder (fast; also the mutation-testing selection).

They call the recorder directly instead of through an inner pytest session.  While the
plugin is active every test already has a recorder on the stack; tests that need the
recorder fully uninstalled use :func:`detached`, which takes the plugin's recorder and
patches off for the block and puts them back exactly.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from celery import Celery, Task, signals
from celery.app import trace
from celery.local import Proxy

from pytest_celerybase import recorder as rec
from pytest_celerybase.recorder import (
    HOOKS,
    ExecutionInfo,
    HookCall,
    HookRecorder,
    NoActiveRecorderError,
    current_recorder,
    recording,
)

SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]


@contextmanager
def detached() -> Iterator[None]:
    """No recorder active and Celery unpatched inside the block; all restored after."""
    saved_stack = list(rec._stack)
    saved_patches = list(rec._patches)
    wrappers = [(module, name, getattr(module, name)) for module, name, _ in saved_patches]
    for module, name, original in reversed(saved_patches):
        setattr(module, name, original)
    rec._patches.clear()
    rec._stack.clear()
    signals.after_task_publish.disconnect(dispatch_uid=rec._DISPATCH_UID)
    signals.before_task_publish.disconnect(dispatch_uid=rec._BEFORE_DISPATCH_UID)
    try:
        yield
    finally:
        for recorder in list(rec._stack):
            rec.deactivate(recorder)
        assert rec._patches == [], "the block left the recorder installed"
        for module, name, wrapper in wrappers:
            setattr(module, name, wrapper)
        rec._patches[:] = saved_patches
        rec._stack[:] = saved_stack
        if saved_stack:
            signals.after_task_publish.connect(
                rec._on_publish, weak=False, dispatch_uid=rec._DISPATCH_UID
            )
            signals.before_task_publish.connect(
                rec._on_before_publish, weak=False, dispatch_uid=rec._BEFORE_DISPATCH_UID
            )


def _receivers() -> list[Any]:
    return [key for key, _ in signals.after_task_publish.receivers if key[0] == rec._DISPATCH_UID]


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery("unit", set_as_current=False)
    app.conf.update(
        task_always_eager=True,
        task_eager_propagates=False,
        broker_url="memory://",
        result_backend="cache+memory://",
    )
    yield app
    app.close()


class Custom(Task):
    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self.seen = retval


def _plain(app: Celery, name: str = "unit.plain") -> Any:
    @app.task(shared=False, name=name)
    def plain(x: int) -> int:
        if x < 0:
            raise ValueError(x)
        return x

    return plain._get_current_object()


# -- HookCall ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "text"),
    [
        (HookCall("on_failure", "t", "1", exc=ValueError("x")), "on_failure(ValueError('x'))"),
        (HookCall("on_retry", "t", "1", exc=KeyError("k")), "on_retry(KeyError('k'))"),
        (HookCall("on_failure", "t", "1"), "on_failure"),
        (HookCall("after_return", "t", "1", status="SUCCESS"), "after_return(SUCCESS)"),
        (HookCall("after_return", "t", "1"), "after_return"),
        (HookCall("before_start", "t", "1", exc=ValueError("x")), "before_start"),
        (HookCall("on_success", "t", "1", status="SUCCESS"), "on_success"),
    ],
)
def test_hookcall_describe(call: HookCall, text: str) -> None:
    assert call.describe() == text


def test_hookcall_defaults_equality_and_repr() -> None:
    call = HookCall("before_start", "t", "id")
    assert (call.args, call.kwargs, call.retval, call.exc, call.status) == (None,) * 5
    assert (call.einfo, call.thread) == (None, "")
    # einfo and thread are neither compared nor shown
    assert call == HookCall("before_start", "t", "id", einfo=object(), thread="other")
    assert "einfo" not in repr(call) and "thread" not in repr(call)
    assert call != HookCall("before_start", "t", "id2")
    assert HOOKS == ("before_start", "on_success", "on_failure", "on_retry", "after_return")


# -- HookRecorder queries ----------------------------------------------------------------
def _filled() -> HookRecorder:
    r = HookRecorder()
    r.calls.extend(
        [
            HookCall("before_start", "a", "1"),
            HookCall("before_start", "b", "2"),
            HookCall("on_success", "a", "1"),
            HookCall("on_failure", "b", "2"),
            HookCall("before_start", "a", "3"),
        ]
    )
    return r


def test_calls_for_and_hooks_for_filter_by_name_and_id() -> None:
    r = _filled()
    assert len(r.calls_for()) == 5
    assert r.hooks_for("a") == ["before_start", "on_success", "before_start"]
    assert r.hooks_for(task_id="2") == ["before_start", "on_failure"]
    assert r.hooks_for("a", "3") == ["before_start"]
    assert r.hooks_for("a", "2") == []
    assert r.hooks_for() == [c.hook for c in r.calls]


def test_len_repr_task_names_and_clear() -> None:
    r = _filled()
    r.executions["9"] = ExecutionInfo("9", "c", eager=False, propagate=False)
    r.executions["1"] = ExecutionInfo("1", "a", eager=False, propagate=False)
    r.published.append(rec._Publication("9", "c"))
    assert len(r) == 5
    assert r.task_names() == ["a", "b", "c"]
    assert repr(r) == "<HookRecorder calls=5 tasks=3>"
    r.clear()
    assert (r.calls, r.executions, r.published, len(r)) == ([], {}, [], 0)
    assert repr(r) == "<HookRecorder calls=0 tasks=0>"


def test_wait_timeout_default_and_given() -> None:
    assert HookRecorder().wait_timeout == 10.0
    assert HookRecorder(wait_timeout=0.5).wait_timeout == 0.5
    with recording() as default, recording(wait_timeout=2.5) as given:
        assert (default.wait_timeout, given.wait_timeout) == (10.0, 2.5)


# -- worker bookkeeping ------------------------------------------------------------------
def test_is_worker_task() -> None:
    r = HookRecorder()
    assert r._is_worker_task("a") is False
    r.watch_worker_tasks(lambda: {"a"})
    assert r._is_worker_task("a") is True
    assert r._is_worker_task("b") is False

    def broken() -> Any:
        raise RuntimeError("app torn down")

    r.watch_worker_tasks(broken)
    assert r._is_worker_task("a") is False


def test_publications_of_worker_tasks_are_in_flight_until_finished() -> None:
    r = HookRecorder(wait_timeout=0.01)
    r.watch_worker_tasks(lambda: {"w"})
    r._mark_published("1", "w")
    r._mark_published("1", "w")  # e.g. a retry re-sent with the same id
    r._mark_published("2", "other")
    assert [(p.task_id, p.task_name) for p in r.published] == [
        ("1", "w"),
        ("1", "w"),
        ("2", "other"),
    ]
    assert r._in_flight == {"1": 2}
    assert r._names_by_id == {"1": "w"}
    assert r.wait_idle() is False
    assert r.wait_idle(task_name="w") is False
    assert r.wait_idle(task_name="other") is True
    assert r.wait_idle(task_id="2") is True
    assert r.wait_idle(task_id="1", timeout=0) is False
    r._execution_finished("1")
    assert r._in_flight == {"1": 1}
    assert r.wait_idle(task_id="1") is False
    r._execution_finished("1")
    assert r._in_flight == {}
    assert r.wait_idle(task_id="1") is True and r.wait_idle() is True


def test_execution_started_counts_runs_and_tracks_unpublished_worker_runs() -> None:
    r = HookRecorder()
    r._execution_started("1", "t", eager=True, propagate=True)
    assert r.executions["1"] == ExecutionInfo("1", "t", eager=True, propagate=True, runs=1)
    assert r._in_flight == {}  # eager runs are never in flight
    r._execution_started("1", "t", eager=False, propagate=False)
    assert r.executions["1"] == ExecutionInfo("1", "t", eager=False, propagate=False, runs=2)
    assert r._in_flight == {"1": 1} and r._names_by_id == {"1": "t"}
    r._execution_finished("1")
    r.watch_worker_tasks(lambda: {"t"})
    r._mark_published("2", "t")
    r._execution_started("2", "t", eager=False, propagate=False)
    assert r._in_flight == {"2": 1}  # already counted by the publication


def test_wait_idle_wakes_up_when_another_thread_finishes() -> None:
    r = HookRecorder(wait_timeout=5)
    r._execution_started("1", "t", eager=False, propagate=False)
    timer = threading.Timer(0.05, r._execution_finished, ("1",))
    timer.start()
    try:
        assert r.wait_idle("t") is True
    finally:
        timer.join()


# -- the stack ---------------------------------------------------------------------------
def test_current_recorder_is_the_innermost_and_raises_outside() -> None:
    outer = current_recorder()  # the plugin's, for this test
    with recording() as inner:
        assert current_recorder() is inner
        with recording() as innermost:
            assert current_recorder() is innermost
        assert current_recorder() is inner
    assert current_recorder() is outer
    with detached():
        with pytest.raises(NoActiveRecorderError) as excinfo:
            current_recorder()
    assert str(excinfo.value) == (
        "no hook recorder is active: hook assertions work inside a test run with the "
        "celerybase plugin (pytest -p celerybase) or inside "
        "`with pytest_celerybase.recording():`"
    )
    assert issubclass(NoActiveRecorderError, RuntimeError)


def test_install_and_uninstall_patch_exactly_once() -> None:
    with detached():
        original_build, original_trace = trace.build_tracer, trace.trace_task
        assert _receivers() == []
        with recording() as first:
            wrapper = trace.build_tracer
            assert wrapper is not original_build
            assert wrapper.__wrapped__ is original_build
            assert trace.trace_task.__wrapped__ is original_trace
            assert rec._stack == [first]
            assert len(_receivers()) == 1
            with recording() as second:
                assert trace.build_tracer is wrapper  # nested: not patched twice
                assert rec._stack == [first, second]
                assert len(rec._patches) in (2, 3)
            assert rec._stack == [first] and trace.build_tracer is wrapper
        assert trace.build_tracer is original_build and trace.trace_task is original_trace
        assert rec._patches == [] and rec._stack == [] and _receivers() == []


def test_deactivate_out_of_order_and_twice() -> None:
    with detached():
        a, b = HookRecorder(), HookRecorder()
        rec.activate(a)
        rec.activate(b)
        rec.deactivate(a)
        assert rec._stack == [b] and rec._patches
        rec.deactivate(a)  # idempotent
        assert rec._stack == [b]
        rec.deactivate(b)
        assert rec._stack == [] and rec._patches == []


def test_consumer_copy_of_build_tracer_is_patched_and_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "celery.worker.consumer.consumer"
    with detached():
        original = trace.build_tracer
        fake = types.ModuleType(name)
        fake.build_tracer = original  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, fake)
        with recording():
            assert fake.build_tracer is trace.build_tracer is not original  # type: ignore[attr-defined]
        assert fake.build_tracer is original  # type: ignore[attr-defined]

        # bound something else: left alone
        other = object()
        fake.build_tracer = other  # type: ignore[attr-defined]
        with recording():
            assert fake.build_tracer is other  # type: ignore[attr-defined]
        assert fake.build_tracer is other  # type: ignore[attr-defined]

        # imported while recording: it bound the wrapper, uninstall gives it the original
        monkeypatch.delitem(sys.modules, name)
        with recording():
            late = types.ModuleType(name)
            late.build_tracer = trace.build_tracer  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, name, late)
        assert late.build_tracer is original  # type: ignore[attr-defined]


# -- publication signal ------------------------------------------------------------------
def test_on_publish_reads_the_id_from_headers_or_protocol_1_body() -> None:
    with recording() as r:
        rec._on_publish(sender="t1", headers={"id": "h1"}, body={"id": "b1"})
        rec._on_publish(sender="t2", headers=None, body={"id": "b2"})
        rec._on_publish(sender="t3", headers={}, body=("args",))
        rec._on_publish(sender="t4", headers=["id"], body=None)
        rec._on_publish(sender="t5", headers={"id": 5})
    published = [(p.task_id, p.task_name) for p in r.published]
    assert published == [("h1", "t1"), ("b2", "t2"), ("5", "t5")]
    with detached():
        rec._on_publish(sender="t", headers={"id": "x"})  # nothing active: ignored


def test_publishing_to_a_broker_is_recorded(app: Celery) -> None:
    app.conf.task_always_eager = False
    task = _plain(app)
    with recording() as r:
        result = task.delay(1)
    assert [(p.task_id, p.task_name) for p in r.published] == [(result.id, "unit.plain")]
    assert r.calls == []


# -- tracer wrapping and instrumentation -------------------------------------------------
def test_plain_task_records_hooks_with_arguments(app: Celery) -> None:
    task = _plain(app)
    with recording() as r:
        ok = task.apply((2,), {})
        bad = task.apply((-1,))
    assert r.hooks_for("unit.plain") == SUCCESS + FAILURE
    start, success, after, _, failure, fafter = r.calls
    assert (start.task_id, start.args, start.kwargs) == (ok.id, (2,), {})
    assert (success.retval, success.task_id, success.args) == (2, ok.id, (2,))
    assert (after.status, after.retval, after.task_id) == ("SUCCESS", 2, ok.id)
    assert isinstance(failure.exc, ValueError) and failure.task_id == bad.id
    assert failure.einfo is not None and failure.args == (-1,)
    assert (fafter.status, fafter.task_id) == ("FAILURE", bad.id)
    assert isinstance(fafter.retval, ValueError) and fafter.einfo is None
    assert start.thread == threading.current_thread().name
    assert all(c.task_name == "unit.plain" for c in r.calls)
    assert r.executions == {}  # eager, not propagating: the tracer is not wrapped
    assert type(task) is not rec._recording_classes  # restored


def test_instrumentation_swaps_the_class_and_restores_it(app: Celery) -> None:
    task = _plain(app)
    cls = type(task)
    task.__trace__ = sentinel = object()
    with recording() as r:
        task.apply((1,))
        sub = type(task)
        assert sub is not cls and issubclass(sub, cls)
        assert sub.__dict__["__celerybase_original__"] is cls
        assert (sub.__name__, sub.__qualname__, sub.__module__, sub.__doc__) == (
            cls.__name__,
            cls.__qualname__,
            cls.__module__,
            cls.__doc__,
        )
        assert sub in rec._recording_classes
        assert task.__dict__["__trace__"] is None  # rebuilt through our build_tracer
        assert r._instrumented[id(task)] == (task, cls, sentinel)
        # class-level access is the original hook; instance access records
        assert sub.on_success is cls.on_success
        assert task.on_success.__name__ == "on_success"
        task.apply((1,))
        assert type(task) is sub  # instrumented once per recorder
    assert type(task) is cls and sub not in rec._recording_classes
    assert task.__dict__["__trace__"] is sentinel
    assert r._instrumented == {}


def test_restore_removes_a_trace_built_while_recording(app: Celery) -> None:
    task = _plain(app)
    assert "__trace__" not in task.__dict__
    with recording():
        rec._instrument(task)
        task.__trace__ = object()
    assert "__trace__" not in task.__dict__


def test_trace_task_instruments_a_task_with_a_prebuilt_tracer(app: Celery) -> None:
    task = _plain(app)
    with detached():
        task.__trace__ = trace.build_tracer(task.name, task, app=app, eager=False)
        with recording() as r:
            retval, *_ = trace.trace_task(task, "id-1", (3,), {}, app=app, eager=False)
        assert retval == 3
        assert r.hooks_for(task_id="id-1") == SUCCESS
        assert r.executions["id-1"] == ExecutionInfo("id-1", "unit.plain", False, False, 1)
        assert r._in_flight == {}


def test_trace_task_with_a_task_proxy(app: Celery) -> None:
    # @app.task on an app not finalized yet returns a PromiseProxy; Celery's own unit
    # tests pass it to trace_task (celery t/unit/tasks/test_trace.py).
    lazy = Celery("lazy", set_as_current=False)
    lazy.conf.task_always_eager = True

    @lazy.task(shared=False)
    def proxied() -> int:
        return 7

    assert isinstance(proxied, Proxy)
    with recording() as r:
        retval, *_ = trace.trace_task(proxied, "id-p", (), {}, app=lazy)
        task = proxied._get_current_object()
        assert type(task).__dict__.get("__celerybase_original__") is not None
    assert retval == 7
    assert r.hooks_for(task_id="id-p") == SUCCESS
    assert "__celerybase_original__" not in type(task).__dict__
    lazy.close()


class _StandIn:
    """Claims to be a Task (as a ``Mock(spec=Task)`` does) without being one."""

    name = "fake"

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return Task


def test_non_task_stand_ins_are_not_instrumented() -> None:
    stand_in = _StandIn()
    assert isinstance(stand_in, Task)
    with recording() as r:
        rec._instrument(stand_in)
        assert r._instrumented == {}
    assert type(stand_in) is _StandIn


def test_propagating_and_worker_tracers_count_executions(app: Celery) -> None:
    task = _plain(app)
    with recording() as r:
        with pytest.raises(ValueError):
            task.apply((-2,), throw=True, task_id="p1")
        tracer = trace.build_tracer(
            task.name, task, app.loader, None, True, trace.TraceInfo, False, False, app=app
        )
        tracer("w1", (5,), {}, None)
        tracer("w1", (6,), {}, None)
    assert r.executions["p1"] == ExecutionInfo("p1", "unit.plain", True, True, 1)
    assert r.executions["w1"] == ExecutionInfo("w1", "unit.plain", False, False, 2)
    assert r.hooks_for(task_id="p1") == ["before_start"]
    assert r.hooks_for(task_id="w1") == SUCCESS * 2
    assert r._in_flight == {}


def test_build_tracer_positional_eager_and_propagate(app: Celery) -> None:
    task = _plain(app)
    with recording() as r:
        args = (app.loader, None, True, trace.TraceInfo)
        eager = trace.build_tracer(task.name, task, *args, True, False, app=app)
        eager("e1", (1,), {}, None)
        assert r.executions == {}
        prop = trace.build_tracer(task.name, task, *args, True, True, app=app)
        prop("e2", (1,), {}, None)
        assert r.executions["e2"] == ExecutionInfo("e2", "unit.plain", True, True, 1)
        kw = trace.build_tracer(task.name, task, eager=False, propagate=True, app=app)
        kw("e3", (1,), {}, None)
        assert r.executions["e3"] == ExecutionInfo("e3", "unit.plain", False, True, 1)


def test_wrapped_tracer_outside_recording_passes_through(app: Celery) -> None:
    task = _plain(app)

    @app.task(shared=False, bind=True, name="unit.late_retries")
    def late_retries(self: Any) -> int:
        return int(self.request.retries)

    with recording():
        tracer = trace.build_tracer(task.name, task, eager=False, propagate=False, app=app)
        retries_tracer = trace.build_tracer(
            late_retries.name, late_retries._get_current_object(), eager=False, app=app
        )
    with detached():
        assert tracer("late", (4,), {}, None).retval == 4
        assert retries_tracer("late-r", (), {}, {"retries": 2}).retval == 2
        # no recorder active: the wrapper builds Celery's own tracer, nothing instrumented
        wrapper = rec._make_build_tracer(trace.build_tracer)
        built = wrapper(task.name, task, eager=False, app=app)
        assert "__celerybase_original__" not in type(task).__dict__
        assert built("late2", (4,), {}, None).retval == 4
        wrapped_trace = rec._make_trace_task(trace.trace_task)
        assert wrapped_trace.__wrapped__ is trace.trace_task
        assert wrapped_trace(task, "late3", (4,), {}, app=app)[0] == 4
        assert "__celerybase_original__" not in type(task).__dict__


def test_custom_hooks_still_run_and_are_recorded_once(app: Celery) -> None:
    @app.task(shared=False, base=Custom, name="unit.custom")
    def custom(x: int) -> int:
        return x * 2

    task = custom._get_current_object()
    with recording() as r:
        task.apply((4,))
    assert task.seen == 8
    assert r.hooks_for("unit.custom") == SUCCESS


def test_instance_override_is_recorded_once_and_left_in_place(app: Celery) -> None:
    task = _plain(app)
    seen: list[Any] = []
    with recording() as r:
        task.apply((1,))
        task.on_success = lambda *a: seen.append(a)
        assert task.__dict__["on_success"] is not None
        task.apply((2,))
        # an override wrapping the recording wrapper (what mocker.spy builds) records once
        wrapped = task.on_success
        task.on_success = lambda *a: wrapped(*a)
        task.apply((3,))
        del task.on_success
        with pytest.raises(AttributeError, match="on_success"):
            del task.on_success
        task.apply((4,))
    assert r.hooks_for("unit.plain") == SUCCESS * 4
    assert [a[0] for a in seen] == [2, 3]
    assert "on_success" not in task.__dict__


def test_hooks_called_with_keyword_arguments_are_recorded() -> None:
    app = Celery("kw", set_as_current=False)
    task = _plain(app, "unit.kw")
    with recording() as r:
        rec._instrument(task)
        task.before_start(task_id="k1", args=(1,), kwargs={"a": 1})
        task.on_success(5, "k1", args=(1,), kwargs={})
        task.after_return("SUCCESS", 5, "k1", (1,), {}, None)
        task.on_retry(ValueError("r"), "k1", (1,), {}, None)
        task.on_failure(exc=KeyError("f"), task_id=None, args=(), kwargs={}, einfo="e")
    b, s, a, retry, f = r.calls
    assert (b.hook, b.task_id, b.args, b.kwargs) == ("before_start", "k1", (1,), {"a": 1})
    assert (s.retval, s.task_id, s.args, s.kwargs) == (5, "k1", (1,), {})
    assert (a.status, a.retval, a.task_id, a.args, a.kwargs, a.einfo) == (
        "SUCCESS", 5, "k1", (1,), {}, None,
    )
    assert (retry.hook, retry.exc.args, retry.task_id) == ("on_retry", ("r",), "k1")
    assert (f.hook, f.task_id, f.einfo, f.args) == ("on_failure", None, "e", ())
    assert isinstance(f.exc, KeyError)
    with detached():
        rec._record("before_start", task, ("x", (), {}), {})  # nothing active: dropped
    assert len(r.calls) == 5


def test_non_str_task_ids_are_stringified(app: Celery) -> None:
    task = _plain(app)
    with recording() as r:
        rec._record("before_start", task, (7, (), {}), {})
        rec._record("before_start", task, (), {"task_id": 8})
        rec._record("before_start", task, (None, (), {}), {})
    assert [c.task_id for c in r.calls] == ["7", "8", None]


def test_calls_from_threads_are_complete_and_ordered_per_task_id(app: Celery) -> None:
    task = _plain(app)
    with recording() as r:
        threads = [
            threading.Thread(target=lambda i=i: [task.apply((i,)) for _ in range(25)])
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    by_id: dict[str | None, list[str]] = {}
    for call in r.calls:
        by_id.setdefault(call.task_id, []).append(call.hook)
    assert len(by_id) == 200
    assert all(hooks == SUCCESS for hooks in by_id.values())
    assert {c.thread for c in r.calls} == {t.name for t in threads}


# -- the recording wrappers, hook by hook ------------------------------------------------------
class _Doc(Task):  # type: ignore[misc]
    """A documented base."""

    class Inner(Task):  # type: ignore[misc]
        """Nested: its qualname differs from its name."""


def _instrumented(app: Celery, base: type = Task) -> Any:
    @app.task(shared=False, base=base, name=f"unit.wrapped.{base.__name__}")
    def wrapped(x: int = 0) -> int:
        return x

    task = wrapped._get_current_object()
    rec._instrument(task)
    return task


@pytest.mark.parametrize(
    ("hook", "args", "fields"),
    [
        ("before_start", (None, (1,), {"k": 1}), (None, (1,), {"k": 1}, None, None, None, None)),
        ("before_start", (7, (1,), {}), ("7", (1,), {}, None, None, None, None)),
        ("on_success", (5, None, (2,), {"a": 2}), (None, (2,), {"a": 2}, 5, None, None, None)),
        ("on_success", (5, 8, (2,), {}), ("8", (2,), {}, 5, None, None, None)),
        (
            "on_failure",
            ("E", None, (3,), {"b": 3}, "ei"),
            (None, (3,), {"b": 3}, None, "E", None, "ei"),
        ),
        ("on_failure", ("E", 9, (3,), {}, "ei"), ("9", (3,), {}, None, "E", None, "ei")),
        (
            "on_retry",
            ("R", None, (4,), {"c": 4}, "ei"),
            (None, (4,), {"c": 4}, None, "R", None, "ei"),
        ),
        (
            "after_return",
            ("SUCCESS", 6, None, (5,), {"d": 5}, "ei"),
            (None, (5,), {"d": 5}, 6, None, "SUCCESS", "ei"),
        ),
        (
            "after_return",
            ("FAILURE", 6, 10, (5,), {}, None),
            ("10", (5,), {}, 6, None, "FAILURE", None),
        ),
    ],
)
def test_positional_hook_calls_record_every_field(
    app: Celery, hook: str, args: tuple[Any, ...], fields: tuple[Any, ...]
) -> None:
    task = _instrumented(app)
    def inner(self: Any, *a: Any, **k: Any) -> Any:
        return a, k  # what reached the real hook

    params = rec._HOOK_PARAMS[hook]
    named = dict(zip(params, args, strict=True))
    with recording() as outer, recording() as r:  # records go to the innermost recorder
        with mock.patch.object(type(task).__mro__[1], hook, inner):
            assert getattr(task, hook)(*args) == (args, {})
            # keyword form: same record, same arguments passed on
            assert getattr(task, hook)(**named) == ((), named)
    assert outer.calls == []
    positional, keyword = r.calls
    for call in (positional, keyword):
        got = (call.task_id, call.args, call.kwargs, call.retval, call.exc, call.status, call.einfo)
        assert (call.hook, call.task_name) == (hook, task.name)
        assert got == fields
        assert call.thread == threading.current_thread().name


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_called_with_too_few_arguments_records_what_it_got(app: Celery, hook: str) -> None:
    task = _instrumented(app)
    with recording() as r:
        with pytest.raises(TypeError):  # from the hook itself, not from the recorder
            getattr(task, hook)("only-one")
    [call] = r.calls
    assert call.hook == hook and call.task_id in (None, "only-one")


def test_hooks_of_an_instrumented_task_outside_recording(app: Celery) -> None:
    task = _instrumented(app)
    with recording():
        rec._instrument(task)
        sub = type(task)
    with detached():
        # a hook call racing the end of a recording: no crash, no record
        assert type(task) is sub
        for hook, n in (("before_start", 3), ("on_success", 4), ("on_failure", 5)):
            getattr(task, hook)(*([None] * n))
        task.on_retry(None, None, None, None, None)
        task.after_return(None, None, None, None, None, None)
        assert type(task) is sub
    assert type(task) is sub  # the test's own recorder restores it after the test


def test_recording_subclass_copies_qualname_and_doc(app: Celery) -> None:
    for base in (_Doc, _Doc.Inner):
        task = _instrumented(app, base)
        sub, cls = type(task), type(task).__mro__[1]
        assert sub.__qualname__ == cls.__qualname__
        assert sub.__doc__ == cls.__doc__
    # a class-based task: the class itself is swapped
    task = app.register_task(_Doc.Inner())
    with recording():
        rec._instrument(task)
        assert type(task).__qualname__ == "_Doc.Inner"
        assert type(task).__doc__ == "Nested: its qualname differs from its name."
        assert type(task).__name__ == "Inner"


def test_override_path_in_a_new_thread_with_keywords(app: Celery) -> None:
    task = _plain(app)
    seen: list[Any] = []
    with recording() as r:
        rec._instrument(task)
        task.on_success = lambda *a, **k: seen.append((a, k))
        assert task.on_success.__wrapped__ is task.__dict__["on_success"]
        thread = threading.Thread(
            target=lambda: task.on_success(1, task_id="t1", args=(), kwargs={})
        )
        thread.start()
        thread.join()
        task.on_success(2, "t2", (), {})
        assert type(task).on_success is type(task).__mro__[1].on_success
    assert seen == [((1,), {"task_id": "t1", "args": (), "kwargs": {}}), ((2, "t2", (), {}), {})]
    assert [(c.task_id, c.retval) for c in r.calls] == [("t1", 1), ("t2", 2)]
    assert r.calls[0].thread == thread.name


def test_general_path_records_status_and_thread(app: Celery) -> None:
    task = _plain(app)
    with recording():
        with recording() as r:
            rec._record("after_return", task, ("SUCCESS",), {"retval": 1, "task_id": "x"})
    [call] = r.calls
    assert (call.status, call.retval, call.task_id) == ("SUCCESS", 1, "x")
    assert call.thread == threading.current_thread().name


# -- publication lifecycle (before_task_publish / after_task_publish) -----------------------
def test_publishing_counts_in_flight_until_confirmed_or_dropped() -> None:
    r = HookRecorder()
    r.watch_worker_tasks(lambda: {"w"})
    r._publishing("a", "w")
    assert r._in_flight == {"a": 1} and r._names_by_id == {"a": "w"}
    assert r._unconfirmed == {threading.get_ident(): ["a"]}
    r._mark_published("a", "w")  # confirmed: counted once, not twice
    assert r._in_flight == {"a": 1} and r._unconfirmed[threading.get_ident()] == []
    r._publishing("b", "other")  # not a worker task: not in flight
    assert "b" not in r._in_flight
    r._publishing("a", "w")  # a retry of a, its publication then fails (never confirmed)
    assert r._in_flight == {"a": 2}
    r._publishing("c", "w")  # the next publication of this thread drops the failed one
    assert r._in_flight == {"a": 1, "c": 1}
    assert r._unconfirmed[threading.get_ident()] == ["c"]
    with r._cond:
        r._drop_unconfirmed()
    assert r._in_flight == {"a": 1}
    with r._cond:
        r._drop_unconfirmed()  # nothing left: no change
    assert r._in_flight == {"a": 1}
    # another thread's unconfirmed publication is not this thread's business
    other = threading.Thread(target=r._publishing, args=("d", "w"))
    other.start()
    other.join()
    r._publishing("e", "w")
    assert r._in_flight == {"a": 1, "d": 1, "e": 1}
    assert [p.task_id for p in r.published] == ["a"]


def test_before_publish_signal_goes_to_the_innermost_recorder() -> None:
    with recording() as middle, recording() as r:
        for recorder in (middle, r):
            recorder.watch_worker_tasks(lambda: {"w"})
        rec._on_before_publish(sender="w", headers={"id": "h1"})
        rec._on_publish(sender="w", headers={"id": "h1"})
        rec._on_before_publish(sender="w", headers=None, body={"id": "b1"})
        assert r._unconfirmed[threading.get_ident()] == ["b1"]  # protocol 1: id in the body
        rec._on_publish(sender="w", headers=None, body={"id": "b1"})
        rec._on_before_publish(sender="w", headers={}, body=None)  # no id: ignored
        rec._on_before_publish(sender="w", headers={"id": 5})
        assert r._unconfirmed[threading.get_ident()] == ["5"]
    assert middle._in_flight == {} and middle.published == []
    assert r._in_flight == {"h1": 1, "b1": 1, "5": 1}
    assert r._names_by_id == {"h1": "w", "b1": "w", "5": "w"}
    assert [(p.task_id, p.task_name) for p in r.published] == [("h1", "w"), ("b1", "w")]
    with detached():
        rec._on_before_publish(sender="w", headers={"id": "x"})  # nothing active: ignored


def test_publish_signals_are_connected_only_while_installed() -> None:
    def uids(signal: Any) -> list[Any]:
        return [key[0] for key, _ in signal.receivers]

    with detached():
        assert rec._BEFORE_DISPATCH_UID not in uids(signals.before_task_publish)
        with recording():
            assert uids(signals.before_task_publish).count(rec._BEFORE_DISPATCH_UID) == 1
            assert uids(signals.after_task_publish).count(rec._DISPATCH_UID) == 1
            receiver = dict(signals.before_task_publish.receivers)
            assert any(r is rec._on_before_publish for r in receiver.values())
        assert rec._BEFORE_DISPATCH_UID not in uids(signals.before_task_publish)
        assert rec._DISPATCH_UID not in uids(signals.after_task_publish)


def test_request_module_copy_of_trace_task_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "celery.worker.request"
    with detached():
        original = trace.trace_task
        monkeypatch.delitem(sys.modules, name, raising=False)
        with recording():
            late = types.ModuleType(name)
            late.trace_task = trace.trace_task  # type: ignore[attr-defined]
            late.build_tracer = trace.build_tracer  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, name, late)
        assert late.trace_task is original  # type: ignore[attr-defined]
        other = types.ModuleType("celery.worker.other")
        assert not hasattr(other, "trace_task")


# -- in-flight bookkeeping edge cases ------------------------------------------------------
def test_execution_of_a_published_task_keeps_its_count() -> None:
    r = HookRecorder()
    r.watch_worker_tasks(lambda: {"w"})
    r._mark_published("a", "w")
    r._mark_published("a", "w")
    r._execution_started("a", "w", eager=False, propagate=False)
    assert r._in_flight == {"a": 2}
    r._execution_finished("never-seen")  # unknown ids are ignored
    assert r._in_flight == {"a": 2}


def test_wait_idle_respects_an_explicit_timeout_and_wakes_early() -> None:
    import time

    r = HookRecorder(wait_timeout=30)
    r._execution_started("a", "t", eager=False, propagate=False)
    start = time.monotonic()
    assert r.wait_idle(timeout=0.05) is False
    assert time.monotonic() - start < 5
    timer = threading.Timer(0.05, r._execution_finished, ("a",))
    timer.start()
    try:
        assert r.wait_idle(timeout=0.9) is True
    finally:
        timer.join()


# -- build_tracer arguments -------------------------------------------------------------------
def test_build_tracer_positional_arguments_reach_celery(app: Celery) -> None:
    task = _plain(app)
    loader, info = app.loader, trace.TraceInfo
    with recording() as r:
        # propagate=True given positionally: the failure propagates
        prop = trace.build_tracer(task.name, task, loader, None, True, info, True, True, app=app)
        with pytest.raises(ValueError, match=r"^-1$"):  # the task's own error
            prop("p", (-1,), {}, None)
        # eager given positionally (5 arguments), propagate defaulted: not wrapped
        only_eager = trace.build_tracer(task.name, task, loader, None, True, info, True, app=app)
        only_eager("e", (1,), {}, None)
        # 4 positional arguments: neither given positionally
        four = trace.build_tracer(task.name, task, loader, None, True, info, app=app)
        four("f", (1,), {}, None)
        # nothing given: a worker's tracer (eager=False), wrapped
        default = trace.build_tracer(task.name, task, app=app)
        default("d", (1,), {}, None)
    assert set(r.executions) == {"p", "f", "d"}
    assert r.executions["p"].propagate is True and r.executions["f"].eager is False


def test_wrapped_tracer_passes_the_request(app: Celery) -> None:
    @app.task(shared=False, bind=True, name="unit.retries")
    def retries(self: Any) -> int:
        return int(self.request.retries)

    task = retries._get_current_object()
    with recording() as r:
        tracer = trace.build_tracer(task.name, task, eager=False, app=app)
        assert tracer("q", (), {}, {"retries": 3}).retval == 3
        assert tracer("q2", (), {}).retval == 0
    assert r.executions["q"].runs == 1


def test_instrument_with_nothing_active_does_nothing(app: Celery) -> None:
    task = _plain(app)
    cls = type(task)
    with detached():
        rec._instrument(task)
    assert type(task) is cls and "__trace__" not in task.__dict__
