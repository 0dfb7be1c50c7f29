"""pytest glue for pytest-celerybase: ini keys, the marker, recording per test, fixtures.

Loaded as ``pytest -p celerybase`` or through the ``pytest11`` entry point.  Importing
this module must stay cheap: Celery and friends are imported inside fixtures and hooks.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_celerybase._markers import marker_kwargs
from pytest_celerybase._resource_fixtures import *  # noqa: F403 - fixtures, pytest-django style
from pytest_celerybase._resource_fixtures import HTTP_STUB_MARKER
from pytest_celerybase._resource_fixtures import __all__ as _resource_fixtures
from pytest_celerybase._worker_fixtures import *  # noqa: F403
from pytest_celerybase._worker_fixtures import __all__ as _worker_fixtures
from pytest_celerybase.recorder import HookRecorder, activate, deactivate

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "celerybase_config",
    "eager_app",
    "hook_recorder",
    *_resource_fixtures,
    *_worker_fixtures,
]

_RECORDER = pytest.StashKey[HookRecorder]()
_DEFAULT_WAIT_TIMEOUT = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "celerybase_app",
        "Celery app used by eager_app instead of a fresh one, as 'package.module:attr'; "
        "it is reconfigured for each test and restored after.",
        default="",
    )
    parser.addini(
        "celerybase_wait_timeout",
        "Seconds a hook assertion waits for a live worker to finish the task (default 10).",
        default=str(_DEFAULT_WAIT_TIMEOUT),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "celerybase(**settings): Celery settings for this test's eager_app/live_worker, "
        "merged over the celerybase_config fixture (closest marker wins).",
    )
    config.addinivalue_line("markers", HTTP_STUB_MARKER)


def _wait_timeout(config: pytest.Config) -> float:
    raw = config.getini("celerybase_wait_timeout")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"celerybase_wait_timeout must be a number of seconds, got {raw!r}"
        ) from None
    if value < 0:
        raise pytest.UsageError(f"celerybase_wait_timeout must be >= 0, got {raw!r}")
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    # Around setup, call and teardown: tasks run by fixtures are recorded too, and the
    # recorder is only undone after every fixture of the test has been torn down.
    recorder = HookRecorder(wait_timeout=_wait_timeout(item.config))
    item.stash[_RECORDER] = recorder
    activate(recorder)
    try:
        return (yield)
    finally:
        deactivate(recorder)
        del item.stash[_RECORDER]


@pytest.fixture
def hook_recorder(request: pytest.FixtureRequest) -> HookRecorder:
    """The :class:`~pytest_celerybase.HookRecorder` of this test (``.calls``, ``.clear()``)."""
    try:
        recorder: HookRecorder = request.node.stash[_RECORDER]
    except KeyError:  # pragma: no cover - only without our runtest hook
        raise RuntimeError("hook_recorder is only available inside a test") from None
    return recorder


@pytest.fixture
def celerybase_config() -> dict[str, Any]:
    """Celery settings applied over the eager defaults; override it to change them."""
    return {}


def _marker_settings(node: pytest.Item) -> dict[str, Any]:
    return marker_kwargs(
        node,
        "celerybase",
        "@pytest.mark.celerybase takes Celery settings as keyword arguments only, "
        "got positional {args!r}; e.g. @pytest.mark.celerybase(task_eager_propagates=True)",
    )


def _merged_settings(request: pytest.FixtureRequest, base: Any) -> dict[str, Any]:
    from pytest_celerybase.apps import validate_config

    settings = validate_config(base)
    settings.update(validate_config(_marker_settings(request.node)))
    return settings


def _settings_and_app(
    request: pytest.FixtureRequest, config: Any, fixture: str
) -> tuple[dict[str, Any], Celery | None]:
    """The merged settings and the project app (if any); a clean failure on bad input."""
    from pytest_celerybase.apps import load_app

    try:
        settings = _merged_settings(request, config)
        path = request.config.getini("celerybase_app")
        return settings, (load_app(path) if path else None)
    except (TypeError, ValueError) as exc:
        # The user's configuration is wrong, not our code: no traceback into the plugin.
        pytest.fail(f"{fixture}: {type(exc).__name__}: {exc}", pytrace=False)


@pytest.fixture
def eager_app(
    request: pytest.FixtureRequest, celerybase_config: dict[str, Any]
) -> Generator[Celery, None, None]:
    """A Celery app that runs tasks synchronously, current and default for the test.

    In-memory broker and result backend, ``task_always_eager=True``,
    ``task_eager_propagates=False``; the ``celerybase_app`` ini key selects a project
    app instead of a fresh one.  Everything is restored after the test.
    """
    from pytest_celerybase.apps import isolated_app

    settings, app = _settings_and_app(request, celerybase_config, "eager_app")
    with isolated_app(app, settings) as configured:
        yield configured
