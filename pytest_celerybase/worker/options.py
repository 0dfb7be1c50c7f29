"""A live worker's settings: defaults, the environment's broker, checked options (no pytest).

:func:`live_defaults` is what a live worker's app starts from; :func:`worker_options`
checks a test's settings and separates the ``celerybase_worker_*`` options.  Re-exported
by :mod:`pytest_celerybase.worker`.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BROKER_URL_ENV",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "LIVE_DEFAULTS",
    "OPTION_KEYS",
    "RESULT_BACKEND_ENV",
    "SUPPORTED_POOLS",
    "WorkerOptions",
    "check_pool",
    "live_defaults",
    "worker_options",
]

#: Environment variable naming the broker live workers use instead of ``memory://``.
BROKER_URL_ENV = "CELERYBASE_BROKER_URL"
#: Environment variable naming their result backend (default: the broker URL for
#: ``redis://``/``rediss://`` brokers, else ``cache+memory://``).
RESULT_BACKEND_ENV = "CELERYBASE_RESULT_BACKEND"

#: Pools a live worker runs (prefork: child processes forked from the test process).
SUPPORTED_POOLS: tuple[str, ...] = ("solo", "threads", "prefork")

#: Configuration a live worker's app starts from (test overrides are applied on top).
LIVE_DEFAULTS: dict[str, Any] = {
    "broker_url": "memory://localhost/",
    # The memory transport polls every second by default: a round trip would cost ~1 s.
    "broker_transport_options": {"polling_interval": 0.005},
    "result_backend": "cache+memory://",
    "task_always_eager": False,
    "broker_connection_retry_on_startup": False,
    "worker_pool": "solo",
    "worker_concurrency": 1,
    # Remote control adds a broadcast consumer per worker (and global fanout bindings on
    # the memory transport); enable it per test for revoke()/inspect().
    "worker_enable_remote_control": False,
    "worker_hijack_root_logger": False,
    # The ETA timer thread sleeps up to this long between checks (also when stopping).
    "worker_timer_precision": 0.01,
    # prefork: seconds billiard waits before a dead child's task fails (default 10).
    "worker_lost_wait": 0.2,
}


#: Seconds a live worker may take to start consuming / to stop (running tasks included).
DEFAULT_START_TIMEOUT = 10.0
DEFAULT_STOP_TIMEOUT = 10.0
#: Worker options that are ours, not Celery settings (taken out of the app config).
OPTION_KEYS: tuple[str, ...] = (
    "celerybase_worker_start_timeout",
    "celerybase_worker_stop_timeout",
)


def live_defaults(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:data:`LIVE_DEFAULTS`, pointed at the broker/backend named by the environment.

    With ``CELERYBASE_BROKER_URL`` set, the worker uses that broker, the result backend
    from ``CELERYBASE_RESULT_BACKEND`` (default: the same URL for Redis) and a default
    queue private to the worker, so workers of other test processes sharing the broker
    never take each other's messages.
    """
    env = os.environ if environ is None else environ
    settings = copy.deepcopy(LIVE_DEFAULTS)
    broker = env.get(BROKER_URL_ENV, "").strip()
    if broker:
        settings["broker_url"] = broker
        # Redis: also its BRPOP timeout, which closing the worker's channel waits out
        # (1 s by default).  Fractional timeouts need Redis >= 6.
        settings["broker_transport_options"] = {"polling_interval": 0.05}
        settings["task_default_queue"] = f"celerybase.{uuid.uuid4().hex[:12]}"
        redis = broker.split("://", 1)[0] in ("redis", "rediss")
        settings["result_backend"] = broker if redis else "cache+memory://"
    backend = env.get(RESULT_BACKEND_ENV, "").strip()
    if backend:
        settings["result_backend"] = backend
    return settings


@dataclass(frozen=True)
class WorkerOptions:
    """How a live worker runs: its pool, concurrency and start/stop time-outs."""

    pool: str = "solo"
    concurrency: int = 1
    start_timeout: float = DEFAULT_START_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT


def worker_options(settings: Mapping[str, Any]) -> tuple[dict[str, Any], WorkerOptions]:
    """Check a live worker's test settings; return the Celery settings and the options.

    ``settings`` are the test's own (applied over :func:`live_defaults`).  The
    ``celerybase_worker_start_timeout``/``..._stop_timeout`` options are taken out; the
    pool is ``worker_pool`` (default solo, or threads when only ``worker_concurrency > 1``
    is given).  Raises ``ValueError`` naming what is wrong and what is valid.
    """
    celery_settings = dict(settings)
    if celery_settings.get("task_always_eager"):
        raise ValueError(
            "task_always_eager=True would run every task in the test thread instead of on "
            "the worker; remove it from celerybase_config / @pytest.mark.celerybase (use "
            "eager_app for eager tests)"
        )
    timeouts: dict[str, float] = {}
    for key in OPTION_KEYS:
        if key in celery_settings:
            value = celery_settings.pop(key)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{key} must be a positive number of seconds, got {value!r}")
            timeouts[key.removeprefix("celerybase_worker_")] = float(value)
    concurrency = celery_settings.get("worker_concurrency", LIVE_DEFAULTS["worker_concurrency"])
    pool = celery_settings.get("worker_pool")
    if pool is None:
        # concurrency asked for without a pool: solo cannot give it
        multiple = isinstance(concurrency, int) and concurrency > 1
        pool = "threads" if multiple else LIVE_DEFAULTS["worker_pool"]
    check_pool(pool, concurrency)
    return celery_settings, WorkerOptions(pool, concurrency, **timeouts)


def check_pool(pool: Any, concurrency: Any) -> None:
    """Raise ``ValueError`` unless ``pool`` runs in-process with ``concurrency`` slots."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValueError(f"worker_concurrency must be an int >= 1, got {concurrency!r}")
    if pool not in SUPPORTED_POOLS:
        raise ValueError(
            f"live_worker runs in-process, so worker_pool must be one of "
            f"{', '.join(map(repr, SUPPORTED_POOLS))}, got {pool!r}; e.g. "
            "@pytest.mark.celerybase(worker_pool='threads', worker_concurrency=4)"
        )
    if pool == "solo" and concurrency > 1:
        raise ValueError(
            f"the solo pool runs one task at a time, got worker_concurrency={concurrency}; "
            "use worker_pool='threads' for concurrency"
        )
