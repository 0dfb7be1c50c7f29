"""``CachedTask``: results cached in Redis with a TTL, keyed by task name and arguments.

redis-py is imported when the first client is created, not at import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from celery import Task
from kombu.utils import json as kombu_json

from pytest_celerybase import _compat
from pytest_celerybase.bases._config import setting
from pytest_celerybase.bases._process import ProcessLocal
from pytest_celerybase.resources import bindings

if TYPE_CHECKING:
    import redis

__all__ = ["CachedTask", "UncacheableArguments", "cache_key"]

logger = logging.getLogger(__name__)

KEY_PREFIX = "celerybase:cache:"


class UncacheableArguments(TypeError):
    """The arguments have no canonical JSON form, so they cannot key the cache."""


def _canonical(value: Any, path: str) -> Any:
    # Stricter than json.dumps: it would silently turn {1: "a"} and {"1": "a"} into
    # the same key, and NaN into non-standard JSON.
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UncacheableArguments(f"{path} is {value!r}, which has no JSON form")
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise UncacheableArguments(f"{path} has non-string keys")
        return {key: _canonical(item, f"{path}[{key!r}]") for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [_canonical(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise UncacheableArguments(f"{path} is a {type(value).__name__}, not JSON-serialisable")


def cache_key(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The Redis key for a call: prefix, task name and sha256 of the canonical JSON.

    Canonical means sorted keys, no whitespace, tuples as lists: the same call always
    gives the same key, in any process and any Python version.
    """
    payload = {
        "task": task_name,
        "args": _canonical(list(args), "args"),
        "kwargs": _canonical(dict(kwargs), "kwargs"),
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{KEY_PREFIX}{task_name}:{hashlib.sha256(encoded.encode()).hexdigest()}"


def _create_client(url: str) -> redis.Redis:
    import redis

    # Short timeouts: a cache that hangs is worse than no cache.
    return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)


_clients_lock = threading.Lock()
_clients: dict[str, ProcessLocal[redis.Redis]] = {}


def _client_slot(url: str) -> ProcessLocal[redis.Redis]:
    with _clients_lock:
        slot = _clients.get(url)
        if slot is None:
            slot = _clients[url] = ProcessLocal()
        return slot


class CachedTask(Task):  # type: ignore[misc]
    """Return the cached result of an identical earlier call, else run and cache it.

    Caching wraps ``__call__``, which Celery's tracer calls for tasks that override
    it, so it works with ``@app.task(base=CachedTask)`` (that decorator replaces
    ``run``, which is why caching can't live in ``run``).  Results are stored for
    ``cache_ttl`` seconds as kombu JSON, the encoding Celery uses for results by
    default: a hit returns what ``result.get()`` would (tuples come back as lists;
    datetimes, decimals and UUIDs round-trip).

    Never fails a task for the cache's sake: arguments without a canonical JSON form,
    a result that isn't JSON-serialisable, or Redis being unreachable all log a
    warning and run (or return) uncached.  Failures and retries are never cached.

    Settings (task attribute, else app config key):
        ``cache_ttl``
            Seconds a result stays cached (default 300;
            ``@app.task(..., cache_ttl=60)`` sets it per task).
        ``cache_redis_url`` / ``celerybase_redis_url``
            Where Redis is (default ``redis://localhost:6379/0``), unless a client
            is bound (``fake_redis``).
    """

    cache_ttl: float = 300
    cache_redis_url: str | None = None

    if _compat.PUSH_REQUEST_FORGETS_REQUEST:  # Celery < 5.5: see pytest_celerybase._compat
        push_request = _compat.push_request_inheriting

    @property
    def cache(self) -> redis.Redis:
        """The Redis client: the bound one if any, else this process's for the URL."""
        bound = bindings.current(bindings.REDIS)
        if bound is not None:
            return bound
        url: str = setting(
            self, "cache_redis_url", "celerybase_redis_url", "redis://localhost:6379/0"
        )
        return _client_slot(url).get(lambda: _create_client(url))

    def cache_key(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        """The key for this call (override to ignore arguments that don't matter)."""
        return cache_key(self.name, args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Serve a hit from Redis, or run the task and store its result."""
        try:
            key = self.cache_key(args, kwargs)
        except UncacheableArguments as exc:
            logger.warning("running %s uncached: %s", self.name, exc)
            return super().__call__(*args, **kwargs)

        found, value = self._cache_get(key)
        if found:
            logger.debug("cache hit for %s (%s)", self.name, key)
            return value
        result = super().__call__(*args, **kwargs)
        self._cache_set(key, result)
        return result

    def _cache_get(self, key: str) -> tuple[bool, Any]:
        import redis

        try:
            raw = self.cache.get(key)
        except redis.RedisError as exc:
            logger.warning(
                "cache unavailable for %s, running uncached: %s", self.name, _describe(exc)
            )
            return False, None
        if raw is None:
            return False, None
        try:
            return True, kombu_json.loads(raw)  # type: ignore[no-untyped-call]
        except ValueError:
            logger.warning("ignoring a corrupt cache entry %s for %s", key, self.name)
            return False, None

    def _cache_set(self, key: str, result: Any) -> None:
        import redis

        try:
            encoded: str = kombu_json.dumps(result)  # type: ignore[no-untyped-call]
        except (TypeError, ValueError) as exc:
            logger.warning("not caching the result of %s: %s", self.name, exc)
            return
        ttl_ms = max(1, round(float(self.cache_ttl) * 1000))
        try:
            self.cache.set(key, encoded, px=ttl_ms)
        except redis.RedisError as exc:
            logger.warning("could not cache the result of %s: %s", self.name, _describe(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
