"""The CRM client: the base's own retrying session answers through http_stub."""

import pytest
import requests
from billing.tasks import fetch_customer, render_invoice

CUSTOMER = "https://crm.example.com/customers/7"


def test_a_503_is_retried(eager_app, http_stub):
    http_stub.get(CUSTOMER, status=503)
    http_stub.get(CUSTOMER, json={"id": 7, "name": "Ada"})

    assert fetch_customer.delay(7).get() == {"id": 7, "name": "Ada"}
    assert [call.response.status_code for call in http_stub.calls] == [503, 200]


def test_a_404_fails_the_task(eager_app, http_stub):
    http_stub.get(CUSTOMER, status=404)

    result = fetch_customer.delay(7)

    assert result.failed()
    assert isinstance(result.result, requests.HTTPError)
    assert len(http_stub.calls) == 1  # 404 is not in status_forcelist


def test_the_session_is_the_tests_own(eager_app, http_stub):
    http_stub.get(CUSTOMER, json={"id": 7})
    fetch_customer.delay(7).get()
    session = fetch_customer._session

    # Made lazily by this test: closed and dropped when it ends (see the next test).
    assert isinstance(session, requests.Session)


def test_no_session_is_left_from_the_last_test(eager_app):
    assert fetch_customer._session is None


@pytest.mark.parametrize("invoice", [1, 2])
def test_the_pool_is_the_processs(eager_app, invoice):
    # The pool was made when the task was (at import): it is shared by every test, as in
    # production, and what a test puts in it stays: its contents are yours to manage.
    assert render_invoice.delay(invoice).get() == 1
    assert render_invoice._pool.qsize() == 1
