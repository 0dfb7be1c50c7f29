"""LoggingTask: one line per hook with task id, name, status and duration."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import LoggingTask

LOGGER = "pytest_celerybase.bases.log"


@pytest.fixture
def greet(eager_app: Any) -> Any:
    @eager_app.task(base=LoggingTask, bind=True, max_retries=1)
    def greet(self: Any, name: str) -> str:
        if name == "":
            raise ValueError("empty name")
        if name == "later" and not self.request.retries:
            raise self.retry(exc=ConnectionError("mail server busy"), countdown=0)
        return f"hello {name}"

    return greet


class Captured(logging.Handler):
    """The task logger's records, whatever the global logging config.

    A Celery worker set up in the same process (celery.contrib.testing) configures
    ``celery.task`` not to propagate, so root-level capture (caplog) would miss them.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@pytest.fixture
def caplog() -> Iterator[Captured]:
    """Shadows pytest's caplog in this module: records of the task logger only."""
    handler = Captured()
    logger = LoggingTask.task_logger
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not the attribute: it clears level caches
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _lines(caplog: Captured) -> list[tuple[int, str, Any, str]]:
    return [
        (r.levelno, r.celery_status, r.celery_duration, r.celery_task_id)
        for r in caplog.records
        if r.name == LOGGER
    ]


def test_success_logs_each_hook(greet: Any, caplog: Captured) -> None:
    result = greet.delay("zoe")  # not hex: can't turn up inside a task id

    assert result.get() == "hello zoe"
    assert_hooks_called(greet, ["before_start", "on_success", "after_return"])
    lines = _lines(caplog)
    assert [(level, status) for level, status, _, _ in lines] == [
        (logging.INFO, "STARTED"),
        (logging.INFO, "SUCCESS"),
        (logging.INFO, "SUCCESS"),
    ]
    assert {task_id for *_, task_id in lines} == {result.id}
    assert lines[0][2] is not None and lines[2][2] >= lines[1][2] >= 0
    assert f"Task {greet.name}[{result.id}] succeeded (status=SUCCESS in " in caplog.text
    assert "zoe" not in caplog.text  # arguments are not logged by default


def test_failure_logs_an_error_with_the_exception(greet: Any, caplog: Captured) -> None:
    assert greet.delay("").failed()

    assert_hooks_called(greet, ["before_start", "on_failure", "after_return"])
    assert [(lvl, status) for lvl, status, _, _ in _lines(caplog)] == [
        (logging.INFO, "STARTED"),
        (logging.ERROR, "FAILURE"),
        (logging.INFO, "FAILURE"),
    ]
    assert "failed: ValueError: empty name" in caplog.text


def test_retry_logs_a_warning_per_attempt(greet: Any, caplog: Captured) -> None:
    assert greet.delay("later").get() == "hello later"

    assert_hooks_called(
        greet, ["before_start", "on_retry", "before_start", "on_success", "after_return"]
    )
    assert [status for _, status, _, _ in _lines(caplog)] == [
        "STARTED",
        "RETRY",
        "STARTED",
        "SUCCESS",
        "SUCCESS",
    ]
    assert "will retry: ConnectionError: mail server busy" in caplog.text


def test_arguments_are_logged_on_request(eager_app: Any, caplog: Captured) -> None:
    @eager_app.task(base=LoggingTask, log_arguments=True)
    def echo(word: str, *, times: int) -> str:
        return word * times

    echo.delay("ab", times=2)
    assert "started args=['ab'] kwargs={'times': 2}" in caplog.text


def test_concurrent_executions_are_timed_separately(eager_app: Any, caplog: Captured) -> None:
    release = threading.Event()
    started = threading.Barrier(5, timeout=10)

    @eager_app.task(base=LoggingTask)
    def wait(i: int) -> int:
        started.wait()
        release.wait(10)
        return i

    # Celery builds @app.task tasks lazily, and not thread-safely: finish that first.
    eager_app.finalize()
    threads = [threading.Thread(target=wait.apply, args=((i,),)) for i in range(5)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)

    finished = [r for r in caplog.records if r.name == LOGGER and r.msg.endswith("(status=%s%s)")]
    by_id: dict[str, list[str]] = {}
    for record in finished:
        by_id.setdefault(record.celery_task_id, []).append(record.celery_status)
    assert len(by_id) == 5
    assert all(statuses == ["STARTED", "SUCCESS", "SUCCESS"] for statuses in by_id.values())
    assert all(r.celery_duration is not None for r in finished if r.celery_status == "SUCCESS")
