"""Shared helpers for the plugin's own tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

# After every test: Celery's tracer, task classes, apps and the bases' bindings are back
# to what they were (see tests/leak_guard.py); a leak fails the offending test.
pytest_plugins = ["tests.leak_guard"]

RunPytest = Callable[..., pytest.RunResult]


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunPytest:
    """Run the pytester directory through the plugin in-process, in file order.

    Entry-point auto-loading is off in the inner session so the outcome does not depend
    on which other plugins happen to be installed (and start-up stays fast); the plugin
    and pytest-mock are loaded explicitly, as a user's ``-p`` would.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def _run(*args: str) -> pytest.RunResult:
        with _celery_globals_restored():
            return pytester.runpytest_inprocess("-p", "celerybase", "-p", "pytest_mock", *args)

    return _run


@contextlib.contextmanager
def _celery_globals_restored() -> Iterator[None]:
    """Undo what importing the inner session's modules did to Celery's globals.

    pytester restores ``sys.modules`` after an in-process run, not Celery's state: a
    module doing ``app = Celery(...)`` (``set_as_current=True``) or ``@shared_task`` at
    import, during the inner *collection*, would leave its app current and its finalizers
    registered for every later test of this process.  What the inner *tests* do is the
    plugin's job (and checked by the leak guard in both sessions).
    """
    from celery import _state

    current = getattr(_state._tls, "current_app", None)
    default = _state.default_app
    finalizers = set(_state._on_app_finalizers)
    try:
        yield
    finally:
        _state._tls.current_app = current
        _state.set_default_app(default)
        _state._on_app_finalizers.clear()
        _state._on_app_finalizers.update(finalizers)
