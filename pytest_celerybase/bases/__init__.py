"""Reference Celery base classes: the common custom-task patterns, done right.

Importable without pytest; SQLAlchemy, redis-py, requests and prometheus-client are
imported only when a task first needs them.

* :class:`LoggingTask` - one log line per lifecycle hook, with status and duration.
* :class:`DatabaseTask` - per-process SQLAlchemy engine, ``session_scope()``.
* :class:`CachedTask` - results cached in Redis with a TTL.
* :class:`MetricsTask` - duration and outcome per execution, to a pluggable sink.
* :class:`ResourcePoolTask` - bounded thread-safe pool with an acquire timeout.
* :class:`APIClientTask` - retrying ``requests`` session and a JSON call helper.
* :class:`ProductionTask` - logging + metrics + database, composed with ``super()``.
"""

from pytest_celerybase.bases.api import APIClientTask, APIResponseError
from pytest_celerybase.bases.cache import CachedTask, UncacheableArguments, cache_key
from pytest_celerybase.bases.database import (
    DatabaseNotConfigured,
    DatabaseTask,
    dispose_engines,
    is_disconnect,
)
from pytest_celerybase.bases.log import LoggingTask
from pytest_celerybase.bases.metrics import MetricsTask
from pytest_celerybase.bases.pool import PoolTimeout, ResourcePool, ResourcePoolTask
from pytest_celerybase.bases.production import ProductionTask
from pytest_celerybase.bases.sinks import (
    LoggingSink,
    MemorySink,
    Metric,
    MetricsSink,
    PrometheusSink,
)

__all__ = [
    "APIClientTask",
    "APIResponseError",
    "CachedTask",
    "DatabaseNotConfigured",
    "DatabaseTask",
    "LoggingSink",
    "LoggingTask",
    "MemorySink",
    "Metric",
    "MetricsSink",
    "MetricsTask",
    "PoolTimeout",
    "ProductionTask",
    "PrometheusSink",
    "ResourcePool",
    "ResourcePoolTask",
    "UncacheableArguments",
    "cache_key",
    "dispose_engines",
    "is_disconnect",
]
