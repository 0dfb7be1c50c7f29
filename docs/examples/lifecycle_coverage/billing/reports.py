from billing.bases import ReportTask
from billing.celery import app


@app.task(base=ReportTask)
def monthly_statement(month):
    return f"statement {month}"
