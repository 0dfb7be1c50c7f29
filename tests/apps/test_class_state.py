"""Users' own base classes are put back after each test (the guide's patterns)."""

from __future__ import annotations

import textwrap

import pytest

from pytest_celerybase.apps.celery_globals import celery_globals_restored
from tests.conftest import RunPytest

# A project written the way guides write bases: state on the class, a module-level app.
PROJECT = '''
import requests
from celery import Celery, Task
from sqlalchemy import create_engine

app = Celery("own", set_as_current=False)
app.conf.task_always_eager = True
RUNS = []
CLOSED = []


class Session(requests.Session):
    def close(self):
        CLOSED.append(self)
        super().close()


class CachedTask(Task):
    _cache = {}
    _db = None
    seen = []
    tags = set()
    limit = 10

    def __call__(self, *args, **kwargs):
        if args in self._cache:
            return self._cache[args]
        result = self._cache[args] = super().__call__(*args, **kwargs)
        return result

    @property
    def db(self):
        if self._db is None:
            type(self)._db = create_engine("sqlite://")
        return self._db


class ApiTask(CachedTask):
    _session = None

    @property
    def session(self):
        if self._session is None:
            self._session = Session()  # on the task instance, as guides do
        return self._session


@app.task(base=CachedTask, bind=True)
def double(self, x):
    RUNS.append(x)
    return 2 * x


@app.task(base=ApiTask, bind=True)
def fetch(self):
    return id(self.session)
'''


def _project(pytester: pytest.Pytester, tests: str, **files: str) -> None:
    pytester.makepyfile(own=PROJECT, **files)
    pytester.makepyfile(test_own=textwrap.dedent(tests))


