"""Invoices: the production engine runs on the test's SQLite; Prometheus, per test."""

import pytest
from billing.tasks import record_invoice
from pytest_celerybase import CelerybaseWarning, SQLQueries, assert_hooks_called
from pytest_celerybase.bases import MemorySink
from sqlalchemy import text


def invoices(engine):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT customer, cents FROM invoices ORDER BY id")
        ).all()


@pytest.mark.filterwarnings("ignore::pytest_celerybase.CelerybaseWarning")
def test_an_invoice_is_stored(eager_app, billing_db, sql_queries: SQLQueries):
    with sql_queries.assert_num_queries(1) as block:
        assert record_invoice.delay("ada", 1200).get() == 1

    assert block.statements[0].startswith("INSERT INTO invoices")
    assert invoices(billing_db) == [("ada", 1200)]


@pytest.mark.filterwarnings("ignore::pytest_celerybase.CelerybaseWarning")
def test_each_test_has_its_own_database(eager_app, billing_db):
    assert invoices(billing_db) == []
    assert record_invoice.delay("bob", 500).get() == 1  # the ids start over too


def test_the_pool_options_postgres_needs_are_dropped_with_a_warning(
    eager_app, billing_db
):
    with pytest.warns(CelerybaseWarning, match="dropped: max_overflow, pool_size"):
        record_invoice.delay("ada", 1200).get()


@pytest.mark.filterwarnings("ignore::pytest_celerybase.CelerybaseWarning")
def test_runs_are_counted_per_test(eager_app, billing_db, metrics_sink: MemorySink):
    record_invoice.delay("ada", 1200)
    record_invoice.delay("ada", -1)

    name = record_invoice.name
    assert (
        metrics_sink.total("billing_task_runs_total", task=name, status="SUCCESS") == 1
    )
    assert (
        metrics_sink.total("billing_task_runs_total", task=name, status="FAILURE") == 1
    )
    assert metrics_sink.total("billing_task_latency_seconds_count", task=name) == 2
    assert_hooks_called(
        record_invoice,
        [
            "before_start",
            "on_success",
            "after_return",
            "before_start",
            "on_failure",
            "after_return",
        ],
    )
