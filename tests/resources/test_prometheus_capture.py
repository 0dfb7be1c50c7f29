"""``metrics_sink`` reads ``prometheus_client``: per-test deltas, eager and on prefork."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import RunPytest

# A base counting with prometheus_client in after_return, as users write it.
PROJECT = '''
import time

from celery import Task, shared_task
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RUNS = Counter("runs", "Task runs.", ["task", "status"])
LATENCY = Histogram("latency_seconds", "Task latency.", ["task"])
OWN = CollectorRegistry()
IN_FLIGHT = Gauge("in_flight", "Tasks running.", registry=OWN)
NOT_A_REGISTRY = object()


class MetricsTask(Task):
    def before_start(self, task_id, args, kwargs):
        self.started = time.monotonic()
        IN_FLIGHT.inc()

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        RUNS.labels(task=self.name, status=status).inc()
        LATENCY.labels(task=self.name).observe(time.monotonic() - self.started)
        IN_FLIGHT.dec()


@shared_task(base=MetricsTask, bind=True)
def work(self, fail=False):
    if fail:
        raise ValueError("boom")
    return 1
'''


# prometheus_client's default registry outlives an inner session when this process has
# imported prometheus_client already: the next session's ``jobs`` could not register
# its counters again.  (A project imports its module once per process.)
CONFTEST = """
from prometheus_client import REGISTRY

BEFORE = set(REGISTRY._collector_to_names)


def pytest_unconfigure():
    for collector in [c for c in REGISTRY._collector_to_names if c not in BEFORE]:
        REGISTRY.unregister(collector)
"""


def _project(pytester: pytest.Pytester, tests: str, ini: str = "") -> None:
    if ini:
        pytester.makeini(ini)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(jobs=PROJECT, test_jobs=textwrap.dedent(tests))


def test_counts_are_per_test_though_the_counters_are_process_global(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from prometheus_client import REGISTRY
        from jobs import work

        def test_first(eager_app, metrics_sink):
            work.delay(); work.delay(); work.delay(fail=True)
            assert metrics_sink.total("runs_total", task=work.name, status="SUCCESS") == 2
            assert metrics_sink.total("runs_total", task=work.name, status="FAILURE") == 1
            assert metrics_sink.total("latency_seconds_count", task=work.name) == 3
            assert metrics_sink.total("latency_seconds_sum", task=work.name) > 0

        def test_second(eager_app, metrics_sink):
            work.delay()
            assert metrics_sink.values("runs_total", task=work.name, status="SUCCESS") == [1]
            # What the delta hides: the counter itself carries the first test's runs.
            assert REGISTRY.get_sample_value(
                "runs_total", {"task": work.name, "status": "SUCCESS"}) == 3
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_records_are_metrics_with_kinds_labels_and_no_noise(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import pytest
        from jobs import work

        def test_records(eager_app, metrics_sink):
            assert metrics_sink.records == []  # nothing counted yet (GC, CPU time left out)
            work.delay()
            runs = metrics_sink.last("runs_total", status="SUCCESS")
            assert (runs.kind, runs.value, runs.labels) == (
                "counter", 1.0, {"task": work.name, "status": "SUCCESS"})
            assert metrics_sink.last("latency_seconds_count").kind == "histogram"
            buckets = metrics_sink.filter("latency_seconds_bucket", le="+Inf")
            assert [b.value for b in buckets] == [1.0]
            assert not [n for n in metrics_sink.names() if n.endswith("_created")]
            with pytest.raises(LookupError, match="- runs_total"):
                metrics_sink.last("runs_total", status="RETRY")

        def test_clear_counts_from_then_on(eager_app, metrics_sink):
            work.delay()
            metrics_sink.clear()
            assert metrics_sink.records == []
            work.delay()
            assert metrics_sink.total("runs_total") == 1
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_registry_named_in_the_ini_is_read_too(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from jobs import IN_FLIGHT, work

        def test_gauge(eager_app, metrics_sink):
            IN_FLIGHT.set(5)
            assert metrics_sink.last("in_flight").kind == "gauge"
            assert metrics_sink.values("in_flight") == [5]
    """, ini="[pytest]\ncelerybase_prometheus_registries = jobs:OWN\n")
    run().assert_outcomes(passed=1)


def test_without_the_ini_line_another_registry_is_not_read(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        from jobs import IN_FLIGHT

        def test_gauge(metrics_sink):
            IN_FLIGHT.set(5)
            assert metrics_sink.names() == []
    """)
    run().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("jobs.OWN", "celerybase_prometheus_registries: each line must look like "
         "'package.module:REGISTRY', got 'jobs.OWN'"),
        ("nowhere:OWN", "celerybase_prometheus_registries: 'nowhere:OWN': cannot import "
         "'nowhere': No module named 'nowhere'"),
        ("jobs:MISSING", "celerybase_prometheus_registries: 'jobs:MISSING': module 'jobs' "
         "has no attribute 'MISSING'"),
        ("jobs:NOT_A_REGISTRY", "celerybase_prometheus_registries: 'jobs:NOT_A_REGISTRY' "
         "names a object, not a prometheus_client.CollectorRegistry"),
    ],
    ids=["no-colon", "no-module", "no-attribute", "not-a-registry"],
)
def test_a_bad_registry_line_fails_the_test_naming_it(
    pytester: pytest.Pytester, run: RunPytest, line: str, message: str
) -> None:
    _project(pytester, "def test_one(metrics_sink):\n    pass\n",
             ini=f"[pytest]\ncelerybase_prometheus_registries = {line}\n")
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*metrics_sink: *Error: {message}*"])


def test_prefork_children_counts_are_included_and_per_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    _project(pytester, """
        import os
        import pytest
        from pytest_celerybase.bases import MetricsTask as ReferenceMetricsTask
        from celery import shared_task
        from jobs import work

        PREFORK = pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)

        @shared_task(base=ReferenceMetricsTask, bind=True)
        def reference(self):
            return os.getpid()

        @PREFORK
        def test_children_count(live_worker, metrics_sink):
            for _ in range(3):
                work.delay().get(timeout=10)
            work.delay(fail=True)
            assert metrics_sink.total("runs_total", task=work.name, status="SUCCESS") == 3
            assert metrics_sink.total("runs_total", task=work.name, status="FAILURE") == 1
            assert metrics_sink.total("latency_seconds_count", task=work.name) == 4
            # The reference base's metrics, emitted in a child, reach the test too.
            assert reference.delay().get(timeout=10) != os.getpid()
            assert metrics_sink.values(
                "celery_task_executions_total", task=reference.name, status="SUCCESS") == [1]

        @PREFORK
        def test_next_starts_from_zero(live_worker, metrics_sink):
            work.delay().get(timeout=10)
            assert metrics_sink.total("runs_total", task=work.name) == 1
    """)
    run("-p", "no:randomly").assert_outcomes(passed=2)
