"""Fixtures configured wrongly: each test shows the error a user gets."""

import pytest


@pytest.mark.celerybase(task_eager_propogates=True)
def test_misspelled_setting(eager_app):
    pass


@pytest.mark.celerybase({"task_eager_propagates": True})
def test_positional_marker_argument(eager_app):
    pass


class TestConfigNotAMapping:
    @pytest.fixture
    def celerybase_config(self):
        return [("task_eager_propagates", True)]

    def test_config_not_a_mapping(self, eager_app):
        pass


@pytest.mark.celerybase(worker_pool="solo", worker_concurrency=2)
def test_solo_pool_with_concurrency(live_worker):
    pass


@pytest.mark.celerybase(celerybase_worker_start_timeout=0)
def test_zero_start_timeout(live_worker):
    pass


@pytest.mark.celerybase(task_always_eager=True)
def test_live_worker_with_eager_settings(live_worker):
    pass


def test_eager_app_and_live_worker(eager_app, live_worker):
    pass


def test_task_the_worker_does_not_know(live_worker):
    from celery import Celery

    billing = Celery(
        "billing", broker="memory://", backend="cache+memory://", set_as_current=False
    )

    @billing.task(name="billing.invoice", shared=False)
    def invoice():
        return "sent"

    invoice.delay().get(timeout=10, interval=0.01)
