"""The bindings the resource fixtures use to hand their doubles to the bases."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from pytest_celerybase.bases._process import ProcessLocal
from pytest_celerybase.bases._timing import ExecutionClock
from pytest_celerybase.resources import bindings


def test_nothing_is_bound_outside_fixtures() -> None:
    assert all(stack == () for stack in bindings.snapshot().values())
    assert bindings.current(bindings.ENGINE) is None
    assert not bindings.bound(bindings.REDIS)


def test_nested_binds_restore_exactly() -> None:
    before = bindings.snapshot()
    outer, inner = object(), object()
    with bindings.bind(bindings.REDIS, outer):  # type: ignore[arg-type]
        with bindings.bind(bindings.REDIS, inner):  # type: ignore[arg-type]
            assert bindings.current(bindings.REDIS) is inner
        assert bindings.current(bindings.REDIS) is outer
    assert bindings.snapshot() == before


def test_out_of_order_unbind_removes_only_its_own_token() -> None:
    before = bindings.snapshot()
    first = bindings.push(bindings.ENGINE, "first")  # type: ignore[arg-type]
    second = bindings.push(bindings.ENGINE, "second")  # type: ignore[arg-type]

    bindings.unbind(first)
    assert bindings.current(bindings.ENGINE) == "second"
    bindings.unbind(first)  # idempotent
    bindings.unbind(second)
    assert bindings.snapshot() == before


def test_kinds_are_independent() -> None:
    with bindings.bind(bindings.METRICS_SINK, "sink"):  # type: ignore[arg-type]
        assert bindings.current(bindings.ENGINE) is None
        assert bindings.snapshot()["metrics_sink"][0].value == "sink"


def test_snapshot_and_restore() -> None:
    before = bindings.snapshot()
    bindings.push(bindings.HTTP_SESSION, "leaked")  # type: ignore[arg-type]
    assert bindings.snapshot() != before
    bindings.restore(before)
    assert bindings.snapshot() == before


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown binding 'nope'; valid: \\['engine'"):
        bindings.push(bindings.BindingKey("nope"), 1)


def test_bindings_are_visible_from_other_threads() -> None:
    seen: list[Any] = []
    with bindings.bind(bindings.REDIS, "fake"):  # type: ignore[arg-type]
        thread = threading.Thread(target=lambda: seen.append(bindings.current(bindings.REDIS)))
        thread.start()
        thread.join(5)
    assert seen == ["fake"]


def test_process_local_recreates_after_fork(mocker: Any) -> None:
    dropped: list[str] = []
    slot: ProcessLocal[str] = ProcessLocal(after_fork=dropped.append)

    assert slot.peek() is None
    assert slot.get(lambda: "parent") == "parent"
    assert slot.get(lambda: "other") == "parent"
    mocker.patch("os.getpid", return_value=os.getpid() + 1)
    assert slot.get(lambda: "child") == "child"
    assert dropped == ["parent"]
    assert slot.pop() == "child" and slot.peek() is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_process_local_in_a_real_forked_child() -> None:
    slot: ProcessLocal[object] = ProcessLocal()
    parent_value = slot.get(object)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        try:
            os.write(write, b"1" if slot.get(object) is not parent_value else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert slot.get(object) is parent_value


def test_execution_clock_is_bounded() -> None:
    clock = ExecutionClock(max_entries=3)
    for task_id in "abcd":
        clock.start(task_id)
    assert len(clock) == 3
    assert clock.get("a") is None and clock.get("d") is not None
    assert clock.stop("d") is not None and clock.stop("d") is None
    assert clock.start(None).at.tzinfo is not None and len(clock) == 2
