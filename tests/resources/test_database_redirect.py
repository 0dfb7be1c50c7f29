"""``celerybase_database_urls``: a base's production engine runs on the test's SQLite."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import RunPytest

# A base written as guides write it: a lazy engine on a production URL, with pool options
# SQLite does not take, create_engine imported at module level.
PROJECT = '''
import os

from celery import Task, shared_task
from sqlalchemy import create_engine, text


class DatabaseTask(Task):
    _db = None

    @property
    def db(self):
        if self._db is None:
            type(self)._db = create_engine(
                "postgresql://app:secret@orders-db/orders", pool_size=10, max_overflow=20
            )
        return self._db


@shared_task(base=DatabaseTask, bind=True)
def record(self, ref):
    with self.db.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS orders (ref TEXT, pid INTEGER)"))
        conn.execute(
            text("INSERT INTO orders VALUES (:ref, :pid)"), {"ref": ref, "pid": os.getpid()}
        )
    return os.getpid()


def refs(engine):
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT ref FROM orders")).scalars())
'''

INI = "[pytest]\ncelerybase_database_urls =\n    postgresql://*\n"


def _project(pytester: pytest.Pytester, tests: str, ini: str = INI) -> None:
    pytester.makeini(ini)
    pytester.makepyfile(orders=PROJECT, test_orders=textwrap.dedent(tests))


def test_a_production_engine_in_a_base_writes_to_the_tests_sqlite_database(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import warnings
        from sqlalchemy import text
        from orders import record, refs

        def test_writes(eager_app, sqlite_engine, sql_queries):
            assert record.delay("A-1").get()
            assert refs(sqlite_engine) == ["A-1"]  # same data as sqlite_engine
            assert any("INSERT INTO orders" in s for s in sql_queries.statements)

        def test_next_test_starts_empty(eager_app, sqlite_engine):
            with sqlite_engine.connect() as conn:
                assert conn.execute(text(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'orders'")).scalar() == 0
            record.delay("B-1").get()
            assert refs(sqlite_engine) == ["B-1"]
    """)
    result = run("-p", "no:randomly", "-W", "ignore::pytest_celerybase.CelerybaseWarning")
    result.assert_outcomes(passed=2)


