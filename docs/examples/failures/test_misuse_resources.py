"""Resource fixtures and reference bases used wrongly: the error a user gets."""

import pytest
import requests
from pytest_celerybase.bases import APIClientTask, DatabaseTask, ResourcePoolTask
from sqlalchemy import text


def test_request_nobody_registered(http_stub):
    requests.get("https://accounts.example.com/api/users/7", timeout=5)


@pytest.mark.http_stub(assert_all_fired=False)
def test_bad_http_stub_marker(http_stub):
    pass


def test_non_json_body(eager_app, http_stub):
    @eager_app.task(base=APIClientTask, bind=True)
    def fetch(self):
        return self.make_api_call("https://accounts.example.com/api/users/7")

    http_stub.get(
        "https://accounts.example.com/api/users/7",
        body="<html>Bad gateway</html>",
        content_type="text/html",
    )
    fetch.delay().get()


def test_no_database_url(eager_app):
    @eager_app.task(base=DatabaseTask, bind=True, name="shop.report")
    def report(self):
        with self.session_scope():
            pass

    report.delay().get()


@pytest.mark.celerybase(celerybase_database_url="sqlite:////nonexistent/dir/shop.db")
def test_unreachable_database_url(eager_app):
    @eager_app.task(base=DatabaseTask, bind=True)
    def report(self):
        with self.session_scope() as session:
            return session.execute(text("SELECT count(*) FROM orders")).scalar_one()

    report.delay().get()


def test_pool_exhausted(eager_app):
    @eager_app.task(
        base=ResourcePoolTask,
        bind=True,
        name="shop.mail",
        pool_size=1,
        pool_acquire_timeout=0.02,
        create_resource=lambda self: object(),
    )
    def mail(self):
        with self.acquire_resource(), self.acquire_resource():
            pass

    mail.delay().get()


def test_no_create_resource(eager_app):
    @eager_app.task(base=ResourcePoolTask, bind=True, name="shop.mail")
    def mail(self):
        with self.acquire_resource():
            pass

    mail.delay().get()


def test_no_such_metric(metrics_sink):
    metrics_sink.last("celery_task_executions_total", status="FAILURE")
