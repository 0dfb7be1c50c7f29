"""A task sent to a broker outside the test is named, with the ini key that fixes it."""

from __future__ import annotations

import pytest

from pytest_celerybase.apps.brokers import is_test_broker
from tests.conftest import RunPytest


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", True),
        ("memory://localhost/", True),
        ("filesystem://localhost/", True),
        ("amqp://guest@localhost//", False),
        ("redis://cache:6379/0", False),
        (None, False),  # Celery's default: amqp on localhost
    ],
)
def test_test_brokers(url: str | None, expected: bool) -> None:
    assert is_test_broker(url) is expected


def test_the_ci_broker_is_a_test_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERYBASE_BROKER_URL", "redis://127.0.0.1:6379/0")
    assert is_test_broker("redis://127.0.0.1:6379/0")
    assert not is_test_broker("redis://127.0.0.1:6379/1")


def test_a_project_task_sent_to_its_real_broker_is_named(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    # Without the celerybase_app ini key the project's app keeps its own broker: the send
    # would fail deep in kombu.  As an error here, the warning stops it first.
    pytester.makepyfile(
        proj_tasks="""
from celery import Celery

proj = Celery("proj", broker="amqp://rabbit.example.invalid:5672//")

@proj.task(name="proj.charge")
def charge():
    return 1
""",
        test_it="""
from proj_tasks import charge

def test_project_task(eager_app):
    charge.delay()

def test_eager_task_is_fine(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y
    assert add.delay(1, 2).get() == 3

def test_worker_task_is_fine(live_worker):
    @live_worker.app.task
    def add(x, y):
        return x + y
    assert add.delay(1, 2).get(timeout=10) == 3
""",
    )
    result = run("-p", "no:randomly", "-W", "error::pytest_celerybase.RealBrokerWarning")
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines(
        [
            "E *pytest_celerybase.errors.RealBrokerWarning: task 'proj.charge' is being sent "
            "to the broker of app 'proj' ('amqp://rabbit.example.invalid:5672//'), which is "
            "not a test broker: no worker of this test receives it, and a broker that cannot "
            "be reached fails in kombu. To run the project's tasks eagerly (eager_app) or on "
            "live_worker, name the app in the celerybase_app ini key (celerybase_app = "
            '"proj.celery:app").',
        ]
    )
