"""eager_app configuration: defaults, celerybase_config, the marker and the ini key."""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest


def test_defaults(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        """
def test_it(eager_app):
    conf = eager_app.conf
    assert conf.broker_url.startswith("memory://")
    assert conf.result_backend == "cache+memory://"
    assert conf.task_always_eager is True
    assert conf.task_eager_propagates is False
    assert conf.task_store_eager_result is True
    @eager_app.task
    def t():
        return 7
    r = t.delay()
    assert eager_app.AsyncResult(r.id).get() == 7  # eager results are stored
"""
    )
    run("--strict-markers").assert_outcomes(passed=1)


def test_config_fixture_and_marker_merge_closest_wins(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
def celerybase_config():
    return {"task_default_queue": "from-fixture", "task_eager_propagates": True}
"""
    )
    pytester.makepyfile(
        """
import pytest

pytestmark = pytest.mark.celerybase(task_default_queue="from-module", result_expires=3)

def test_module_marker(eager_app):
    assert eager_app.conf.task_default_queue == "from-module"
    assert eager_app.conf.task_eager_propagates is True
    assert eager_app.conf.result_expires == 3

@pytest.mark.celerybase(task_default_queue="from-test")
def test_closest_marker_wins(eager_app):
    assert eager_app.conf.task_default_queue == "from-test"
    assert eager_app.conf.result_expires == 3
"""
    )
    run("--strict-markers").assert_outcomes(passed=2)


def test_bad_config_errors(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile(
        test_markers="""
import pytest

@pytest.mark.celerybase(task_eager_propogates=True)
def test_typo(eager_app):
    pass

@pytest.mark.celerybase({"task_always_eager": False})
def test_positional(eager_app):
    pass
""",
        test_fixture="""
import pytest

@pytest.fixture
def celerybase_config():
    return ["task_always_eager"]

def test_not_a_mapping(eager_app):
    pass
""",
    )
    result = run()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "eager_app: ValueError: unknown Celery setting 'task_eager_propogates' "
            "(did you mean 'task_eager_propagates'?)*",
            "eager_app: TypeError: @pytest.mark.celerybase takes Celery settings as keyword "
            "arguments only, got positional ({'task_always_eager': False},)*",
            "eager_app: TypeError: Celery config must be a mapping of setting names to values, "
            "got list: [[]'task_always_eager'[]]",
        ]
    )


def test_project_app_from_ini_is_reconfigured_and_restored(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        proj="""
from celery import Celery, shared_task

app = Celery("proj")
app.conf.broker_url = "redis://unreachable.invalid:6379/0"
app.conf.result_backend = "redis://unreachable.invalid:6379/1"
app.conf.task_default_queue = "proj-queue"

@app.task
def add(x, y):
    return x + y

@shared_task
def mul(x, y):
    return x * y
""",
        test_proj="""
import pytest
from proj import app, add, mul
from pytest_celerybase import assert_hooks_called

SNAPSHOT = {}

def test_0_snapshot():
    SNAPSHOT["changes"] = dict(app.conf.changes)
    SNAPSHOT["tasks"] = set(app.tasks)

@pytest.mark.celerybase(task_default_queue="test-queue")
def test_1_runs_project_tasks_eagerly(eager_app):
    assert eager_app is app
    assert app.conf.task_always_eager and app.conf.broker_url.startswith("memory://")
    assert app.conf.task_default_queue == "test-queue"
    assert add.delay(2, 3).get() == 5 and mul.delay(2, 3).get() == 6
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
    assert_hooks_called("proj.mul", ["before_start", "on_success", "after_return"])

    @app.task
    def declared_in_test():
        return 1
    assert "test_proj.declared_in_test" in app.tasks

def test_2_restored():
    assert dict(app.conf.changes) == SNAPSHOT["changes"]
    assert app.conf.broker_url == "redis://unreachable.invalid:6379/0"
    assert set(app.tasks) == SNAPSHOT["tasks"]
""",
    )
    pytester.makeini("[pytest]\ncelerybase_app = proj:app\n")
    run().assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (
            "proj_app",
            "ValueError: celerybase_app must look like 'package.module:app', got 'proj_app'",
        ),
        (
            "nope_mod:app",
            "ValueError: celerybase_app = 'nope_mod:app': cannot import module 'nope_mod'*",
        ),
        (
            "proj_app:missing",
            "ValueError: celerybase_app = 'proj_app:missing': module 'proj_app' "
            "has no attribute 'missing' (Celery apps in it: app)",
        ),
        (
            "proj_app:ap",
            "ValueError: celerybase_app = 'proj_app:ap': module 'proj_app' has no attribute "
            "'ap'; did you mean 'app'? (Celery apps in it: app)",
        ),
        (
            "proj_app:NOT_AN_APP",
            "TypeError: celerybase_app = 'proj_app:NOT_AN_APP' names a int, "
            "not a celery.Celery app",
        ),
    ],
)
def test_bad_ini_app(pytester: pytest.Pytester, run: RunPytest, value: str, error: str) -> None:
    # One usage error for the run, before any test: not one error per test.
    pytester.makepyfile(
        proj_app="from celery import Celery\napp = Celery('proj')\nNOT_AN_APP = 3\n",
        test_it="def test_1(eager_app):\n    pass\n\ndef test_2(eager_app):\n    pass\n",
    )
    pytester.makeini(f"[pytest]\ncelerybase_app = {value}\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {error.partition(': ')[2]}"])
    assert "test_1" not in result.stdout.str()


def test_bad_wait_timeout_ini(pytester: pytest.Pytester, run: RunPytest) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    pytester.makeini("[pytest]\ncelerybase_wait_timeout = soon\n")
    result = run()
    result.stderr.fnmatch_lines(
        ["ERROR: celerybase_wait_timeout must be a number of seconds, got 'soon'"]
    )


def test_builtin_tasks_exist_when_asked_for(pytester: pytest.Pytester, run: RunPytest) -> None:
    # Celery's built-in tasks (celery.group, celery.chord_unlock, ...) are on eager_app's
    # app: lookups, membership tests, listings and canvas all see them.
    pytester.makepyfile(
        """
from celery import Celery, chord, group

def builtin_names(app):
    return sorted(name for name in app.tasks if name.startswith("celery."))

def test_same_builtins_as_a_plain_app(eager_app):
    plain = Celery(set_as_current=False)
    plain.finalize()
    assert "celery.chord_unlock" in eager_app.tasks
    assert builtin_names(eager_app) == builtin_names(plain)
    assert eager_app.tasks.get("celery.group").name == "celery.group"

def test_lookup_by_name_and_canvas(eager_app):
    assert eager_app.tasks["celery.chain"].name == "celery.chain"
    @eager_app.task
    def add(x, y):
        return x + y
    @eager_app.task
    def total(values):
        return sum(values)
    assert chord(add.s(i, i) for i in range(3))(total.s()).get() == 6
    assert group(add.s(1, 1), add.s(2, 2)).apply_async().get() == [2, 4]
"""
    )
    run().assert_outcomes(passed=2)
