"""Shared helpers for the plugin's own tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

# Imported before any in-process pytester session: pytester drops the modules an inner
# session imported, and sqlalchemy.orm cannot be imported a second time into the same
# sqlalchemy ("Type <class 'object'> is already registered"), which the next test
# needing it would then hit (seen in random orders and on SQLAlchemy 2.0).
import sqlalchemy.orm  # noqa: F401

from pytest_celerybase.apps.celery_globals import celery_globals_restored

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
        # pytester restores ``sys.modules`` after an in-process run, not Celery's globals:
        # a module doing ``app = Celery(...)`` or ``@shared_task`` at import, during the
        # inner *collection*, would leave its app current and its finalizers registered.
        # What the inner *tests* do is the plugin's job (the leak guard checks it).
        # (A ``@shared_task`` imported by the inner session is added to every finalized
        # app alive now: the globals restored include those apps' registries.)
        with celery_globals_restored():
            return pytester.runpytest_inprocess("-p", "celerybase", "-p", "pytest_mock", *args)

    return _run
