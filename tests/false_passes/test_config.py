"""False-pass catalogue, configuration (issue 20, item 13).

Each test runs a user's test through the plugin with a configuration the plugin used to
accept and ignore (or misread), and shows the one-line error the user now reads instead:
``celerybase_wait_timeout = inf``/``nan``, setting keys in uppercase or with a ``CELERY_``
prefix, misspelled ``celerybase_`` keys, worker settings on ``eager_app``, a query count
that is not an int >= 0, and a task id that is not a str.  The cases marked "passed
before" let the user's test pass before the fix.
"""

from __future__ import annotations

import pytest

from tests.conftest import RunPytest

# -- celerybase_wait_timeout -------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Infinity"])
def test_wait_timeout_must_be_finite(pytester: pytest.Pytester, run: RunPytest, value: str) -> None:
    # Passed before: inf later overflowed in threading's wait, nan waited forever.
    pytester.makepyfile("def test_it():\n    pass\n")
    pytester.makeini(f"[pytest]\ncelerybase_wait_timeout = {value}\n")
    result = run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: celerybase_wait_timeout must be a finite number of seconds, got '{value}'"]
    )
    result.stdout.no_fnmatch_line("*passed*")


# -- setting names -----------------------------------------------------------------------
BAD_KEYS = {
    # passed before: stored as given and never read, so the test ran with the default
    "uppercase": (
        "TASK_EAGER_PROPAGATES=True",
        "eager_app: ValueError: 'TASK_EAGER_PROPAGATES' is not how Celery names the setting: "
        "use 'task_eager_propagates' (Celery's settings are lowercase, without a namespace "
        "prefix); see https://docs.celeryq.dev/*",
    ),
    "django-namespace": (
        "CELERY_TASK_EAGER_PROPAGATES=True",
        "eager_app: ValueError: 'CELERY_TASK_EAGER_PROPAGATES' is not how Celery names the "
        "setting: use 'task_eager_propagates' *",
    ),
    "uppercase-typo": (
        "TASK_EAGER_PROPOGATES=True",
        "eager_app: ValueError: unknown Celery setting 'TASK_EAGER_PROPOGATES' (did you mean "
        "'task_eager_propagates'?); see https://docs.celeryq.dev/*",
    ),
    "old-style": (
        "CELERY_EAGER_PROPAGATES_EXCEPTIONS=True",
        "eager_app: ValueError: 'CELERY_EAGER_PROPAGATES_EXCEPTIONS' is an old-style Celery "
        "setting name: use 'task_eager_propagates' (Celery refuses to mix old and new names, "
        "and the plugin's defaults use the new ones); see https://docs.celeryq.dev/*",
    ),
    "old-style-typo": (
        "CELERY_EAGER_PROPAGATES_EXCEPTION=True",
        "eager_app: ValueError: unknown Celery setting 'CELERY_EAGER_PROPAGATES_EXCEPTION' "
        "(did you mean 'task_eager_propagates'?)*",
    ),
    "celerybase-typo": (
        "celerybase_databse_url='sqlite://'",
        "eager_app: ValueError: unknown pytest-celerybase setting 'celerybase_databse_url' "
        "(did you mean 'celerybase_database_url'?); the celerybase_ settings are: "
        "celerybase_worker_start_timeout, celerybase_worker_stop_timeout, "
        "celerybase_database_urls, celerybase_database_url, celerybase_metrics_sink, "
        "celerybase_redis_url",
    ),
    "celerybase-uppercase": (
        "CELERYBASE_REDIS_URL='redis://localhost'",
        "eager_app: ValueError: unknown pytest-celerybase setting 'CELERYBASE_REDIS_URL' "
        "(did you mean 'celerybase_redis_url'?)*",
    ),
}


@pytest.mark.parametrize("case", BAD_KEYS, ids=list(BAD_KEYS))
def test_setting_keys_are_checked_in_any_case(
    pytester: pytest.Pytester, run: RunPytest, case: str
) -> None:
    setting, error = BAD_KEYS[case]
    pytester.makepyfile(
        f"""
import pytest

@pytest.mark.celerybase({setting})
def test_user(eager_app):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([error])


def test_a_misspelled_worker_option_is_an_error(pytester: pytest.Pytester, run: RunPytest) -> None:
    # Passed before: the stop timeout stayed 10 s, whatever the test asked for.
    pytester.makepyfile(
        """
import pytest

@pytest.mark.celerybase(celerybase_worker_stop_timout=1)
def test_user(live_worker):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "live_worker: ValueError: unknown pytest-celerybase setting "
            "'celerybase_worker_stop_timout' (did you mean 'celerybase_worker_stop_timeout'?); "
            "the celerybase_ settings are: *"
        ]
    )


def test_the_apps_own_settings_pass_through(pytester: pytest.Pytester, run: RunPytest) -> None:
    """Keys that are neither close to a Celery setting nor ``celerybase_`` are the app's."""
    pytester.makepyfile(
        """
import pytest

@pytest.mark.celerybase(PAYMENTS_API_URL="https://pay.invalid", shop_region="eu",
                        celerybase_database_url="sqlite://")
def test_user(eager_app):
    assert eager_app.conf.PAYMENTS_API_URL == "https://pay.invalid"
    assert eager_app.conf.shop_region == "eu"
    assert eager_app.conf.celerybase_database_url == "sqlite://"
"""
    )
    run().assert_outcomes(passed=1)


