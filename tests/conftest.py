"""Shared helpers for the plugin's own tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
        return pytester.runpytest_inprocess("-p", "celerybase", "-p", "pytest_mock", *args)

    return _run
