"""A snapshot of one Celery app's state that a test can change, and its restore (no pytest).

``eager_app`` reuses an app across tests (built once per distinct settings, or the
project's own app) and puts it back after each test, the way pytest-django rolls back a
transaction instead of recreating the database.  :class:`AppState` is that rollback.  It
covers what a test can change through the app and its tasks:

* the configuration: every map of ``app.conf`` (the changes, the defaults and any
  ``add_defaults`` layer), settings mutated in place (``conf.beat_schedule["x"] = ...``),
  its observers, the loader, and ``app._conf`` itself (``config_from_object``);
* the task registry (tasks declared in the test are gone after it);
* each registered task's instance ``__dict__`` (``task.max_retries = 0``) and its class's
  attributes (``type(task).rate_limit = "1/s"``), and the app's own ``Task`` base class
  (what a test left on a task holding connections is closed, and the names a class keeps
  in ``celerybase_keep`` stay; the classes tasks inherit from are :mod:`.class_state`'s);
* the app's cached objects: backend (per thread and shared), connection pool, producer
  pool, ``amqp`` and what it caches (queues, router), every other attribute of the app.

Each of these is a live container paired with a copy.  When nothing changed (most tests)
the restore is one ``==`` between two lists, done in C with identity checks first; else
only the containers that differ are written back.  Values mutated in place inside a task
attribute (``task.headers["x"] = 1``) are not tracked: only settings are deep-copied.
"""

from __future__ import annotations

import copy
import functools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_celerybase.apps.class_state import MANAGED, close_created, keep_names, original_class

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["AppState", "forget_producer_pool", "original_class"]

_CONTAINERS = (dict, list, set, deque)
_ABSENT: Any = object()
_Restorer = Callable[[Any, Any], None]


def _copy(value: Any, *, deep: bool) -> Any:
    if deep:
        try:
            return copy.deepcopy(value)
        except Exception:  # not deep-copyable: a shallow copy will do
            pass
    return copy.copy(value)


def _restore_dict(live: dict[str, Any], saved: dict[str, Any]) -> None:
    # dict's own methods: the registry is a dict subclass that may override them.
    dict.clear(live)
    dict.update(live, saved)


def _restore_list(live: list[Any], saved: list[Any]) -> None:
    live[:] = saved


def _refill(live: Any, saved: Any, *, deep: bool) -> None:
    """Give the container ``live`` the contents of ``saved`` again, keeping its identity."""
    fresh = _copy(saved, deep=deep)
    live.clear()
    if isinstance(live, (dict, set)):
        live.update(fresh)
    else:
        live.extend(fresh)


def _restore_class(cls: type, live: Any, saved: dict[str, Any]) -> None:
    dropped = [v for k, v in live.items() if saved.get(k, _ABSENT) is not v]
    for key in [k for k in live if k not in saved]:
        delattr(cls, key)
    for key, value in saved.items():
        if key not in live or live[key] is not value:
            setattr(cls, key, value)
    close_created(dropped, kept=saved.values())


def _restore_task(keep: frozenset[str], live: dict[str, Any], saved: dict[str, Any]) -> None:
    """A task's instance attributes back, but those its class keeps (``celerybase_keep``);
    what the test left there holding connections is closed (see :mod:`.class_state`)."""
    kept = {k: live[k] for k in keep if k in live}
    saved.update(kept)  # the kept value is the one to start from next time
    dropped = [v for k, v in live.items() if saved.get(k, _ABSENT) is not v]
    _restore_dict(live, saved)
    close_created(dropped, kept=saved.values())


def _task_keep(task: Any) -> frozenset[str]:
    try:
        return keep_names(original_class(task))
    except TypeError:  # reported where it is read at a test's start (ClassState.begin)
        return frozenset()


def _restore_amqp(producer_pool: Any, live: dict[str, Any], saved: dict[str, Any]) -> None:
    current = live.get("_producer_pool")
    if current is not producer_pool:
        forget_producer_pool(current)
    _restore_dict(live, saved)


