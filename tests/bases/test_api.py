"""APIClientTask: retrying session per process, timeouts, clear errors; no real sleeping."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import responses
import urllib3

from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import APIClientTask, APIResponseError
from pytest_celerybase.bases.api import _capped_retry_class
from pytest_celerybase.resources import bindings

URL = "https://api.example.com/users/7"
SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]


@pytest.fixture
def fetch(eager_app: Any) -> Any:
    @eager_app.task(base=APIClientTask, bind=True)
    def fetch(self: Any, url: str = URL, method: str = "GET") -> Any:
        return self.make_api_call(url, method=method)

    return fetch


def test_returns_decoded_json(fetch: Any, http_stub: responses.RequestsMock) -> None:
    http_stub.get(URL, json={"id": 7, "name": "Ada"})

    assert fetch.delay().get() == {"id": 7, "name": "Ada"}
    assert_hooks_called(fetch, SUCCESS)


def test_every_call_has_a_timeout(fetch: Any, http_stub: responses.RequestsMock) -> None:
    http_stub.get(URL, json={})
    fetch.delay()
    assert http_stub.calls[0].request.req_kwargs["timeout"] == (3.05, 30.0)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The ``time.sleep`` calls of the test that lasted 0.1 s or more (urllib3's backoff
    sleeps through ``time.sleep``)."""
    calls: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds >= 0.1:
            calls.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return calls


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_transient_statuses_without_sleeping(
    fetch: Any, http_stub: responses.RequestsMock, status: int, slept: list[float]
) -> None:
    http_stub.get(URL, status=status)
    http_stub.get(URL, status=status)
    http_stub.get(URL, json={"id": 7})

    assert fetch.delay().get() == {"id": 7}
    # Real backoff (factor 0.5) would sleep 1 s before the second retry.
    assert slept == []
    assert len(http_stub.calls) == 3
    assert_hooks_called(fetch, SUCCESS)


def test_gives_up_after_the_retries_with_the_status(
    fetch: Any, http_stub: responses.RequestsMock, slept: list[float]
) -> None:
    http_stub.get(URL, status=503)

    result = fetch.delay()
    assert slept == []  # real backoff: 0 + 1 + 2 s

    assert result.failed()
    assert isinstance(result.result, requests.HTTPError)
    assert "503 Server Error" in str(result.result) and URL in str(result.result)
    assert len(http_stub.calls) == 4  # the first try and api_retries=3 retries
    assert_hooks_called(fetch, FAILURE)


def test_client_errors_are_not_retried(fetch: Any, http_stub: responses.RequestsMock) -> None:
    http_stub.get(URL, status=404, json={"detail": "no such user"})

    result = fetch.delay()

    assert isinstance(result.result, requests.HTTPError)
    assert "404 Client Error" in str(result.result)
    assert len(http_stub.calls) == 1


def test_post_is_not_retried_by_default(fetch: Any, http_stub: responses.RequestsMock) -> None:
    # A retried POST may apply twice: only idempotent methods are retried.
    http_stub.post(URL, status=503)

    assert fetch.delay(URL, "POST").failed()
    assert len(http_stub.calls) == 1


def test_non_json_body_is_a_clear_error(fetch: Any, http_stub: responses.RequestsMock) -> None:
    http_stub.get(URL, body="<html>Bad gateway</html>", content_type="text/html")

    result = fetch.delay()

    assert result.failed()
    assert isinstance(result.result, APIResponseError)
    message = str(result.result)
    assert f"GET {URL} returned 200 with 'text/html'" in message
    assert "not JSON: '<html>Bad gateway</html>'" in message
    assert_hooks_called(fetch, FAILURE)


def test_empty_body_is_none(fetch: Any, http_stub: responses.RequestsMock) -> None:
    http_stub.delete(URL, status=204)
    assert fetch.delay(URL, "DELETE").get() is None


def test_flaky_connection_is_retried_by_celery(
    eager_app: Any, http_stub: responses.RequestsMock
) -> None:
    @eager_app.task(
        base=APIClientTask,
        bind=True,
        autoretry_for=(requests.ConnectionError,),
        retry_backoff=True,
        max_retries=2,
    )
    def sync(self: Any) -> Any:
        return self.make_api_call(URL)

    http_stub.get(URL, body=requests.ConnectionError("connection reset by peer"))
    http_stub.get(URL, json={"id": 7})

    assert sync.delay().get() == {"id": 7}
    assert_hooks_called(
        sync, ["before_start", "on_retry", "before_start", "on_success", "after_return"]
    )


def test_flaky_api_injected_with_mocker(fetch: Any, mocker: Any) -> None:
    response = requests.Response()
    response.status_code = 200
    response._content = b'{"ok": true}'
    send = mocker.patch.object(
        requests.Session,
        "request",
        side_effect=[requests.Timeout("read timed out"), response],
    )

    assert fetch.delay().failed()
    assert fetch.delay().get() == {"ok": True}
    assert send.call_count == 2
    assert_hooks_called(fetch, FAILURE + SUCCESS)


def test_base_url_and_options(eager_app: Any, http_stub: responses.RequestsMock) -> None:
    @eager_app.task(
        base=APIClientTask,
        bind=True,
        api_base_url="https://api.example.com/v2/",
        api_timeout=2.5,
    )
    def get_user(self: Any, user_id: int) -> Any:
        return self.make_api_call(f"users/{user_id}", params={"expand": "orders"})

    http_stub.get("https://api.example.com/v2/users/7?expand=orders", json={"id": 7})

    assert get_user.delay(7).get() == {"id": 7}
    assert http_stub.calls[0].request.req_kwargs["timeout"] == 2.5


def test_one_session_per_process(fetch: Any, mocker: Any) -> None:
    assert "_celerybase_session" not in fetch.__dict__  # nothing made at declaration
    session = fetch.session
    assert fetch.session is session
    adapter = session.get_adapter("https://x")
    assert adapter.max_retries.total == 3
    assert set(adapter.max_retries.status_forcelist) == {429, 500, 502, 503, 504}
    assert adapter.max_retries.backoff_factor == 0.5

    mocker.patch("os.getpid", return_value=-1)  # as seen from a forked worker child
    assert fetch.session is not session


def test_bound_session_is_used(fetch: Any) -> None:
    custom = requests.Session()
    with bindings.bind(bindings.HTTP_SESSION, custom):
        assert fetch.session is custom
    assert fetch.session is not custom


def test_retry_after_is_capped() -> None:
    retry = _capped_retry_class()(total=3, backoff_max=2.0)
    response = urllib3.HTTPResponse(headers={"Retry-After": "3600"}, status=429)
    assert retry.get_retry_after(response) == 2.0
    assert retry.get_retry_after(urllib3.HTTPResponse(status=429)) is None
