"""Isolated Celery apps for tests (no pytest import).

:func:`isolated_app` makes an app the current and default one for a block, configured
for synchronous tests, and undoes everything on exit: the app's own state (configuration,
task registry, task attributes, cached backend and pools: :mod:`._app_state`), the
current/default app, and Celery's global list of shared-task finalizers.  The last one
matters because ``@app.task`` is *shared* by default: the task is remembered globally and
registered on every app finalized later, and an app keeps the first task registered under
a name, so without this a task declared in one test would run in place of a same-named
task declared in the next.  :class:`AppCache` keeps the apps ``eager_app`` builds, one per
distinct settings, so a test pays for a restore instead of a new app.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pytest_celerybase.apps.app_state import AppState, forget_producer_pool
from pytest_celerybase.apps.celery_globals import CeleryGlobals, celery_globals_restored
from pytest_celerybase.apps.config_check import validate_config

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["EAGER_DEFAULTS", "AppCache", "isolated_app", "load_app",
           "validate_config"]  # fmt: skip

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
    """Import ``"package.module:attr"`` and return the Celery app it names.

    ``Celery(...)`` makes itself the current app when created: importing the project's
    module for the first time (in a test's setup) must not leave it current after the
    test, so the current and default app are put back (its shared tasks stay declared).
    """
    from celery import Celery

    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"celerybase_app must look like 'package.module:app', got {path!r}")
    try:
        with celery_globals_restored(finalizers=False):
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
            close = difflib.get_close_matches(part, [n for n in dir(obj) if n[:1] != "_"])
            apps = [n for n in dir(module) if isinstance(getattr(module, n, None), Celery)]
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            if apps:
                hint += f" (Celery apps in it: {', '.join(apps)})"
            raise ValueError(
                f"celerybase_app = {path!r}: module {module_name!r} has no attribute "
                f"{attr!r}{hint}"
            ) from None
    if not isinstance(obj, Celery):
        raise TypeError(
            f"celerybase_app = {path!r} names a {type(obj).__name__}, not a celery.Celery app"
        )
    return obj


@contextlib.contextmanager
def isolated_app(
    app: Celery | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] = EAGER_DEFAULTS,
    cache: AppCache | None = None,
    defer: Callable[[Callable[[], None]], None] | None = None,
) -> Iterator[Celery]:
    """Yield ``app`` configured with ``defaults`` + ``config``, current and default.

    ``app`` is the project's own app (reconfigured for the block), else an app built for
    these settings: taken from ``cache`` (built once per distinct settings) or, without a
    cache, a new one closed on exit.  On exit the previous current/default app, the
    shared-task finalizers and the app's state (:class:`AppState`: configuration,
    registry, task attributes, cached backend/pools) are restored.  With ``defer``, the
    app's state is handed to it to restore later instead: pytest's teardown runs the undo
    of fixtures set up before this one (a ``monkeypatch`` of the app) after this exit,
    and they must find the app as they left it.
    """
    settings = {**defaults, **validate_config(config or {})}
    # Restoring the "inside a task" flag matters too: eager delay() sets it around apply()
    # without a lock, so threads calling tasks at once can leave it set, and every later
    # result.get() would raise "Never call result.get() within a task!".
    saved_globals = CeleryGlobals.save()
    state: AppState | None = None
    own_app = False
    try:
        if app is not None:
            app.tasks  # finalize: the registry saved is the complete one  # noqa: B018
            state = AppState.save(app)
            _reconfigure(app, settings)
        elif cache is not None:
            app, state = cache.checkout(settings)
        else:
            app, own_app = _fresh_app(settings), True
        app.set_current()
        app.set_default()
        yield app
    finally:
        saved_globals.restore()
        if state is not None:
            if defer is None:
                state.restore()
            else:
                defer(state.restore)
        if own_app and app is not None:
            _close(app)


class AppCache:
    """Apps built for ``eager_app``, one per distinct settings, kept for a session.

    Building and finalizing a Celery app costs about a millisecond (Celery deep-copies its
    default configuration and binds every shared task); a restore (:class:`AppState`)
    costs a few microseconds.  An app is rebuilt when the shared-task finalizers changed
    since it was built (a module declaring ``@shared_task`` imported meanwhile), so it
    always holds what a new app would.  At most ``size`` apps are kept (least recently
    used first out).
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: list[tuple[dict[str, Any], frozenset[Any], Celery, AppState]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def checkout(self, settings: Mapping[str, Any]) -> tuple[Celery, AppState]:
        """The app for ``settings`` and its saved state, restored and ready for a test."""
        from celery import _state

        finalizers = _state._on_app_finalizers
        for index, entry in enumerate(self._entries):
            saved_settings, saved_finalizers, app, state = entry
            if not _same_settings(saved_settings, settings):
                continue
            del self._entries[index]
            if saved_finalizers != finalizers:
                _close(app)
                break
            # Also what changed since the last test's restore: ``@shared_task`` adds a task
            # to every finalized app, and an undo that runs after eager_app's teardown
            # (a monkeypatch set up before it) can put an attribute on the app.
            state.restore()
            _state._register_app(app)  # a test may have closed it (``with eager_app:``)
            self._entries.append(entry)
            return app, state
        app = _fresh_app(settings, lazy_builtins=False)
        _warm(app)
        state = AppState.save(app)
        self._entries.append((_copy_settings(settings), frozenset(finalizers), app, state))
        while len(self._entries) > self.size:
            _close(self._entries.pop(0)[2])
        return app, state

    def close(self) -> None:
        """Close every app kept (end of the session)."""
        while self._entries:
            _close(self._entries.pop()[2])


def _same_settings(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a value whose == raises or is ambiguous: not the same settings
        return False


def _copy_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    # The key must not change when a test mutates the value it passed in.
    try:
        return copy.deepcopy(dict(settings))
    except Exception:  # not deep-copyable: equality still compares the same objects
        return dict(settings)


def _warm(app: Celery) -> None:
    """Create the app's cached objects a first eager call would, so tests share them.

    Only for the in-memory broker and backend: another backend may need a server, and a
    test that never uses it must not fail because it is unreachable.
    """
    conf = app.conf
    # Best effort: what fails here fails again, with Celery's own error, where a test uses it.
    with contextlib.suppress(Exception):
        app.tasks  # noqa: B018 - cached properties
        app.timezone  # noqa: B018
        if conf.result_backend == EAGER_DEFAULTS["result_backend"]:
            app.backend  # noqa: B018 - cached per thread
        if str(conf.broker_url).startswith("memory://"):
            with app.producer_or_acquire():
                pass


def _close(app: Celery) -> None:
    amqp = app.__dict__.get("amqp")
    forget_producer_pool(getattr(amqp, "_producer_pool", None))
    app.close()


def _fresh_app(settings: Mapping[str, Any], *, lazy_builtins: bool = True) -> Celery:
    """A new finalized app whose built-in tasks are created on first use (by default).

    Finalized up front: ``@app.task`` then returns real tasks instead of lazy proxies, and
    threads calling a task at once cannot race Celery's lazy finalization.  Creating
    Celery's built-in tasks (``celery.chord_unlock``, ``celery.group``, …) is most of the
    cost of finalizing an app, and most tests never touch them: the registry creates
    them the first time one is looked up or the registry is listed.
    """
    from celery import Celery, _state

    if not lazy_builtins:
        app = Celery("celerybase", set_as_current=False)
        app.conf.update(settings)
        app.finalize()
        return app
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


def _reconfigure(app: Celery, settings: Mapping[str, Any]) -> None:
    """Apply ``settings`` to a long-lived app (its :class:`AppState` undoes it)."""
    app.conf.update(settings)
    # Backends and connection pools are cached per app (and per thread): give the test
    # fresh ones built from the test settings; the saved state has the originals.
    app._local = threading.local()
    if "_backend_cache" in app.__dict__:
        app._backend_cache = None
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
