"""How a test's configuration is read, merged, checked and reported (pytest glue).

One path for every fixture: the ``celerybase_config`` fixture, then the
``@pytest.mark.celerybase(...)`` markers (closest wins), checked against Celery's setting
names; the project app named by the ``celerybase_app`` ini key; the wait timeout.  A
mistake in any of them fails the test with one line naming the fixture, the error and
what is valid (:func:`fail_on_bad_config`), never a traceback into the plugin.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import pytest

from pytest_celerybase.recorder.inflight import DEFAULT_WAIT_TIMEOUT

if TYPE_CHECKING:
    from celery import Celery

    from pytest_celerybase.worker.options import WorkerOptions

__all__ = [
    "CELERYBASE_MARKER",
    "DATABASE_URLS",
    "HTTP_STUB_MARKER",
    "PROMETHEUS_REGISTRIES",
    "HttpStubOptions",
    "check_project_app",
    "check_url_globs",
    "database_urls",
    "eager_app_setup",
    "fail_on_bad_config",
    "http_stub_options",
    "ini_database_urls",
    "live_worker_setup",
    "prometheus_registries",
    "wait_timeout",
]

#: The ini key (and marker key) listing the database URLs a test redirects to SQLite.
DATABASE_URLS = "celerybase_database_urls"
#: The ini key naming ``prometheus_client`` registries ``metrics_sink`` reads, besides
#: the default one.
PROMETHEUS_REGISTRIES = "celerybase_prometheus_registries"

#: The marker lines ``pytest_configure`` registers.
CELERYBASE_MARKER = (
    "celerybase(**settings): Celery settings for this test's eager_app/live_worker, "
    "merged over the celerybase_config fixture (closest marker wins)."
)
HTTP_STUB_MARKER = (
    "http_stub(*, assert_all_requests_are_fired=True): options of the http_stub fixture; "
    "assert_all_requests_are_fired=False lets registered responses go unrequested."
)


@contextlib.contextmanager
def fail_on_bad_config(fixture: str) -> Iterator[None]:
    """Report a ``TypeError``/``ValueError`` from the user's configuration as one line.

    ``<fixture>: ValueError: unknown Celery setting 'x' (did you mean 'y'?) ...``: the
    mistake is the user's, so no traceback into the plugin and no chained exception.
    """
    problem = ""
    try:
        yield
    except (TypeError, ValueError) as exc:
        problem = f"{fixture}: {type(exc).__name__}: {exc}"
    if problem:
        raise pytest.fail.Exception(problem, pytrace=False) from None


def wait_timeout(config: pytest.Config) -> float:
    """The ``celerybase_wait_timeout`` ini value in seconds (a usage error if invalid)."""
    raw = config.getini("celerybase_wait_timeout")
    if raw in ("", None):
        return DEFAULT_WAIT_TIMEOUT
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"celerybase_wait_timeout must be a number of seconds, got {raw!r}"
        ) from None
    if not math.isfinite(value):
        # inf overflows threading's timeout later; nan compares false and waits forever.
        raise pytest.UsageError(
            f"celerybase_wait_timeout must be a finite number of seconds, got {raw!r}"
        )
    if value < 0:
        raise pytest.UsageError(f"celerybase_wait_timeout must be >= 0, got {raw!r}")
    return value


def check_url_globs(globs: Any, where: str) -> tuple[str, ...]:
    """``globs`` as a tuple of URL globs, or ``TypeError``/``ValueError`` naming the bad
    entry, ``where`` it comes from and what is valid."""
    if isinstance(globs, str) or not isinstance(globs, (list, tuple)):
        raise TypeError(
            f"{where} must be a list of URL globs such as ['postgresql://*'], "
            f"got {type(globs).__name__} {globs!r}"
        )
    for glob in globs:
        if not isinstance(glob, str) or "://" not in glob:
            raise ValueError(
                f"{where}: each entry must be a URL glob such as 'postgresql://*' or "
                f"'postgresql+psycopg://*@orders-db/*', got {glob!r}"
            )
    return tuple(globs)


def ini_database_urls(config: pytest.Config) -> tuple[str, ...]:
    """The ``celerybase_database_urls`` ini lines (a usage error if one is not a glob)."""
    try:
        return check_url_globs(list(config.getini(DATABASE_URLS)), DATABASE_URLS)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None


def database_urls(item: pytest.Item, ini: tuple[str, ...]) -> tuple[str, ...]:
    """The URL globs redirected in ``item``: the closest marker's
    ``celerybase_database_urls``, else the ini's (``ini``).  A bad marker value fails."""
    with fail_on_bad_config(DATABASE_URLS):
        for marker in item.iter_markers("celerybase"):  # closest first
            if DATABASE_URLS in marker.kwargs:
                where = f"@pytest.mark.celerybase({DATABASE_URLS}=...)"
                return check_url_globs(marker.kwargs[DATABASE_URLS], where)
        return ini
    raise AssertionError("unreachable")  # pragma: no cover - fail_on_bad_config raised


