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


def test_public_api_is_imported_on_first_use() -> None:
    # The package re-exports its API lazily (PEP 562): loading the plugin does not import
    # the assertions, every name in __all__ still resolves to the object of its module,
    # and a wrong name is an AttributeError naming it.
    code = """
import sys, pytest_celerybase.plugin
print("pytest_celerybase.assertions" in sys.modules)
import pytest_celerybase as api
from pytest_celerybase import assert_hooks_called, HookCall
from pytest_celerybase import assertions, errors, lifecycle, recorder, sent_tasks, worker
from pytest_celerybase.bases import sinks
from pytest_celerybase.resources import sql_capture
modules = (assertions, errors, lifecycle, recorder, sent_tasks, worker, sinks, sql_capture)
for name in api.__all__:
    sources = [m for m in modules if name in m.__all__]
    assert sources and all(getattr(api, name) is getattr(m, name) for m in sources), name
assert set(api.__all__) <= set(dir(api))
try:
    api.assert_hook_called
except AttributeError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "False",
        "module 'pytest_celerybase' has no attribute 'assert_hook_called'",
    ]


@pytest.mark.parametrize(
    "face", ["pytest_celerybase", "pytest_celerybase.recorder", "pytest_celerybase.worker"]
)
def test_type_checking_imports_list_the_lazy_exports(face: str) -> None:
    # A lazy face lists its names twice: in _EXPORTS (read at run time) and as
    # TYPE_CHECKING imports (read by type checkers). They must name the same objects.
    import ast
    import importlib
    from pathlib import Path

    module = importlib.import_module(face)
    tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for alias in imp.names:
                    assert alias.asname == alias.name, f"{alias.name}: re-export it `as` itself"
                    typed[alias.name] = imp.module.removeprefix("pytest_celerybase.")
    assert typed == module._EXPORTS
    assert module.__all__ == sorted(typed)
