"""The resources tests give tasks: a SQLite database and its SQL capture, and bindings.

``bindings`` (what the reference bases use instead of their own engine, Redis, metrics
sink or HTTP session while a fixture binds one), ``sqlite`` (the pool that shares one
connection between threads), ``database`` (a test's SQLite database and its engines),
``redirect`` (``create_engine()`` for the ``celerybase_database_urls`` onto it),
``sql_capture`` (:class:`SQLQueries`, the ``sql_queries`` fixture's value),
``prometheus`` (what ``prometheus_client`` counted during a test) and ``metrics`` (the
``metrics_sink`` fixture's value).  No pytest import, and no SQLAlchemy import here.
"""

from __future__ import annotations

from pytest_celerybase.resources.sql_capture import CapturedQuery, QueryWindow, SQLQueries

__all__ = ["CapturedQuery", "QueryWindow", "SQLQueries"]