def prometheus_registries(config: pytest.Config) -> list[Any]:
    """The registries ``metrics_sink`` reads: ``prometheus_client.REGISTRY`` (when
    installed) and each ``celerybase_prometheus_registries`` line's ``module:NAME``.

    Fails the fixture naming the line and what is valid when one cannot be loaded.
    """
    import importlib.util

    lines = [line.strip() for line in config.getini(PROMETHEUS_REGISTRIES) if line.strip()]
    with fail_on_bad_config("metrics_sink"):
        if importlib.util.find_spec("prometheus_client") is None:
            if lines:
                raise ValueError(
                    f"{PROMETHEUS_REGISTRIES} names {lines} but prometheus-client is not "
                    "installed: pip install 'pytest-celerybase[prometheus]'"
                )
            return []
        import prometheus_client

        from pytest_celerybase.resources.prometheus import load_registry

        found = [prometheus_client.REGISTRY]
        for line in lines:
            registry = load_registry(line)
            if not any(registry is known for known in found):
                found.append(registry)
        return found
    raise AssertionError("unreachable")  # pragma: no cover - fail_on_bad_config raised


def _marker_kwargs(node: pytest.Item, name: str, what: str, example: str) -> dict[str, Any]:
    """The keyword arguments of every ``name`` marker on ``node``, the closest winning."""
    kwargs: dict[str, Any] = {}
    # iter_markers yields the closest marker first: it must win, so it goes last.
    for marker in reversed(list(node.iter_markers(name))):
        if marker.args:
            raise TypeError(
                f"@pytest.mark.{name} takes {what} only, got positional "
                f"{marker.args!r}; e.g. {example}"
            )
        kwargs.update(marker.kwargs)
    return kwargs


def _celery_settings(request: pytest.FixtureRequest, base: Any) -> dict[str, Any]:
    from pytest_celerybase.apps.config_check import validate_config

    settings = validate_config(base)
    marked = _marker_kwargs(
        request.node,
        "celerybase",
        "Celery settings as keyword arguments",
        "@pytest.mark.celerybase(task_eager_propagates=True)",
    )
    settings.update(validate_config(marked))
    return settings


def check_project_app(config: pytest.Config) -> None:
    """Load the app the ``celerybase_app`` ini key names once, before any test: a wrong
    value is one usage error for the run, not one error per test."""
    from pytest_celerybase.apps.isolated import load_app

    path = config.getini("celerybase_app")
    if path:
        try:
            load_app(path)
        except (TypeError, ValueError) as exc:
            raise pytest.UsageError(str(exc)) from None


def _project_app(request: pytest.FixtureRequest) -> Celery | None:
    from pytest_celerybase.apps.isolated import load_app

    path = request.config.getini("celerybase_app")
    return load_app(path) if path else None


