"""Tracked and ClassState directly: what is copied, compared, restored and closed."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from sqlalchemy import create_engine, event

from pytest_celerybase.apps.tracked import Tracked, close_created, keep_names


def _cls(**attrs: Any) -> type:
    return type("Base", (), dict(attrs))


def test_containers_are_refilled_in_place_one_level_deep() -> None:
    inner: list[int] = []
    cls = _cls(items=[1], tags={"a"}, queue=deque([1]), table={"k": inner})
    tracked = Tracked(cls, frozenset())
    items, queue = cls.items, cls.queue  # type: ignore[attr-defined]
    assert tracked.changed() == []

    cls.items.append(2)  # type: ignore[attr-defined]
    cls.tags.discard("a")  # type: ignore[attr-defined]
    cls.queue.append(2)  # type: ignore[attr-defined]
    inner.append(1)  # inside a value: not seen (documented)
    assert sorted(tracked.changed()) == ["items", "queue", "tags"]

    tracked.restore([])
    assert cls.items is items and items == [1]  # type: ignore[attr-defined]
    assert cls.queue is queue and list(queue) == [1]  # type: ignore[attr-defined]
    assert cls.tags == {"a"}  # type: ignore[attr-defined]
    assert inner == [1]


def test_replaced_and_added_values_are_handed_over_for_closing() -> None:
    cls = _cls(engine=None, cache={})
    tracked = Tracked(cls, frozenset())
    made = object()
    cls.engine = made  # type: ignore[attr-defined]
    cls.cache["x"] = "value"  # type: ignore[attr-defined]
    cls.new = 1  # type: ignore[attr-defined]
    dropped: list[Any] = []

    tracked.restore(dropped)

    assert cls.engine is None and cls.cache == {} and not hasattr(cls, "new")  # type: ignore[attr-defined]
    assert made in dropped and "value" in dropped and 1 in dropped


def test_kept_names_are_left_and_become_the_new_state() -> None:
    cls = _cls(celerybase_keep=("pool",), pool=None, other=None)
    tracked = Tracked(cls, keep_names(cls))
    cls.pool = pool = object()  # type: ignore[attr-defined]
    cls.other = object()  # type: ignore[attr-defined]

    tracked.restore([])

    assert cls.pool is pool and cls.other is None  # type: ignore[attr-defined]
    assert tracked.changed() == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("_pool", r"got '_pool' \(one name is written \('_pool',\)\)"),
        (["_pool", 3], r"must hold attribute names \(str\), got \[3\]"),
        (True, "must be a tuple of attribute names to keep across tests, got True"),
    ],
)
def test_keep_names_rejects_what_is_not_a_tuple_of_names(value: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        keep_names(_cls(celerybase_keep=value))


def test_close_created_disposes_engines_but_not_those_kept() -> None:
    mine, theirs = create_engine("sqlite://"), create_engine("sqlite://")
    disposed: list[Any] = []
    for engine in (mine, theirs):
        event.listen(engine, "engine_disposed", disposed.append)

    assert close_created([mine, theirs, "not a resource"], kept=[theirs]) == []

    assert disposed == [mine]
    theirs.dispose()


def test_a_failing_close_is_reported_not_raised() -> None:
    import requests

    class Broken(requests.Session):
        def close(self) -> None:
            raise OSError("socket gone")

    errors = close_created([Broken()])
    assert len(errors) == 1 and errors[0].endswith(".close(): OSError: socket gone")


def _one() -> int:
    return 1


def test_apps_a_test_makes_are_not_kept_alive() -> None:
    # celery.contrib.pytest's celery_app: a new app per test, with its tasks; once the
    # test is over nothing of the plugin may hold it (it would be followed for ever).
    import gc
    import weakref

    from celery import Celery, Task

    from pytest_celerybase.apps.class_state import ClassState

    state = ClassState()
    refs = []
    try:
        base = type("Base", (Task,), {"__module__": __name__, "cache": {}})
        for index in range(3):
            state.begin()
            app = Celery(f"made-{index}", set_as_current=False)
            task = app.task(_one, base=base, name=f"made.{index}", shared=False)
            app.finalize()
            state.see(task._get_current_object())
            task.cache["x"] = index  # type: ignore[attr-defined]
            refs.append(weakref.ref(app))
            del app, task
            state.end()
            assert base.cache == {}  # type: ignore[attr-defined]
        state.begin()
        state.end()
        gc.collect()
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        state.close()
