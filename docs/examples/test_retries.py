import pytest
from pytest_celerybase import assert_hooks_called, hook_calls

RETRY = ["before_start", "on_retry"]
SUCCESS = ["before_start", "on_success", "after_return"]
FAILURE = ["before_start", "on_failure", "after_return"]


def test_retried_twice_then_succeeds(eager_app):
    attempts = []

    @eager_app.task(bind=True, max_retries=3)
    def sync(self):
        attempts.append(self.request.retries)
        if len(attempts) < 3:
            raise self.retry(exc=ConnectionError("flaky"), countdown=60)
        return "synced"

    result = sync.delay()

    assert result.get() == "synced"
    assert attempts == [0, 1, 2]  # eager retries run inline, ignoring countdown
    # No after_return for the RETRY state: each retry is before_start, on_retry.
    assert_hooks_called(result, RETRY * 2 + SUCCESS)
    retries = [c for c in hook_calls(sync) if c.hook == "on_retry"]
    # on_retry gets the exception given to retry(exc=...).
    assert [type(c.exc) for c in retries] == [ConnectionError, ConnectionError]


def test_gives_up_after_max_retries(eager_app):
    @eager_app.task(bind=True, max_retries=2)
    def sync(self):
        raise self.retry(exc=KeyError("user"), countdown=0)

    result = sync.delay()

    assert result.failed()
    assert isinstance(result.result, KeyError)  # the exc= given to retry()
    assert_hooks_called(result, RETRY * 2 + FAILURE)


@pytest.mark.celerybase(task_annotations={"*": {"retry_backoff_max": 0}})
def test_autoretry_for(eager_app):
    calls = []

    @eager_app.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
    def fetch():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("reset by peer")
        return "fetched"

    assert fetch.delay().get() == "fetched"
    assert_hooks_called(fetch, RETRY + SUCCESS)
