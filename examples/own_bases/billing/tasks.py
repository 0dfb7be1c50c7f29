"""The billing tasks, on the bases of ``billing.bases``."""

from celery import shared_task
from sqlalchemy import text

from billing.bases import (
    CachedTask,
    DatabaseTask,
    InvoiceTask,
    RatesTask,
    ResourcePoolTask,
)

SCHEMA = (
    "CREATE TABLE invoices ("
    " id INTEGER PRIMARY KEY, customer TEXT NOT NULL, cents INTEGER NOT NULL,"
    " currency TEXT NOT NULL DEFAULT 'EUR')"
)


@shared_task(base=InvoiceTask, bind=True)
def record_invoice(self, customer, cents):
    """Store an invoice; its id."""
    if cents <= 0:
        raise ValueError(f"an invoice is for a positive amount, got {cents}")
    with self.db.begin() as conn:
        result = conn.execute(
            text("INSERT INTO invoices (customer, cents) VALUES (:customer, :cents)"),
            {"customer": customer, "cents": cents},
        )
        return result.lastrowid


class ReportTask(CachedTask, DatabaseTask):
    """Slow queries, cached."""


@shared_task(base=ReportTask, bind=True)
def invoice_total(self, customer):
    """The total a customer was invoiced, in cents (cached: the query is slow)."""
    with self.db.connect() as conn:
        return conn.execute(
            text("SELECT coalesce(sum(cents), 0) FROM invoices WHERE customer = :c"),
            {"c": customer},
        ).scalar_one()


@shared_task(base=RatesTask, bind=True)
def convert(self, cents, currency):
    """``cents`` euros in ``currency``."""
    return round(cents * self.rates()[currency])


@shared_task(base=RatesTask, bind=True)
def fetch_customer(self, customer_id):
    """The CRM's record of a customer."""
    return self.make_api_call(f"https://crm.example.com/customers/{customer_id}")


@shared_task(base=ResourcePoolTask, bind=True)
def render_invoice(self, invoice_id):
    """Render an invoice with a pooled renderer; the number of pages."""
    with self.acquire_resource() as renderer:
        renderer["pages"] += 1
        return 1
