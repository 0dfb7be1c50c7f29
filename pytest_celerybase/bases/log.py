"""``LoggingTask``: one log line per lifecycle hook, with task id, name, status, duration."""

from __future__ import annotations

import logging
import reprlib
from typing import Any, ClassVar

from celery import Task
from celery.utils.log import get_task_logger

from pytest_celerybase.bases._timing import ExecutionClock

__all__ = ["LoggingTask"]

_CLOCK = ExecutionClock()


class LoggingTask(Task):  # type: ignore[misc]
    """Log every lifecycle hook of every execution.

    Each line names the task and its id; outcome lines carry the status and the
    duration since ``before_start`` (timed per task id, so concurrent executions on
    a threaded worker don't overwrite each other's start).  Structured fields are
    also in the record's ``extra``: ``celery_task_id``, ``celery_task_name``,
    ``celery_status`` and ``celery_duration`` (seconds, ``None`` if unknown).

    Class attributes:
        task_logger: where the lines go (a Celery task logger, so the worker's task
            log format applies).
        log_arguments: include ``args``/``kwargs`` (truncated) in the start line;
            off by default because arguments often hold personal data.
    """

    task_logger: ClassVar[logging.Logger] = get_task_logger(__name__)
    log_arguments: bool = False

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Start the execution's clock and log its start."""
        _CLOCK.start(task_id)
        if self.log_arguments:
            self._log(
                logging.INFO,
                task_id,
                "STARTED",
                "started args=%s kwargs=%s",
                reprlib.repr(args),
                reprlib.repr(kwargs),
            )
        else:
            self._log(logging.INFO, task_id, "STARTED", "started")
        super().before_start(task_id, args, kwargs)

    def on_success(
        self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Log the success with its duration (the return value is not logged)."""
        self._log(logging.INFO, task_id, "SUCCESS", "succeeded")
        super().on_success(retval, task_id, args, kwargs)

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Log the failure and its exception (Celery already logs the traceback)."""
        self._log(logging.ERROR, task_id, "FAILURE", "failed: %s", _describe(exc))
        super().on_failure(exc, task_id, args, kwargs, einfo)

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Log the retry and why; this attempt ends here (no ``after_return`` for RETRY)."""
        self._log(logging.WARNING, task_id, "RETRY", "will retry: %s", _describe(exc))
        _CLOCK.stop(task_id)
        super().on_retry(exc, task_id, args, kwargs, einfo)

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Log the final status; the execution's clock is released."""
        self._log(logging.INFO, task_id, status, "returned")
        _CLOCK.stop(task_id)
        super().after_return(status, retval, task_id, args, kwargs, einfo)

    def _log(self, level: int, task_id: str, status: str, message: str, *args: Any) -> None:
        started = _CLOCK.get(task_id)
        duration = None if started is None else started.elapsed()
        shown = "" if duration is None else f" in {duration:.3f}s"
        self.task_logger.log(
            level,
            "Task %s[%s] " + message + " (status=%s%s)",
            self.name,
            task_id,
            *args,
            status,
            shown,
            extra={
                "celery_task_id": task_id,
                "celery_task_name": self.name,
                "celery_status": status,
                "celery_duration": duration,
            },
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
