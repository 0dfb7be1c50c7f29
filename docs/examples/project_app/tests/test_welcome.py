import pytest
from proj.celery import app
from proj.tasks import welcome
from pytest_celerybase import assert_hooks_called


def test_runs_on_the_project_app(eager_app):
    assert eager_app is app  # reconfigured for the test: eager, in-memory broker
    assert welcome.delay("ada@example.com").get() == "Welcome! ada@example.com"
    assert_hooks_called(welcome, ["before_start", "on_success", "after_return"])


@pytest.mark.celerybase(welcome_subject="Hi")
def test_override_a_setting_for_one_test(eager_app):
    assert welcome.delay("ada@example.com").get() == "Hi ada@example.com"


def test_the_next_test_sees_the_project_settings_again(eager_app):
    assert eager_app.conf.welcome_subject == "Welcome!"
    assert eager_app.conf.task_default_queue == "proj"


def test_and_on_a_real_worker(live_worker):
    assert live_worker.app is app
    assert (
        welcome.delay("ada@example.com").get(timeout=10) == "Welcome! ada@example.com"
    )
