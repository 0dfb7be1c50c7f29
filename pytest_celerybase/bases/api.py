"""``APIClientTask``: a retrying ``requests.Session`` per process and a JSON call helper.

requests and urllib3 are imported when the first session is created, not at import.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

from celery import Task

from pytest_celerybase.bases._process import ProcessLocal
from pytest_celerybase.resources import bindings

if TYPE_CHECKING:
    import requests
    from urllib3.util.retry import Retry

__all__ = ["APIClientTask", "APIResponseError"]


class APIResponseError(ValueError):
    """A successful response whose body is not the JSON the caller asked for."""


@functools.cache
def _capped_retry_class() -> type[Retry]:
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        # A server may send "Retry-After: 3600"; sleeping that long would block a
        # worker slot for an hour, so the wait is capped at backoff_max (urllib3 2;
        # urllib3 1.26 has only the class-wide DEFAULT_BACKOFF_MAX).
        def get_retry_after(self, response: Any) -> float | None:
            after = super().get_retry_after(response)
            cap: float = getattr(self, "backoff_max", self.DEFAULT_BACKOFF_MAX)
            return None if after is None else min(after, cap)

    return CappedRetry


class APIClientTask(Task):  # type: ignore[misc]
    """A task with ``session`` (one ``requests.Session`` per process) and ``make_api_call``.

    The session retries connection errors and ``api_retry_statuses`` (429, 500, 502,
    503, 504) with exponential backoff, honouring ``Retry-After`` up to
    ``api_backoff_max`` seconds.  Only idempotent methods are retried by default
    (``api_retry_methods``): retrying a POST that timed out may apply it twice.
    After the last retry the final response is returned to ``make_api_call``, which
    raises ``requests.HTTPError`` for it (status and URL in the message).

    Class attributes:
        ``api_base_url``
            Prefix for relative URLs given to ``make_api_call``.
        ``api_timeout``
            Seconds, or ``(connect, read)``; every call has one (requests has no
            default timeout and would otherwise wait forever).
        ``api_retries``, ``api_backoff_factor``, ``api_backoff_max``
            The retry policy (3 retries, exponential backoff, ``Retry-After`` capped).
        ``api_retry_statuses``, ``api_retry_methods``, ``api_pool_maxsize``
            What is retried (429, 500, 502, 503, 504; idempotent methods) and the
            connection pool size.

    The session is created on first use in each process; a forked child creates its
    own (an inherited one would share sockets with the parent).  While a session is
    bound (by the ``http_stub`` fixture), that one is used instead.
    """

    api_base_url: str | None = None
    api_timeout: float | tuple[float, float] = (3.05, 30.0)
    api_retries: int = 3
    api_backoff_factor: float = 0.5
    api_backoff_max: float = 30.0
    api_retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    api_retry_methods: frozenset[str] = frozenset(
        {"DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE"}
    )
    api_pool_maxsize: int = 10

    @property
    def session(self) -> requests.Session:
        """The bound session if any, else this process's session for this task."""
        bound = bindings.current(bindings.HTTP_SESSION)
        if bound is not None:
            return bound
        slot: ProcessLocal[requests.Session] | None = self.__dict__.get("_celerybase_session")
        if slot is None:
            slot = self.__dict__.setdefault("_celerybase_session", ProcessLocal())
        return slot.get(self.create_session)

    def create_session(self) -> requests.Session:
        """Build a session with the retry policy mounted for http and https."""
        import requests
        from requests.adapters import HTTPAdapter

        retry_class = _capped_retry_class()
        options: dict[str, Any] = {
            "total": self.api_retries,
            "backoff_factor": self.api_backoff_factor,
            "status_forcelist": sorted(self.api_retry_statuses),
            "allowed_methods": sorted(self.api_retry_methods),
            "respect_retry_after_header": True,
            # Hand the last response back instead of raising RetryError, so the
            # caller gets raise_for_status()'s HTTPError naming the status.
            "raise_on_status": False,
        }
        if "backoff_max" in inspect.signature(retry_class.__init__).parameters:
            options["backoff_max"] = self.api_backoff_max  # urllib3 >= 2
        retry = retry_class(**options)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=self.api_pool_maxsize)
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def make_api_call(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        """Send the request and return its decoded JSON (``None`` for an empty body).

        ``kwargs`` go to ``Session.request``; ``timeout`` defaults to ``api_timeout``.
        Raises ``requests.HTTPError`` for 4xx/5xx (after retries), ``requests``'
        connection errors once retries are exhausted, and :class:`APIResponseError`
        when the body is not JSON.
        """
        from urllib.parse import urljoin

        if self.api_base_url:
            url = urljoin(self.api_base_url, url)
        kwargs.setdefault("timeout", self.api_timeout)
        response = self.session.request(method, url, **kwargs)
        response.raise_for_status()
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            content_type = response.headers.get("Content-Type", "no content type")
            raise APIResponseError(
                f"{method} {url} returned {response.status_code} with {content_type!r}, "
                f"not JSON: {response.text[:200]!r}"
            ) from exc
