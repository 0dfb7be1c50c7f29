"""The billing service's task base classes, as the common guides write them.

Known flaws, kept on purpose (they are what a test suite meets in real projects):

* ``CachedTask`` caches results in a class-level dict, for ever, shared by every task
  and every test in the process;
* ``DatabaseTask`` makes its engine lazily on the production URL with pool options,
  forgets it after a connection error without disposing it, and shares it across forks;
* ``MetricsTask`` keeps the start time on the task instance (shared by threads) and
  counts with process-global ``prometheus_client`` metrics in ``after_return``;
* ``ResourcePoolTask`` grows its pool without bound and never closes what it pools;
* ``APIClientTask`` keeps one ``requests.Session`` with urllib3 retries on the task.
"""

import hashlib
import json
import os
import queue
import time
from contextlib import contextmanager

import requests
from celery import Task
from prometheus_client import Counter, Histogram
from requests.adapters import HTTPAdapter
from sqlalchemy import create_engine
from urllib3.util.retry import Retry

DATABASE_URL = os.environ.get(
    "BILLING_DATABASE_URL", "postgresql://billing:secret@billing-db:5432/billing"
)

TASK_RUNS = Counter("billing_task_runs", "Task executions.", ["task", "status"])
TASK_LATENCY = Histogram("billing_task_latency_seconds", "Task latency.", ["task"])


class CachedTask(Task):
    """Results cached by task name and arguments."""

    _cache = {}  # noqa: RUF012 - the flaw this example is about

    def __call__(self, *args, **kwargs):
        key = hashlib.md5(
            json.dumps(
                {"task": self.name, "args": args, "kwargs": kwargs}, sort_keys=True
            ).encode()
        ).hexdigest()
        if key in self._cache:
            return self._cache[key]
        result = super().__call__(*args, **kwargs)
        self._cache[key] = result
        return result


class DatabaseTask(Task):
    """A lazy engine, made once per worker process."""

    _db = None

    @property
    def db(self):
        if self._db is None:
            self._db = create_engine(DATABASE_URL, pool_size=10, max_overflow=20)
        return self._db

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if "connection" in str(exc).lower():
            self._db = None


class MetricsTask(Task):
    """Runs and latency per task and status, for Prometheus."""

    def before_start(self, task_id, args, kwargs):
        self.start_time = time.time()

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        TASK_RUNS.labels(task=self.name, status=status).inc()
        TASK_LATENCY.labels(task=self.name).observe(time.time() - self.start_time)


class ResourcePoolTask(Task):
    """Reusable resources (here, PDF renderers) in a pool."""

    _pool = None
    _pool_size = 4

    def __init__(self):
        super().__init__()
        if self._pool is None:
            self._pool = queue.Queue(maxsize=self._pool_size)

    @contextmanager
    def acquire_resource(self):
        try:
            resource = self._pool.get(block=False)
        except queue.Empty:
            resource = self._create_resource()
        try:
            yield resource
        finally:
            try:
                self._pool.put(resource, block=False)
            except queue.Full:
                pass

    def _create_resource(self):
        return {"renderer": "pdf", "created": time.time(), "pages": 0}


class APIClientTask(Task):
    """One HTTP session with retries on 429 and 5xx."""

    _session = None

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
            retry_strategy = Retry(
                total=3, backoff_factor=1, status_forcelist=[429, 500, 502, 503, 504]
            )
            adapter = HTTPAdapter(max_retries=retry_strategy, pool_connections=10)
            self._session.mount("http://", adapter)
            self._session.mount("https://", adapter)
        return self._session

    def make_api_call(self, url, method="GET", **kwargs):
        response = self.session.request(method, url, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()


class RatesTask(APIClientTask):
    """Exchange rates, loaded once per process."""

    _rates = None

    def rates(self):
        if RatesTask._rates is None:
            RatesTask._rates = self.make_api_call("https://rates.example.com/latest")
        return RatesTask._rates


class InvoiceTask(MetricsTask, DatabaseTask):
    """What the invoice tasks use: metrics and the database."""