def eager_app_setup(
    request: pytest.FixtureRequest, config: Any
) -> tuple[dict[str, Any], Celery | None]:
    """``eager_app``'s Celery settings and the project app (``None``: a fresh app)."""
    from pytest_celerybase.apps.config_check import worker_only

    with fail_on_bad_config("eager_app"):
        settings = _celery_settings(request, config)
        ignored = worker_only(settings)
        if ignored:
            # eager_app runs no worker: such a setting would change nothing in the test.
            what = "is a worker setting" if len(ignored) == 1 else "are worker settings"
            raise ValueError(
                f"{', '.join(ignored)} {what}, which eager_app (no worker) would ignore; "
                "use live_worker to test it, or set it only for the live_worker tests"
            )
        return settings, _project_app(request)
    raise AssertionError("unreachable")  # pragma: no cover - fail_on_bad_config raised


def live_worker_setup(
    request: pytest.FixtureRequest, config: Any
) -> tuple[dict[str, Any], WorkerOptions, Celery | None]:
    """``live_worker``'s Celery settings, worker options and project app."""
    from pytest_celerybase.worker.options import worker_options

    with fail_on_bad_config("live_worker"):
        if "eager_app" in request.fixturenames:
            raise ValueError(
                "eager_app and live_worker cannot be used in the same test: each makes its "
                "own app the current one. Use live_worker.app (not eager) or eager_app "
                "(eager), one per test."
            )
        settings, options = worker_options(_celery_settings(request, config))
        if options.pool == "prefork":
            _refuse_doubles_with_prefork(request)
        return settings, options, _project_app(request)
    raise AssertionError("unreachable")  # pragma: no cover - fail_on_bad_config raised


#: The in-memory doubles and why a prefork worker's children cannot share them.
PREFORK_DOUBLES: dict[str, str] = {
    "sqlite_engine": "an in-memory SQLite database lives in the test process; a child "
    "would write to its own copy (name your production URL in the celerybase_database_urls "
    "ini key, e.g. 'postgresql://*': create_engine() then gives the test and the children "
    "one file database in the worker's temp dir)",
    "sql_queries": "it captures statements executed in the test process only",
    "fake_redis": "fakeredis keeps its data in the test process; a child would cache "
    "into its own copy (use a real Redis: celerybase_redis_url)",
    "http_stub": "responses patches requests in the test process; a child's calls and "
    "the 'registered but never called' check would not reach the test",
}


def _refuse_doubles_with_prefork(request: pytest.FixtureRequest) -> None:
    used = [name for name in PREFORK_DOUBLES if name in request.fixturenames]
    if used:
        reasons = "; ".join(f"{name}: {PREFORK_DOUBLES[name]}" for name in used)
        raise ValueError(
            f"worker_pool='prefork' runs tasks in child processes, which cannot share "
            f"{', '.join(used)} with the test: {reasons}. Use the solo or threads pool "
            "with these fixtures, or real resources with prefork."
        )


@dataclass(frozen=True, kw_only=True)
class HttpStubOptions:
    """Options of the ``http_stub`` fixture, from ``@pytest.mark.http_stub(...)``."""

    assert_all_requests_are_fired: bool = True


def http_stub_options(node: pytest.Item) -> HttpStubOptions:
    """The ``http_stub`` marker's options for ``node`` (closest marker wins)."""
    with fail_on_bad_config("http_stub"):
        kwargs = _marker_kwargs(
            node,
            "http_stub",
            "keyword arguments",
            "@pytest.mark.http_stub(assert_all_requests_are_fired=False)",
        )
        valid = [f.name for f in fields(HttpStubOptions)]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(
                f"@pytest.mark.http_stub got {unknown}; valid keyword arguments: "
                f"{', '.join(valid)}"
            )
        return HttpStubOptions(**_checked_bools(kwargs))
    raise AssertionError("unreachable")  # pragma: no cover - fail_on_bad_config raised


def _checked_bools(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in kwargs.items():
        if not isinstance(value, bool):
            raise TypeError(f"@pytest.mark.http_stub({key}=...) must be a bool, got {value!r}")
    return dict(kwargs)
