"""The plugin loads as users load it, and stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

QUICKSTART = """
from pytest_celerybase import assert_hooks_called

def test_hooks(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y
    assert add.delay(1, 2).get() == 3
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
"""


def test_dash_p_with_autoload_disabled_and_no_conftest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(QUICKSTART)
    result = pytester.runpytest_subprocess("-p", "celerybase", "--strict-markers")
    result.assert_outcomes(passed=1)


def test_without_the_plugin_the_fixture_is_missing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(QUICKSTART)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'eager_app' not found*"])


def test_entry_point_autoloads(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(QUICKSTART)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins:*celerybase-*"])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess("-p", "celerybase", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.celerybase(**settings): Celery settings*"])


def test_plugin_import_does_not_import_celery_or_friends() -> None:
    code = (
        "import sys, pytest_celerybase.plugin, pytest_celerybase;"
        "heavy = [m for m in ('celery', 'kombu', 'sqlalchemy', 'requests', 'fakeredis', "
        "'responses', 'redis') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