def test_a_class_level_cache_misses_in_the_next_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from own import CachedTask, RUNS, double

        def test_first():
            assert double.delay(2).get() == 4
            assert double.delay(2).get() == 4
            assert RUNS == [2]  # the second call was a cache hit

        def test_second_runs_the_body_again():
            cache = CachedTask._cache
            assert double.delay(2).get() == 4
            assert RUNS == [2, 2]
            assert CachedTask._cache is cache  # refilled in place, not replaced
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_without_the_plugin_the_cache_answers_the_next_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the restore prevents (and what the test above would see without it).
    _project(pytester, """
        from own import RUNS, double

        def test_first():
            assert double.delay(2).get() == 4

        def test_second():
            assert double.delay(2).get() == 4
            assert RUNS == [2], "the cache answered: the body did not run again"
    """)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    with celery_globals_restored():  # as the run fixture does, without the plugin
        result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_base_attributes_set_changed_deleted_and_mutated_are_back(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from own import ApiTask, CachedTask

        SEEN = CachedTask.seen

        def test_changes_everything():
            CachedTask._db = "an engine"
            CachedTask.limit = 0
            del ApiTask._session
            ApiTask.new = 1
            CachedTask.seen.append("x")
            CachedTask.tags.add("y")

        def test_everything_is_back():
            assert CachedTask._db is None and CachedTask.limit == 10
            assert "_session" in vars(ApiTask) and not hasattr(ApiTask, "new")
            assert CachedTask.seen == [] and SEEN is CachedTask.seen
            assert CachedTask.tags == set()
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_resources_a_test_made_lazily_are_closed_then_dropped(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from sqlalchemy import event, text
        from own import CLOSED, CachedTask, double, fetch

        DISPOSED = []

        def test_makes_an_engine_and_a_session():
            engine = double.db
            event.listen(engine, "engine_disposed", DISPOSED.append)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
            assert fetch.delay().get()
            assert DISPOSED == [] and CLOSED == []

        def test_they_were_closed_and_dropped():
            assert len(DISPOSED) == 1 and len(CLOSED) == 1
            assert CachedTask._db is None
            assert "_session" not in vars(fetch._get_current_object())
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_on_eager_app_the_apps_restore_closes_them_too(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # eager_app's app restores its tasks' instances itself (AppState): same outcome.
    _project(pytester, """
        from own import CLOSED, fetch

        def test_makes_a_session(eager_app):
            task = eager_app.tasks[fetch.name]
            assert task.delay().get()
            assert "_session" in vars(task) and CLOSED == []

        def test_it_was_closed_and_dropped(eager_app):
            assert len(CLOSED) == 1
            assert "_session" not in vars(eager_app.tasks[fetch.name])
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_what_existed_before_the_test_is_not_closed(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # An engine made at import (before any test) stays open, also when a test replaces it.
    _project(pytester, """
        from sqlalchemy import create_engine, event
        from own import CachedTask

        ENGINE = CachedTask._db = create_engine("sqlite://")
        DISPOSED = []
        event.listen(ENGINE, "engine_disposed", DISPOSED.append)

        def test_replaces_it():
            CachedTask._db = create_engine("sqlite://")

        def test_the_original_is_back_and_open():
            assert CachedTask._db is ENGINE and DISPOSED == []
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_celerybase_keep_keeps_deliberately_shared_state(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from sqlalchemy import create_engine, event
        from own import CachedTask

        class Pooled(CachedTask):
            celerybase_keep = ("_db", "_cache")

        DISPOSED = []

        def test_fills_the_shared_state():
            Pooled._db = create_engine("sqlite://")
            event.listen(Pooled._db, "engine_disposed", DISPOSED.append)
            Pooled._cache = {"warm": 1}
            CachedTask._cache["x"] = 1  # the parent's own cache is not kept

        def test_it_is_still_there():
            assert Pooled._db is not None and DISPOSED == []
            assert Pooled._cache == {"warm": 1} and CachedTask._cache == {}
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_bad_celerybase_keep_fails_the_test_naming_it(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from own import CachedTask, double

        class Pooled(CachedTask):
            celerybase_keep = ("_pool")  # a str, not a tuple

        def test_one():
            pass
    """)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*celerybase_keep: TypeError: test_own.Pooled.celerybase_keep must be a tuple of "
        "attribute names to keep across tests, got '_pool' (one name is written ('_pool',))",
    ])


def test_fixture_changes_are_undone_by_the_fixture_not_replayed(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # A base first used by a task declared in a fixture, after monkeypatch/spy changed
    # it: the state to restore is the one before the test, not the one at first use.
    _project(pytester, """
        import pytest
        from own import CachedTask

        @pytest.fixture
        def task(eager_app, monkeypatch, mocker):
            monkeypatch.setattr(CachedTask, "limit", 1)
            mocker.spy(CachedTask, "__call__")

            @eager_app.task(base=CachedTask, bind=True)
            def triple(self, x):
                return 3 * x
            return triple

        def test_uses_it(task):
            assert task.delay(1).get() == 3 and CachedTask.limit == 1

        def test_then_it_is_as_defined():
            assert CachedTask.limit == 10
            assert "__call__" in vars(CachedTask) and not hasattr(
                CachedTask.__call__, "spy_return")
            assert CachedTask._cache == {}
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_wider_scoped_fixtures_keep_their_change_until_their_teardown(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import pytest
        from own import CachedTask

        @pytest.fixture(scope="module")
        def configured():
            CachedTask.limit = 99
            yield
            CachedTask.limit = 10

        def test_one(configured):
            assert CachedTask.limit == 99
            CachedTask.tags.add("one")

        def test_two(configured):
            assert CachedTask.limit == 99 and CachedTask.tags == set()
    """, test_z_after="""
        from own import CachedTask

        def test_after_the_module():
            assert CachedTask.limit == 10
    """)
    run("-p", "no:randomly").assert_outcomes(passed=3)


def test_a_class_made_during_a_test_is_restored_to_its_state_when_made(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(late="""
        from celery import Task
        from own import app

        class LateBase(Task):
            _cache = {}

        @app.task(base=LateBase, bind=True)
        def late(self, x):
            self._cache[x] = x
            return x
    """)
    _project(pytester, """
        def test_imports_and_runs():
            from late import LateBase, late
            assert late.delay(1).get() == 1
            assert LateBase._cache == {1: 1}

        def test_next():
            from late import LateBase
            assert LateBase._cache == {}
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_project_app_loaded_by_eager_app_is_restored_from_its_first_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # The case: the project's module is imported by eager_app (celerybase_app)
    # during the first test's setup, after the test started.
    pytester.makeini("[pytest]\ncelerybase_app = own:app\n")
    _project(pytester, """
        def test_first(eager_app):
            from own import RUNS, double
            assert double.delay(5).get() == 10 and RUNS == [5]

        def test_second(eager_app):
            from own import RUNS, double
            assert double.delay(5).get() == 10 and RUNS == [5, 5]
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)
