"""Every exception and warning pytest-celerybase raises for users to catch (no pytest).

Also importable from :mod:`pytest_celerybase` itself.  Celery's own exception classes are
the bases where one fits (:class:`UnregisteredTaskError` is a ``NotRegistered``), so an
existing ``except`` clause still matches.
"""

from __future__ import annotations

from celery.exceptions import NotRegistered

__all__ = [
    "CelerybaseWarning",
    "HeldMessageError",
    "NoActiveRecorderError",
    "NoSentTasksError",
    "RealBrokerWarning",
    "RunawayTasksError",
    "UnredirectedEngineError",
    "UnregisteredSentTaskError",
    "UnregisteredTaskError",
    "WorkerStartError",
    "WorkerStopError",
]


class CelerybaseWarning(UserWarning):
    """A test's records were affected by something outside it (see the message)."""


class RealBrokerWarning(CelerybaseWarning):
    """A test sends a task to a broker outside the test (a project app the plugin was not
    given: the ``celerybase_app`` ini key)."""


# -- recording ---------------------------------------------------------------------------
class NoActiveRecorderError(RuntimeError):
    """Hook records were asked for outside a recording test."""


# -- sent tasks --------------------------------------------------------------------------
class NoSentTasksError(RuntimeError):
    """Sent tasks were asked for while nothing captures them (no ``sent_tasks`` fixture)."""


class RunawayTasksError(RuntimeError):
    """``sent_tasks.run()`` ran ``max_tasks`` messages and more are still held."""


class UnregisteredSentTaskError(LookupError):
    """A held message names a task its app does not have (a worker discards it)."""


class HeldMessageError(RuntimeError):
    """``result.get()`` of a message that is held and has not run: it would never end."""


# -- resources ---------------------------------------------------------------------------
class UnredirectedEngineError(RuntimeError):
    """An engine made before the test for a URL in ``celerybase_database_urls`` was used
    during the test (it would reach the real database)."""


# -- the live worker ---------------------------------------------------------------------
class WorkerStartError(RuntimeError):
    """The live worker did not become ready (broker unreachable, bad pool, timeout)."""


class WorkerStopError(RuntimeError):
    """The live worker thread did not finish within its stop timeout."""


class UnregisteredTaskError(NotRegistered):  # type: ignore[misc]
    """A task message reached the live worker but its app has no such task.

    A :class:`~celery.exceptions.NotRegistered`, so existing ``except``/``pytest.raises``
    clauses still match; its message explains where the task is and how to fix it.
    """

    def __str__(self) -> str:
        # KeyError would show the repr of the message (quoted, escaped newlines).
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"
