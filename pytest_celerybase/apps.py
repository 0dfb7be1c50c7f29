"""Isolated Celery apps for tests (no pytest import).

:func:`isolated_app` makes an app the current and default one for a block, configured
for synchronous tests, and undoes everything on exit: the app's configuration and task
registry (for a project's own app), the current/default app, and Celery's global list of
shared-task finalizers.  The last one matters because ``@app.task`` is *shared* by
default: the task is remembered globally and registered on every app finalized later,
and an app keeps the first task registered under a name, so without this a task
declared in one test would run in place of a same-named task declared in the next.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pytest_celerybase._celery_state import CeleryGlobals

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["EAGER_DEFAULTS", "isolated_app", "load_app", "validate_config"]

#: Configuration ``eager_app`` starts from (overrides are applied on top).
EAGER_DEFAULTS: dict[str, Any] = {
    "broker_url": "memory://localhost/",
    "result_backend": "cache+memory://",
    "task_always_eager": True,
    "task_eager_propagates": False,
    "task_store_eager_result": True,
    "broker_connection_retry_on_startup": False,
}


def load_app(path: str) -> Celery:
    """Import ``"package.module:attr"`` and return the Celery app it names."""
    from celery import Celery

    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"celerybase_app must look like 'package.module:app', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"celerybase_app = {path!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"celerybase_app = {path!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not isinstance(obj, Celery):
        raise TypeError(
            f"celerybase_app = {path!r} names a {type(obj).__name__}, not a celery.Celery app"
        )
    return obj


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``config`` as a dict; reject keys that look like misspelled Celery settings.

    Unknown keys without a close match pass through: apps may carry their own settings.
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"Celery config must be a mapping of setting names to values, "
            f"got {type(config).__name__}: {config!r}"
        )
    if not config:
        return {}
    known = _known_settings()
    for key in config:
        if not isinstance(key, str):
            raise TypeError(f"Celery setting names must be str, got {key!r}")
        if key in known or key.isupper() or key.startswith("celerybase_"):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
        if close:
            raise ValueError(
                f"unknown Celery setting {key!r} (did you mean {close[0]!r}?); "
                "see https://docs.celeryq.dev/en/stable/userguide/configuration.html"
            )
    return dict(config)


@functools.cache
def _known_settings() -> frozenset[str]:
    """Every Celery setting name (new style), computed once: validate_config runs per test."""
    from celery.app.defaults import NAMESPACES, flatten

    return frozenset(key for key, _ in flatten(NAMESPACES))


@contextlib.contextmanager
def isolated_app(
    app: Celery | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] = EAGER_DEFAULTS,
) -> Iterator[Celery]:
    """Yield ``app`` (a fresh app when ``None``) configured with ``defaults`` + ``config``.

    The app is current and default inside the block; on exit the previous ones, the
    shared-task finalizers and (for a given app) its configuration, task registry and
    cached backend/connection pool are restored.
    """
    settings = {**defaults, **validate_config(config or {})}
    # Restoring the "inside a task" flag matters too: eager delay() sets it around apply()
    # without a lock, so threads calling tasks at once can leave it set, and every later
    # result.get() would raise "Never call result.get() within a task!".
    saved_globals = CeleryGlobals.save()
    own_app = app is None
    restore_project: Any = None
    if app is None:
        app = _fresh_app(settings)
    else:
        restore_project = _reconfigure(app, settings)
    try:
        app.set_current()
        app.set_default()
        yield app
    finally:
        saved_globals.restore()
        if restore_project is not None:
            restore_project()
        if own_app:
            _forget_producer_pool(app)
            app.close()


def _fresh_app(settings: Mapping[str, Any]) -> Celery:
    """A new finalized app whose built-in tasks are created on first use.

    Finalized up front: ``@app.task`` then returns real tasks instead of lazy proxies, and
    threads calling a task at once cannot race Celery's lazy finalization.  Creating
    Celery's built-in tasks (``celery.chord_unlock``, ``celery.group``, …) is most of the
    cost of finalizing an app, and most tests never touch them: the registry creates
    them the first time one is looked up or the registry is listed.
    """
    from celery import Celery, _state

    registry = _lazy_builtins_registry_class()()
    app = Celery("celerybase", set_as_current=False, tasks=registry)
    app.conf.update(settings)
    builtins = {
        cb
        for cb in _state._on_app_finalizers
        if getattr(cb, "__module__", None) == "celery.app.builtins"
    }
    _state._on_app_finalizers.difference_update(builtins)
    try:
        app.finalize()
    finally:
        _state._on_app_finalizers.update(builtins)
    registry._celerybase_defer(app, builtins)
    return app


@functools.cache
def _lazy_builtins_registry_class() -> type:
    from celery.app.registry import TaskRegistry

    class LazyBuiltinsRegistry(TaskRegistry):  # type: ignore[misc]
        """A task registry that adds Celery's built-in tasks when first needed."""

        _pending: tuple[Any, ...] = ()

        def _celerybase_defer(self, app: Celery, callbacks: Any) -> None:
            self._app = app
            self._lock = threading.Lock()
            self._pending = tuple(callbacks)

        def _load(self) -> None:
            if not self._pending:
                return
            with self._lock:
                pending, self._pending = self._pending, ()
                for callback in pending:
                    callback(self._app)

        def _load_for(self, key: object) -> None:
            # Only a built-in's name can be missing because the built-ins are pending.
            if self._pending and isinstance(key, str) and key.startswith("celery."):
                self._load()

        def __missing__(self, key: str) -> Any:
            self._load_for(key)
            if dict.__contains__(self, key):
                return dict.__getitem__(self, key)
            return super().__missing__(key)

        def __contains__(self, key: object) -> bool:
            self._load_for(key)
            return dict.__contains__(self, key)

        def get(self, key: Any, default: Any = None) -> Any:
            self._load_for(key)
            return dict.get(self, key, default)

        def __iter__(self) -> Any:
            self._load()
            return dict.__iter__(self)

        def __len__(self) -> int:
            self._load()
            return dict.__len__(self)

        def keys(self) -> Any:
            self._load()
            return dict.keys(self)

        def values(self) -> Any:
            self._load()
            return dict.values(self)

        def items(self) -> Any:
            self._load()
            return dict.items(self)

    return LazyBuiltinsRegistry


