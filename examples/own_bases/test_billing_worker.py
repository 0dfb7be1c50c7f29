"""The same bases on the prefork pool: child processes, one database file, metrics."""

import os

import pytest
from billing.tasks import record_invoice
from pytest_celerybase import hook_calls
from sqlalchemy import text


@pytest.mark.celerybase(worker_pool="prefork", worker_concurrency=2)
@pytest.mark.filterwarnings("ignore::pytest_celerybase.CelerybaseWarning")
def test_children_write_to_the_tests_database(billing_db, live_worker, metrics_sink):
    # billing_db comes first: the schema it made is moved to the worker's database file.
    for cents in (100, 200, 300):
        record_invoice.delay("ada", cents).get(timeout=10)

    assert os.getpid() not in {call.pid for call in hook_calls(record_invoice)}
    with billing_db.connect() as conn:
        rows = (
            conn.execute(text("SELECT cents FROM invoices ORDER BY cents"))
            .scalars()
            .all()
        )
    assert rows == [100, 200, 300]
    name = record_invoice.name
    assert (
        metrics_sink.total("billing_task_runs_total", task=name, status="SUCCESS") == 3
    )
