"""The shop's Celery app: every setting comes from the environment.

Start a worker with ``celery -A shop.celery_app worker``.  Tests don't use this app:
the tasks are ``@shared_task``, so they run on whichever app is current (the
``eager_app`` fixture's, in the test suite).
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("shop")
app.conf.update(
    broker_url=os.environ.get("SHOP_BROKER_URL", "redis://localhost:6379/0"),
    result_backend=os.environ.get("SHOP_RESULT_BACKEND", "redis://localhost:6379/1"),
    task_acks_late=True,
    # Read by the reference bases (pytest_celerybase.bases):
    celerybase_database_url=os.environ.get("SHOP_DATABASE_URL", "sqlite:///shop.db"),
    celerybase_redis_url=os.environ.get("SHOP_CACHE_URL", "redis://localhost:6379/2"),
    shop_smtp_host=os.environ.get("SHOP_SMTP_HOST", "localhost"),
)
app.autodiscover_tasks(["shop"])
