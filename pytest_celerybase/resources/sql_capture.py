"""Capture the SQL an engine executes and assert on the count (no pytest import).

The ``sql_queries`` fixture wraps :class:`SQLQueries` around the ``sqlite_engine`` and
every other engine of the test's database (those ``create_engine()`` returns for the
URLs of ``celerybase_database_urls``); it works on any SQLAlchemy ``Engine``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["CapturedQuery", "QueryWindow", "SQLQueries"]


@dataclass(frozen=True)
class CapturedQuery:
    """One statement sent to the database, with its bound parameters."""

    #: The SQL as sent to the driver, with its placeholders (``?`` for SQLite).
    statement: str
    #: The bound parameters as sent to the driver: a tuple (or dict) for one execution,
    #: a list of them for ``executemany``; ``()`` when there are none.
    parameters: Any
    #: ``True`` when the statement ran once per parameter set.
    executemany: bool = False

    def __str__(self) -> str:
        many = " (executemany)" if self.executemany else ""
        return f"{self.statement}  -- params: {self.parameters!r}{many}"


class QueryWindow:
    """Context manager counting the queries run inside its block; fails on a mismatch.

    Returned by :meth:`~pytest_celerybase.SQLQueries.assert_num_queries`; inside and after
    the block, :attr:`queries` and :attr:`statements` hold what the block ran.
    """

    def __init__(self, owner: SQLQueries, num: int, *, exact: bool = True) -> None:
        self._owner = owner
        self.num = num
        self.exact = exact
        self._start = len(owner)
        self._end: int | None = None

    @property
    def queries(self) -> list[CapturedQuery]:
        """The captured queries of the block, in order."""
        return self._owner.queries[self._start : self._end]

    @property
    def statements(self) -> list[str]:
        """The SQL text of :attr:`queries`."""
        return [query.statement for query in self.queries]

    def __len__(self) -> int:
        return len(self.queries)

    def __enter__(self) -> QueryWindow:
        self._start = len(self._owner)
        self._end = None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        __tracebackhide__ = True
        self._end = len(self._owner)
        if exc_type is not None:
            return  # the block's own error is the one to report
        done = len(self)
        if done == self.num or (not self.exact and done < self.num):
            return
        what = f"{self.num} {_plural(self.num)}"
        expected = what if self.exact else f"at most {what}"
        head = f"Expected to perform {expected} but {done} {_were(done)} done"
        if not done:
            raise AssertionError(head + ".")
        listing = "\n".join(f"  {index}. {query}" for index, query in enumerate(self.queries, 1))
        raise AssertionError(f"{head}:\n{listing}")


class SQLQueries:
    """Every statement ``engine`` (and each engine :meth:`watch` adds) executes from
    creation until :meth:`close`.

    Thread-safe: statements from worker threads are captured too.
    """

    def __init__(self, engine: Engine) -> None:
        #: The engine given at creation (``sqlite_engine`` for the fixture).
        self.engine = engine
        self._lock = threading.Lock()
        self._queries: list[CapturedQuery] = []
        self._engines: list[Engine] = []
        self._listening = True
        self.watch(engine)

    def watch(self, engine: Engine) -> None:
        """Capture what ``engine`` executes too (once per engine; not after :meth:`close`)."""
        from sqlalchemy import event

        with self._lock:
            if not self._listening or any(e is engine for e in self._engines):
                return
            self._engines.append(engine)
        event.listen(engine, "before_cursor_execute", self._capture)

    def _capture(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        with self._lock:
            self._queries.append(CapturedQuery(statement, parameters, executemany))

    @property
    def queries(self) -> list[CapturedQuery]:
        """A copy of the captured queries, oldest first."""
        with self._lock:
            return list(self._queries)

    @property
    def statements(self) -> list[str]:
        """The SQL text of every captured query, oldest first."""
        return [query.statement for query in self.queries]

    def clear(self) -> None:
        """Forget the queries captured so far."""
        with self._lock:
            self._queries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._queries)

    def assert_num_queries(self, num: int, *, exact: bool = True) -> QueryWindow:
        """``with`` block that fails unless it executes exactly ``num`` queries.

        With ``exact=False``, at most ``num``.  The failure lists every statement the
        block ran, with its parameters; the ``as`` target is the
        :class:`~pytest_celerybase.resources.sql_capture.QueryWindow`.
        """
        __tracebackhide__ = True
        _check_count("assert_num_queries", num)
        if not isinstance(exact, bool):
            raise TypeError(
                f"assert_num_queries(exact=...) takes a bool, got {type(exact).__name__}: "
                f"{exact!r}"
            )
        return QueryWindow(self, num, exact=exact)

    def assert_max_num_queries(self, num: int) -> QueryWindow:
        """``with`` block that fails if it executes more than ``num`` queries."""
        __tracebackhide__ = True
        _check_count("assert_max_num_queries", num)
        return QueryWindow(self, num, exact=False)

    def close(self) -> None:
        """Stop capturing (idempotent)."""
        from sqlalchemy import event

        with self._lock:
            self._listening = False
            engines, self._engines = self._engines, []
        for engine in engines:
            event.remove(engine, "before_cursor_execute", self._capture)


def _check_count(method: str, num: Any) -> None:
    """A count of queries is an int >= 0: "2" would compare unequal to every count and
    fail with "expected 2 but 2 were done", True would count as 1."""
    __tracebackhide__ = True
    if isinstance(num, bool) or not isinstance(num, int):
        raise TypeError(
            f"{method}() takes the number of queries as an int >= 0, got "
            f"{type(num).__name__}: {num!r}"
        )
    if num < 0:
        raise ValueError(f"{method}() takes the number of queries as an int >= 0, got {num}")


def _plural(num: int) -> str:
    return "query" if num == 1 else "queries"


def _were(num: int) -> str:
    return "was" if num == 1 else "were"