def _reconfigure(app: Celery, settings: Mapping[str, Any]) -> Any:
    """Apply ``settings`` to a long-lived app; return a function that undoes it."""
    conf = app.conf
    saved_changes = dict(conf.changes)
    tasks = app.tasks  # finalizes: the registry we restore is the complete one
    saved_tasks = dict(tasks)
    # Backends and connection pools are cached per app (and per thread): give the test
    # fresh ones built from the test settings, and put the originals back afterwards.
    saved_local = app._local
    saved_backend_cache = app.__dict__.get("_backend_cache", None)
    saved_pool = app._pool
    amqp = app.__dict__.get("amqp")
    saved_producer_pool = getattr(amqp, "_producer_pool", None)
    conf.update(settings)
    app._local = threading.local()
    if "_backend_cache" in app.__dict__:
        app._backend_cache = None
    app._pool = None
    if amqp is not None:
        amqp._producer_pool = None

    def restore() -> None:
        conf.changes.clear()
        conf.changes.update(saved_changes)
        tasks.clear()
        tasks.update(saved_tasks)
        app._local = saved_local
        if "_backend_cache" in app.__dict__:
            app._backend_cache = saved_backend_cache
        app._pool = saved_pool
        if amqp is not None:
            if amqp._producer_pool is not saved_producer_pool:
                _forget_producer_pool(app)
            amqp._producer_pool = saved_producer_pool

    return restore


def _forget_producer_pool(app: Celery) -> None:
    """Drop the producer pool the app used from kombu's process-wide registry.

    ``kombu.pools.producers`` keeps one pool per broker URL for the whole process, and
    every new app that publishes sets its ``limit`` again; kombu's ``resize`` then adds
    ``limit`` more idle producers to it even when the limit did not change, so an app per
    test (eager ``delay()`` goes through the producer pool) grows that pool by ~10
    producers per test, forever.  Forgetting it after the test lets the next app start
    from a fresh pool.  The pool is not closed: another app may still hold it.
    """
    amqp = app.__dict__.get("amqp")
    pool = getattr(amqp, "_producer_pool", None)
    if pool is None:
        return
    from kombu import pools

    for key, value in list(dict.items(pools.producers)):
        if value is pool:
            dict.pop(pools.producers, key, None)
