"""http_stub answers your own retrying requests.Session: each attempt is a call."""

import pytest
import requests
from celery import Task, shared_task
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

URL = "https://api.example.com/users/1"


class APIClientTask(Task):
    """A base as guides write it: one session, urllib3 retries on 503."""

    _session = None

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
            retry = Retry(total=3, status_forcelist=[503], backoff_factor=1)
            self._session.mount("https://", HTTPAdapter(max_retries=retry))
        return self._session


@shared_task(base=APIClientTask, bind=True)
def fetch_user(self, url):
    response = self.session.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


def test_a_503_is_retried_and_each_attempt_is_a_call(eager_app, http_stub):
    http_stub.get(URL, status=503)
    http_stub.get(URL, status=503)
    http_stub.get(URL, json={"id": 1})

    assert fetch_user.delay(URL).get() == {"id": 1}

    # No sleeping (backoff_factor=1 would wait 2 s), three requests:
    assert [call.response.status_code for call in http_stub.calls] == [503, 503, 200]


def test_retries_run_out(eager_app, http_stub):
    http_stub.get(URL, status=503)  # answers every attempt

    result = fetch_user.delay(URL)

    assert isinstance(result.result, requests.exceptions.RetryError)
    assert len(http_stub.calls) == 4  # the first attempt and total=3 retries


@pytest.mark.http_stub(assert_all_requests_are_fired=False)
def test_without_status_forcelist_a_503_is_one_request(http_stub):
    http_stub.get(URL, status=503)
    http_stub.get(URL, json={"id": 1})

    assert requests.get(URL, timeout=5).status_code == 503
    assert len(http_stub.calls) == 1
