"""recorder/overrides.py: which classes override what, and watching base __call__/run."""

from __future__ import annotations

from typing import Any

from celery import Task

from pytest_celerybase import recording
from pytest_celerybase.apps import isolated_app
from pytest_celerybase.recorder.instrument import is_recording_class
from pytest_celerybase.recorder.overrides import WATCHED, override_chains


class Mixin:
    def on_failure(self, *args: Any) -> None:
        pass


class Timed(Task):  # type: ignore[misc]
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **kwargs)

    def before_start(self, *args: Any) -> None:
        pass


class Shop(Mixin, Timed):
    def before_start(self, *args: Any) -> None:
        super().before_start(*args)

    def run(self) -> str:
        return "shop"


class Late(Task, Mixin):  # type: ignore[misc]
    """Mixin comes after Task in the MRO: Task's no-op on_failure hides it."""


def test_chains_follow_the_mro_below_task() -> None:
    assert override_chains(Shop) == {
        "before_start": (Shop, Timed),
        "on_failure": (Mixin,),
        # a task's own run/__call__ is its body, not an override of a base
        "__call__": (Timed,),
    }
    assert override_chains(Late) == {}
    assert override_chains(Task) == {}


def test_watching_wraps_base_calls_only_while_a_watching_recorder_is_active() -> None:
    call = Timed.__dict__["__call__"]
    with isolated_app() as app:
        task = app.register_task(Shop())
        with recording():
            task.apply()
            assert Timed.__dict__["__call__"] is call  # not asked for: untouched
        with recording(watch_overrides=True) as recorder:
            assert task.apply().get() == "shop"
            assert getattr(Timed.__dict__["__call__"], WATCHED, False)
            assert is_recording_class(type(task))
            noted = [e for e in zip(*[iter(recorder.raw)] * 6, strict=True)
                     if e[0] == "override_ran"]  # fmt: skip
        assert Timed.__dict__["__call__"] is call
    assert [(e[1], e[2], e[3]) for e in noted] == [
        (task.name, f"{__name__}.Timed", "__call__"),
    ]