def test_dropped_options_are_named_in_one_warning_at_the_callers_line(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import pytest
        import sqlalchemy
        from pytest_celerybase import CelerybaseWarning

        def test_warns_once(recwarn):
            engine = sqlalchemy.create_engine(
                "postgresql://app:secret@db/x", pool_size=5, connect_args={"a": 1},
                echo=False, execution_options={"stream_results": False})
            warning, = [w for w in recwarn if w.category is CelerybaseWarning]
            assert str(warning.message) == (
                "celerybase_database_urls: create_engine('postgresql://app:***@db/x') "
                "runs on the test's SQLite database; options SQLite does not take were "
                "dropped: connect_args, pool_size")
            assert warning.filename.endswith("test_orders.py")
            assert str(engine.url) == "sqlite://"

        def test_no_warning_without_such_options(recwarn):
            sqlalchemy.create_engine("postgresql://db/x", echo=False)
            assert not [w for w in recwarn if w.category is CelerybaseWarning]
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_an_unmatched_url_is_left_alone(pytester: pytest.Pytester, run: RunPytest) -> None:
    _project(pytester, """
        from sqlalchemy import create_engine, text

        def test_own_file(tmp_path, sqlite_engine):
            engine = create_engine(f"sqlite:///{tmp_path}/real.db")
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
            engine.dispose()
            assert (tmp_path / "real.db").exists()
            with sqlite_engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar() == 0
    """)
    run().assert_outcomes(passed=1)


def test_the_marker_overrides_the_ini(pytester: pytest.Pytester, run: RunPytest) -> None:
    # Globs on a file URL: what "not redirected" does is then visible without a driver.
    _project(pytester, """
        import pytest
        from sqlalchemy import create_engine, text

        def make(tmp_path):
            engine = create_engine(f"sqlite:///{tmp_path}/prod.db")
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
            engine.dispose()
            return (tmp_path / "prod.db").exists()

        def test_redirected_by_the_ini(tmp_path):
            assert not make(tmp_path)

        @pytest.mark.celerybase(celerybase_database_urls=[])
        def test_not_redirected_by_an_empty_list(tmp_path):
            assert make(tmp_path)

        @pytest.mark.celerybase(celerybase_database_urls=["sqlite:///*/other.db"])
        def test_other_globs(tmp_path):
            assert make(tmp_path)
    """, ini="[pytest]\ncelerybase_database_urls = sqlite:///*/prod.db\n")
    run().assert_outcomes(passed=3)


def test_an_engine_made_before_the_test_cannot_reach_the_database(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import pytest
        from sqlalchemy import create_engine, text
        from pytest_celerybase import UnredirectedEngineError

        ENGINE = create_engine("sqlite:////nonexistent/prod.db")  # at import: not redirected

        def test_refused():
            with pytest.raises(UnredirectedEngineError) as info:
                ENGINE.connect()
            assert str(info.value) == (
                "celerybase_database_urls: this engine on 'sqlite:////nonexistent/prod.db' "
                "was made before the test (at import?), so it is not redirected and would "
                "reach the real database (globs: ['sqlite:////nonexistent/*']). Make the "
                "engine when it is first needed (a lazy property, a fixture), or mark the "
                "test with @pytest.mark.celerybase(celerybase_database_urls=[]) to let it "
                "through")
            assert create_engine("sqlite:////nonexistent/prod.db").connect()  # redirected
    """, ini="[pytest]\ncelerybase_database_urls = sqlite:////nonexistent/*\n")
    run().assert_outcomes(passed=1)


def test_async_engines_are_refused_not_redirected(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # create_async_engine(url) is create_engine(url, _is_async=True).
    _project(pytester, """
        import pytest
        from sqlalchemy import create_engine
        from sqlalchemy.exc import NoSuchModuleError

        def test_async():
            with pytest.raises(TypeError, match="async engines .* are not redirected"):
                create_engine("postgresql+asyncpg://db/x", _is_async=True)

        @pytest.mark.celerybase(celerybase_database_urls=["postgresql://*"])
        def test_a_driver_needs_its_own_glob(sqlite_engine):
            # postgresql://* is the default driver's scheme only: for another one
            # SQLAlchemy looks the driver up (and would reach the real database).
            with pytest.raises(NoSuchModuleError):
                create_engine("postgresql+nodriver://db/x")
    """, ini="[pytest]\ncelerybase_database_urls = postgresql*://*\n")
    run().assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("celerybase_database_urls='postgresql://*'",
         "celerybase_database_urls: TypeError: @pytest.mark.celerybase("
         "celerybase_database_urls=...) must be a list of URL globs such as "
         "['postgresql://*'], got str 'postgresql://*'"),
        ("celerybase_database_urls=['postgres']",
         "celerybase_database_urls: ValueError: @pytest.mark.celerybase("
         "celerybase_database_urls=...): each entry must be a URL glob such as "
         "'postgresql://*' or 'postgresql+psycopg://*@orders-db/*', got 'postgres'"),
    ],
    ids=["a-str", "not-a-url"],
)
def test_a_bad_marker_value_fails_the_test_naming_it(
    pytester: pytest.Pytester, run: RunPytest, marker: str, message: str
) -> None:
    _project(pytester, f"""
        import pytest

        @pytest.mark.celerybase({marker})
        def test_one():
            pass
    """)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message.replace("[", "[[]")])


def test_a_misspelled_key_is_an_error(pytester: pytest.Pytester, run: RunPytest) -> None:
    _project(pytester, """
        import pytest

        @pytest.mark.celerybase(celerybase_database_url_globs=["postgresql://*"])
        def test_one(eager_app):
            pass
    """)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*unknown pytest-celerybase setting 'celerybase_database_url_globs' (did you mean "
        "'celerybase_database_urls'?)*",
    ])


def test_a_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, run: RunPytest) -> None:
    _project(pytester, "def test_one():\n    pass\n",
             ini="[pytest]\ncelerybase_database_urls = orders-db\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: celerybase_database_urls: each entry must be a URL glob such as "
        "'postgresql://*' or 'postgresql+psycopg://*@orders-db/*', got 'orders-db'",
    ])


def test_prefork_children_write_to_a_file_the_test_reads_and_the_next_starts_empty(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import os
        import pytest
        from sqlalchemy import create_engine, text
        from orders import record, refs

        PREFORK = pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)

        @pytest.fixture
        def schema():
            # Made before the worker forks: what it wrote is moved to the file.
            engine = create_engine("postgresql://app@orders-db/orders")
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE orders (ref TEXT, pid INTEGER)"))
                conn.execute(text("INSERT INTO orders VALUES ('A-0', 0)"))
            return engine

        @PREFORK
        def test_children_write(schema, live_worker):
            pids = {record.delay(ref).get(timeout=10) for ref in ("A-1", "A-2", "A-3")}
            assert os.getpid() not in pids
            assert refs(schema) == ["A-0", "A-1", "A-2", "A-3"]
            assert refs(create_engine("postgresql://other@orders-db/x")) == refs(schema)

        @PREFORK
        def test_next_starts_empty(live_worker):
            record.delay("B-1").get(timeout=10)
            assert refs(create_engine("postgresql://app@orders-db/orders")) == ["B-1"]
    """)
    result = run("-p", "no:randomly", "-W", "ignore::pytest_celerybase.CelerybaseWarning")
    result.assert_outcomes(passed=2)


def test_sqlite_engine_is_still_refused_on_prefork_and_says_what_to_use(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import pytest

        @pytest.mark.celerybase(worker_pool="prefork")
        def test_one(sqlite_engine, live_worker):
            pass
    """)
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*sqlite_engine: an in-memory SQLite database lives in the test process; a child "
        "would write to its own copy (name your production URL in the "
        "celerybase_database_urls ini key*",
    ])
