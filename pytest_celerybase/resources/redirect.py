"""``create_engine()`` for the URLs a test names, redirected to its SQLite database.

The ``celerybase_database_urls`` ini key (or the marker key of the same name) lists URL
globs.  While a :class:`DatabaseRedirect` is started (the plugin starts one per test),
``sqlalchemy.create_engine(url, **kwargs)`` for a matching URL returns an engine on the
test's :class:`~pytest_celerybase.resources.database.TestDatabase`, however the code under
test got hold of ``create_engine`` (imported at module level or inside a function):

* ``create_engine`` turns its argument into a URL with ``make_url``, looked up on its own
  module's ``_url`` at every call.  That reference, and only that one (other callers of
  ``make_url`` are left alone), is swapped for a stand-in that answers a matching URL
  with ``sqlite://?plugin=celerybase_database``;
* SQLAlchemy then loads that plugin (its public ``CreateEnginePlugin`` hook), which drops
  the options SQLite does not take (``pool_size``, ``max_overflow``, a driver's
  ``connect_args``...) with one warning listing them, and hands ``create_engine`` a pool
  on the test database;
* an engine made before the test (at import) for a matching URL cannot reach the real
  database during the test either: ``Engine.raw_connection`` refuses it with
  :class:`~pytest_celerybase.errors.UnredirectedEngineError`.

Every change is a :mod:`pytest_celerybase._patching` patch owned by the redirect and
undone by :meth:`DatabaseRedirect.stop`.  A prefork worker's children inherit the
redirect when they are forked, and reach the same data through a file (see
:meth:`TestDatabase.use_directory`).
"""

from __future__ import annotations

import fnmatch
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import plugins
from sqlalchemy.engine import CreateEnginePlugin, Engine, create
from sqlalchemy.engine import url as sa_url

from pytest_celerybase import _patching
from pytest_celerybase.resources.database import TestDatabase, making_engine

__all__ = ["PLUGIN", "DatabaseRedirect", "RedirectPlugin"]

#: The name SQLAlchemy knows the redirect's engine plugin by.
PLUGIN = "celerybase_database"
# Options the redirected engine keeps: those of the engine itself and of SQLite's
# dialect that change nothing about where the data goes (everything else is dropped).
_ENGINE_KEEPS = frozenset({"echo", "hide_parameters", "logging_name", "execution_options",
                           "query_cache_size", "future", "enable_from_linting",
                           "json_serializer", "json_deserializer", "label_length",
                           "max_identifier_length", "insertmanyvalues_page_size",
                           "use_insertmanyvalues", "_initialize", "_coerce_config"})  # fmt: skip

_handoff = threading.local()  # (URL asked for, redirect): from make_url to the plugin


class _URLModule:
    """``sqlalchemy.engine.url`` as ``create_engine`` sees it during a test."""

    def __init__(self, redirect: DatabaseRedirect) -> None:
        self._redirect = redirect

    def __getattr__(self, name: str) -> Any:
        return getattr(sa_url, name)

    def make_url(self, name_or_url: Any) -> Any:
        """SQLAlchemy's ``make_url``, but a matching URL becomes the plugin's."""
        url = sa_url.make_url(name_or_url)
        if making_engine() or not self._redirect.matches(url):
            return url
        _handoff.pending = (url, self._redirect)
        return sa_url.URL.create("sqlite", query={"plugin": PLUGIN})


class RedirectPlugin(CreateEnginePlugin):
    """The engine plugin that puts a redirected ``create_engine`` on the test database."""

    def __init__(self, url: Any, kwargs: dict[str, Any]) -> None:
        pending = getattr(_handoff, "pending", None)
        _handoff.pending = None
        if pending is None:
            raise RuntimeError(
                f"the {PLUGIN!r} engine plugin is pytest-celerybase's: it only serves "
                "URLs matched by celerybase_database_urls during a test"
            )
        original, redirect = pending
        shown = original.render_as_string(hide_password=True)
        if kwargs.pop("_is_async", False):
            raise TypeError(
                f"celerybase_database_urls: {shown!r} is matched, but async engines "
                "(create_async_engine) are not redirected; leave this URL out of the globs"
            )
        dropped = sorted(name for name in kwargs if name not in _ENGINE_KEEPS)
        for name in dropped:
            del kwargs[name]
        kwargs["pool"] = redirect.database.pool()
        super().__init__(url, kwargs)
        self.redirect = redirect
        if dropped:
            _warn_at_caller(
                f"celerybase_database_urls: create_engine({shown!r}) runs on the test's "
                f"SQLite database; options SQLite does not take were dropped: "
                f"{', '.join(dropped)}"
            )

    def update_url(self, url: Any) -> Any:
        """The URL as SQLAlchemy left it (``sqlite://``, the plugin's name removed)."""
        return url

    def engine_created(self, engine: Engine) -> None:
        """Count the new engine as the test database's (``sql_queries`` follows it)."""
        self.redirect.database.register(engine)


def _warn_at_caller(message: str) -> None:
    """Warn at the line that called ``create_engine`` (outside SQLAlchemy and here)."""
    from pytest_celerybase.errors import CelerybaseWarning

    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        ("sqlalchemy.", __name__)
    ):
        frame = frame.f_back
    warnings.warn_explicit(
        message,
        CelerybaseWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__"),
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )


class DatabaseRedirect:
    """``create_engine()`` for URLs matching ``globs`` goes to ``database`` while started."""

    def __init__(self, globs: Sequence[str], database: TestDatabase) -> None:
        self.globs = tuple(globs)
        self.database = database
        self._matches: dict[Any, bool] = {}

    def __repr__(self) -> str:
        return f"<DatabaseRedirect {list(self.globs)} -> {self.database!r}>"

    def matches(self, url: Any) -> bool:
        """Whether ``url`` (a SQLAlchemy URL) matches one of the globs."""
        known = self._matches.get(url)
        if known is None:
            text = url.render_as_string(hide_password=False)
            known = self._matches[url] = any(fnmatch.fnmatchcase(text, g) for g in self.globs)
        return known

    def start(self) -> None:
        """Redirect from now on (see the module doc)."""
        if PLUGIN not in plugins.impls:
            plugins.register(PLUGIN, __name__, RedirectPlugin.__name__)
        _patching.apply(create, "_url", _URLModule(self), owner=self)
        original = Engine.raw_connection
        redirect = self

        def raw_connection(engine: Engine) -> Any:
            if not redirect.database.owns(engine) and redirect.matches(engine.url):
                from pytest_celerybase.errors import UnredirectedEngineError

                raise UnredirectedEngineError(
                    f"celerybase_database_urls: this engine on "
                    f"{engine.url.render_as_string(hide_password=True)!r} was made before "
                    "the test (at import?), so it is not redirected and would reach the "
                    f"real database (globs: {list(redirect.globs)}). Make the engine when "
                    "it is first needed (a lazy property, a fixture), or mark the test "
                    "with @pytest.mark.celerybase(celerybase_database_urls=[]) to let it "
                    "through"
                )
            return original(engine)

        _patching.apply(Engine, "raw_connection", raw_connection, owner=self)

    def stop(self) -> None:
        """Undo :meth:`start` (idempotent); the database is its owner's to close."""
        _patching.undo_all(self)
