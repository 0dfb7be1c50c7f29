from celery import Celery

app = Celery(
    "billing",
    broker="redis://broker.internal:6379/0",
    include=["billing.payments", "billing.reports"],
)