# -- worker settings on eager_app --------------------------------------------------------
WORKER_ONLY = {
    "worker_concurrency": (
        "@pytest.mark.celerybase(worker_concurrency=4)",
        "worker_concurrency is",
    ),
    "worker_pool": ("@pytest.mark.celerybase(worker_pool='prefork')", "worker_pool is"),
    "worker-option": (
        "@pytest.mark.celerybase(celerybase_worker_stop_timeout=1)",
        "celerybase_worker_stop_timeout is",
    ),
    "several": (
        "@pytest.mark.celerybase(worker_pool='threads', worker_prefetch_multiplier=1)",
        "worker_pool, worker_prefetch_multiplier are",
    ),
}


@pytest.mark.parametrize("case", WORKER_ONLY, ids=list(WORKER_ONLY))
def test_worker_settings_on_eager_app_are_an_error(
    pytester: pytest.Pytester, run: RunPytest, case: str
) -> None:
    # Passed before: eager_app runs no worker, so the setting changed nothing.
    marker, named = WORKER_ONLY[case]
    pytester.makepyfile(
        f"""
import pytest

{marker}
def test_user(eager_app):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"eager_app: ValueError: {named} *worker setting*, which eager_app (no worker) would "
            "ignore; use live_worker to test it, or set it only for the live_worker tests"
        ]
    )


def test_worker_settings_from_the_config_fixture_too(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.fixture
def celerybase_config():
    return {"worker_max_tasks_per_child": 1}

def test_eager(eager_app):
    pass

def test_worker(live_worker):
    assert live_worker.app.conf.worker_max_tasks_per_child == 1
"""
    )
    result = run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["eager_app: ValueError: worker_max_tasks_per_child is a worker setting, *"]
    )


# -- query counts ------------------------------------------------------------------------
QUERY_COUNTS = {
    # before: 'Expected to perform 2 queries but 2 were done'
    'assert_num_queries("2")': "TypeError: assert_num_queries() takes the number of queries "
    "as an int >= 0, got str: '2'",
    "assert_num_queries(-1)": "ValueError: assert_num_queries() takes the number of queries "
    "as an int >= 0, got -1",
    # passed before: True == 1
    "assert_num_queries(True)": "TypeError: assert_num_queries() takes the number of queries "
    "as an int >= 0, got bool: True",
    "assert_num_queries(2.0)": "TypeError: assert_num_queries() takes the number of queries "
    "as an int >= 0, got float: 2.0",
    # before: a raw "'<' not supported between instances of 'int' and 'NoneType'"
    "assert_max_num_queries(None)": "TypeError: assert_max_num_queries() takes the number of "
    "queries as an int >= 0, got NoneType: None",
    "assert_num_queries(1, exact=1)": "TypeError: assert_num_queries(exact=...) takes a bool, "
    "got int: 1",
}


@pytest.mark.parametrize("call", QUERY_COUNTS, ids=list(QUERY_COUNTS))
def test_query_counts_are_ints(pytester: pytest.Pytester, run: RunPytest, call: str) -> None:
    pytester.makepyfile(
        f"""
from sqlalchemy import text

def test_user(sql_queries, sqlite_engine):
    with sql_queries.{call}:
        with sqlite_engine.connect() as conn:
            conn.execute(text("select 1"))
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f">       with sql_queries.{call}:", f"E       {QUERY_COUNTS[call]}"]
    )
    result.stdout.no_fnmatch_line("*sql_capture.py*")


# -- task ids ----------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["hook_calls(task_id=42)", "timeline(task_id=42)"])
def test_a_task_id_is_a_str(pytester: pytest.Pytester, run: RunPytest, call: str) -> None:
    # Passed before: an int matches no execution, so the list was empty.
    pytester.makepyfile(
        f"""
from pytest_celerybase import hook_calls, timeline

def test_user(eager_app):
    @eager_app.task
    def charge():
        pass

    charge.delay()
    assert {call} == []
"""
    )
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E       TypeError: task_id must be a str, got int 42"])


def test_the_celerybase_settings_listed_are_those_the_package_reads() -> None:
    """The list the check accepts is the list the bases and the worker read: a key added
    to a base without adding it here would be refused, one dropped would be accepted."""
    import re
    from pathlib import Path

    import pytest_celerybase
    from pytest_celerybase._settings import DATABASE_URLS
    from pytest_celerybase.apps.config_check import BASES_SETTINGS, MARKER_KEYS, PLUGIN_SETTINGS
    from pytest_celerybase.worker.options import OPTION_KEYS

    package = Path(pytest_celerybase.__file__).parent
    reads = re.compile(r"""(?:conf\.get\(|setting\(\s*self,\s*"\w+",)\s*"(celerybase_\w+)\"""")
    read = {key for path in package.rglob("*.py") for key in reads.findall(path.read_text())}
    assert read == set(BASES_SETTINGS)
    assert MARKER_KEYS == (DATABASE_URLS,)
    assert set(PLUGIN_SETTINGS) == read | set(OPTION_KEYS) | set(MARKER_KEYS)
    assert all(key.startswith("celerybase_worker_") for key in OPTION_KEYS)
