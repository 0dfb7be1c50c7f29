import pytest
import requests
from pytest_celerybase import assert_hooks_called
from pytest_celerybase.bases import APIClientTask, APIResponseError

URL = "https://accounts.example.com/api/users/7"


def fetch_user_task(app):
    @app.task(
        base=APIClientTask, bind=True, api_base_url="https://accounts.example.com/api/"
    )
    def fetch_user(self, user_id):
        return self.make_api_call(f"users/{user_id}")

    return fetch_user


def test_503s_are_retried_by_the_session(eager_app, http_stub):
    fetch_user = fetch_user_task(eager_app)
    http_stub.get(URL, status=503)
    http_stub.get(
        URL, json={"id": 7}
    )  # urllib3 retries, without sleeping under responses

    assert fetch_user.delay(7).get() == {"id": 7}
    assert len(http_stub.calls) == 2
    assert_hooks_called(fetch_user, ["before_start", "on_success", "after_return"])


def test_a_body_that_is_not_json(eager_app, http_stub):
    fetch_user = fetch_user_task(eager_app)
    http_stub.get(URL, body="<html>Bad gateway</html>", content_type="text/html")

    result = fetch_user.delay(7)

    assert isinstance(result.result, APIResponseError)
    assert "not JSON" in str(result.result)


def test_a_404_fails_the_task(eager_app, http_stub):
    fetch_user = fetch_user_task(eager_app)
    http_stub.get(URL, status=404)

    with pytest.raises(requests.HTTPError, match="404"):
        fetch_user.delay(7).get()


@pytest.mark.http_stub(assert_all_requests_are_fired=False)
def test_responses_that_may_go_unrequested(eager_app, http_stub):
    http_stub.get("https://accounts.example.com/api/health", json={"ok": True})