class AppState:
    """What :meth:`save` saw of an app; :meth:`restore` puts it back (idempotent)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        live: list[Any] = []
        saved: list[Any] = []
        restorers: list[_Restorer] = []

        def keep(container: Any, snapshot: Any, restorer: _Restorer = _restore_dict) -> None:
            live.append(container)
            saved.append(snapshot)
            restorers.append(restorer)

        app_dict = app.__dict__
        keep(app_dict, dict(app_dict))
        # Containers the app changes in place: shallow copies (the pending task proxies
        # must not be evaluated by a deep copy); the worker steps and user options hold sets.
        for name in ("_duplicate_task_names_warned", "_pending", "user_options", "steps"):
            value = app_dict.get(name)
            if isinstance(value, _CONTAINERS):
                deep = name in ("user_options", "steps")
                keep(value, _copy(value, deep=deep), functools.partial(_refill, deep=deep))
        for name in ("_local", "loader"):
            obj = app_dict.get(name)
            if obj is not None:
                keep(obj.__dict__, dict(obj.__dict__))  # _local: this thread's backend, oid
        amqp = app_dict.get("amqp")
        if amqp is not None:
            pool = amqp.__dict__.get("_producer_pool")
            keep(amqp.__dict__, dict(amqp.__dict__), functools.partial(_restore_amqp, pool))
        conf = app_dict.get("_conf")
        if conf is not None:
            keep(conf.__dict__, dict(conf.__dict__))
            for name in ("maps", "defaults", "_observers"):
                if isinstance(conf.__dict__.get(name), list):
                    keep(conf.__dict__[name], list(conf.__dict__[name]), _restore_list)
            for mapping in conf.__dict__.get("maps") or ():
                if type(mapping) is not dict:
                    continue  # a config_from_object layer: a view over the user's object
                keep(mapping, dict(mapping))
                # Settings a test can change in place (``conf.beat_schedule["x"] = ...``):
                # compared by value and refilled from a private deep copy.
                for value in mapping.values():
                    if isinstance(value, _CONTAINERS):
                        try:
                            snapshot = copy.deepcopy(value)
                        except Exception:  # not copyable: its identity is kept
                            continue
                        keep(value, snapshot, functools.partial(_refill, deep=True))
        registry = app_dict.get("_tasks")
        registry_items: dict[str, Any] = dict.copy(registry) if registry is not None else {}
        if registry is not None:
            keep(registry, registry_items)
            keep(registry.__dict__, dict(registry.__dict__))
        classes: dict[type, None] = {}
        for task in registry_items.values():
            restorer = functools.partial(_restore_task, _task_keep(task))
            keep(task.__dict__, dict(task.__dict__), restorer)
            classes[original_class(task)] = None
        base = app_dict.get("Task")
        if isinstance(base, type):
            classes[base] = None
        for cls in classes:
            # A mappingproxy is a live view of the class's attributes.
            keep(cls.__dict__, dict(cls.__dict__), functools.partial(_restore_class, cls))
        self._live = live
        self._saved = saved
        self._restorers = restorers
        # Its tasks' own classes and instances are restored here, not by ClassState.
        MANAGED.add(app)

    @classmethod
    def save(cls, app: Celery) -> AppState:
        """Snapshot ``app`` (finalize it first: the registry saved is then complete)."""
        return cls(app)

    def unchanged(self) -> bool:
        """Whether nothing saved has changed (values compared, identity first)."""
        try:
            return bool(self._live == self._saved)
        except Exception:  # a value whose == raises (e.g. an array): restore to be sure
            return False

    def restore(self) -> None:
        """Put back every container that differs from its copy."""
        if self.unchanged():
            return
        for live, saved, restorer in zip(self._live, self._saved, self._restorers, strict=True):
            try:
                same = bool(live == saved)
            except Exception:
                same = False
            if not same:
                restorer(live, saved)


def forget_producer_pool(pool: Any) -> None:
    """Drop ``pool`` from kombu's process-wide registry of producer pools.

    ``kombu.pools.producers`` keeps one pool per broker URL for the whole process, and
    every app that publishes sets its ``limit`` again; kombu's ``resize`` then adds
    ``limit`` more idle producers to it even when the limit did not change, so a new app
    per test (eager ``delay()`` goes through the producer pool) would grow that pool by
    ~10 producers per test, forever.  The pool is not closed: another app may hold it.
    """
    if pool is None:
        return
    from kombu import pools

    for key, value in list(dict.items(pools.producers)):
        if value is pool:
            dict.pop(pools.producers, key, None)
