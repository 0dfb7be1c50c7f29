"""Unit tests of pytest_celerybase.recorder.instrument: what the recorder changes in Celery.

They call Celery's tracer and the instrumentation directly instead of through an inner
pytest session.  While the plugin is active every test already has a recorder; tests that
need Celery fully unpatched use :func:`detached`, which deactivates the active recorders
for the block and activates them again after (public recorder API only).
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

from pytest_celerybase.recorder import instrument as _instrument
from pytest_celerybase.recorder.activation import activate, deactivate, recording
from pytest_celerybase.recorder.active import STACK
from pytest_celerybase.recorder.hook_recorder import ExecutionInfo, HookRecorder
from pytest_celerybase.recorder.records import HOOK_PARAMS, HOOKS, SIGNALS

SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]
_AFTER_UID = "pytest_celerybase.recorder.signals.after_task_publish"


@contextmanager
def detached() -> Iterator[None]:
    """No recorder active and Celery unpatched inside the block; reactivated after."""
    saved = list(STACK)
    for recorder in reversed(saved):
        deactivate(recorder)
    assert trace.build_tracer.__module__ == "celery.app.trace", "still installed"
    try:
        yield
    finally:
        leftover = list(STACK)
        for recorder in leftover:
            deactivate(recorder)
        for recorder in saved:
            activate(recorder)
        assert leftover == [], "the block left a recorder active"


def _receivers(signal: Any = signals.after_task_publish) -> list[Any]:
    return [key[0] for key, _ in signal.receivers]


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


def test_install_and_uninstall_patch_exactly_once() -> None:
    with detached():
        original_build, original_trace = trace.build_tracer, trace.trace_task
        assert _AFTER_UID not in _receivers()
        with recording() as first:
            wrapper = trace.build_tracer
            assert wrapper is not original_build
            assert wrapper.__wrapped__ is original_build
            assert trace.trace_task.__wrapped__ is original_trace
            assert STACK == [first]
            assert _receivers().count(_AFTER_UID) == 1
            with recording() as second:
                assert trace.build_tracer is wrapper  # nested: not patched twice
                assert STACK == [first, second]
                assert _receivers().count(_AFTER_UID) == 1
            assert STACK == [first] and trace.build_tracer is wrapper
        assert trace.build_tracer is original_build and trace.trace_task is original_trace
        assert STACK == [] and _AFTER_UID not in _receivers()


def test_deactivate_out_of_order_and_twice() -> None:
    with detached():
        original = trace.build_tracer
        a, b = HookRecorder(), HookRecorder()
        activate(a)
        activate(b)
        deactivate(a)
        assert STACK == [b] and trace.build_tracer is not original
        deactivate(a)  # idempotent
        assert STACK == [b]
        deactivate(b)
        assert STACK == [] and trace.build_tracer is original


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
def test_after_publish_reads_the_id_from_headers_or_protocol_1_body() -> None:
    publish = signals.after_task_publish.send
    with recording() as r:
        publish(sender="t1", headers={"id": "h1"}, body={"id": "b1"})
        publish(sender="t2", headers=None, body={"id": "b2"})
        publish(sender="t3", headers={}, body=("args",))
        publish(sender="t4", headers=["id"], body=None)
        publish(sender="t5", headers={"id": 5})
    published = [(p.task_id, p.task_name) for p in r.published]
    assert published == [("h1", "t1"), ("b2", "t2"), ("5", "t5")]
    with detached():
        publish(sender="t", headers={"id": "x"})  # nothing active: nothing to record
    assert len(r.published) == 3


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
    assert type(task).__name__ == "plain" and "__celerybase_original__" not in vars(type(task))
    assert not _instrument.is_recording_class(type(task))


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
        assert _instrument.is_recording_class(sub)
        assert task.__dict__["__trace__"] is None  # rebuilt through our build_tracer
        assert r.instrumented[id(task)] == (task, cls, sentinel)
        # class-level access is the original hook; instance access records
        assert sub.on_success is cls.on_success
        assert task.on_success.__name__ == "on_success"
        task.apply((1,))
        assert type(task) is sub  # instrumented once per recorder
    assert type(task) is cls and not _instrument.is_recording_class(sub)
    assert task.__dict__["__trace__"] is sentinel
    assert r.instrumented == {}


def test_restore_removes_a_trace_built_while_recording(app: Celery) -> None:
    task = _plain(app)
    assert "__trace__" not in task.__dict__
    with recording():
        _instrument.instrument(task)
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
        assert r.wait_idle(timeout=0)  # finished


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
        _instrument.instrument(stand_in)
        assert r.instrumented == {}
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
    assert r.wait_idle(timeout=0)


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
        wrapper = _instrument._make_build_tracer(trace.build_tracer)
        built = wrapper(task.name, task, eager=False, app=app)
        assert "__celerybase_original__" not in type(task).__dict__
        assert built("late2", (4,), {}, None).retval == 4
        wrapped_trace = _instrument._make_trace_task(trace.trace_task)
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
        _instrument.instrument(task)
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
        task.before_start("x", (), {})  # nothing active: runs, records nothing
    assert len(r.calls) == 5


def test_non_str_task_ids_are_stringified(app: Celery) -> None:
    task = _plain(app)
    with recording() as r:
        _instrument.instrument(task)
        task.before_start(7, (), {})
        task.before_start(task_id=8, args=(), kwargs={})
        task.before_start(None, (), {})
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
    _instrument.instrument(task)
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

    params = HOOK_PARAMS[hook]
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
    task = _plain(app)
    with detached():
        with recording() as r:
            _instrument.instrument(task)
            wrappers = {hook: getattr(task, hook) for hook in HOOKS}
        # a thread that fetched a recording wrapper races the end of the recording: the
        # hook still runs, nothing is recorded, nothing crashes
        arity = {hook: len(params) for hook, params in HOOK_PARAMS.items()}
        for hook, wrapper in wrappers.items():
            wrapper(*([None] * arity[hook]))
        assert r.calls == []
        assert "__celerybase_original__" not in vars(type(task))


def test_recording_subclass_copies_qualname_and_doc(app: Celery) -> None:
    for base in (_Doc, _Doc.Inner):
        task = _instrumented(app, base)
        sub, cls = type(task), type(task).__mro__[1]
        assert sub.__qualname__ == cls.__qualname__
        assert sub.__doc__ == cls.__doc__
    # a class-based task: the class itself is swapped
    task = app.register_task(_Doc.Inner())
    with recording():
        _instrument.instrument(task)
        assert type(task).__qualname__ == "_Doc.Inner"
        assert type(task).__doc__ == "Nested: its qualname differs from its name."
        assert type(task).__name__ == "Inner"


def test_override_path_in_a_new_thread_with_keywords(app: Celery) -> None:
    task = _plain(app)
    seen: list[Any] = []
    with recording() as r:
        _instrument.instrument(task)
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


def test_mixed_positional_and_keyword_call_records_status_and_thread(app: Celery) -> None:
    task = _plain(app)
    with recording() as outer, recording() as r:
        _instrument.instrument(task)
        task.after_return("SUCCESS", retval=1, task_id="x", args=(), kwargs={}, einfo=None)
    [call] = r.calls
    assert (call.status, call.retval, call.task_id) == ("SUCCESS", 1, "x")
    assert call.thread == threading.current_thread().name
    assert outer.calls == []


def test_publish_signals_go_to_the_innermost_recorder() -> None:
    before, after = signals.before_task_publish.send, signals.after_task_publish.send
    with recording() as middle, recording() as r:
        for recorder in (middle, r):
            recorder.watch_worker_tasks(lambda: {"w"})
        before(sender="w", headers={"id": "h1"})
        after(sender="w", headers={"id": "h1"})
        before(sender="w", headers=None, body={"id": "b1"})  # protocol 1: id in the body
        after(sender="w", headers=None, body={"id": "b1"})
        before(sender="w", headers={}, body=None)  # no id: ignored
        seen: list[list[str]] = []  # from another thread: this one's unconfirmed are failed
        other = threading.Thread(target=lambda: seen.append(r.inflight.busy()))
        other.start()
        other.join()
    assert seen == [["h1", "b1"]]
    assert middle.inflight.busy() == [] and middle.published == []
    assert [(p.task_id, p.task_name) for p in r.published] == [("h1", "w"), ("b1", "w")]


def test_signals_are_recorded_only_while_installed() -> None:
    def ours() -> dict[str, int]:
        return {
            name: [key[0] for key, _ in getattr(signals, name).receivers].count(
                f"pytest_celerybase.recorder.signals.{name}"
            )
            for name in SIGNALS
        }

    senders = ("send_prerun", "send_success", "send_postrun")
    with detached():
        originals = [getattr(trace, name) for name in senders]
        assert set(ours().values()) == {0}
        with recording():
            assert set(ours().values()) == {1}  # one receiver per signal, never two
            with recording():
                assert set(ours().values()) == {1}
            for name, original in zip(senders, originals, strict=True):
                assert getattr(trace, name).__wrapped__ is original
        assert set(ours().values()) == {0}
        assert [getattr(trace, name) for name in senders] == originals


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
        assert late.build_tracer is trace.build_tracer  # type: ignore[attr-defined]
        # a copy of something else bound meanwhile is left alone
        mine = object()
        with recording():
            late.trace_task = mine  # type: ignore[attr-defined]
        assert late.trace_task is mine  # type: ignore[attr-defined]


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
        _instrument.instrument(task)
    assert type(task) is cls and "__trace__" not in task.__dict__
