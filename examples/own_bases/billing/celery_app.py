"""The billing service's Celery app (production settings from the environment).

Tests don't use it: the tasks are ``@shared_task`` and run on whichever app is current
(``eager_app``'s or ``live_worker``'s in the tests).
"""

import os

from celery import Celery

app = Celery("billing")
app.conf.update(
    broker_url=os.environ.get("BILLING_BROKER_URL", "redis://localhost:6379/0"),
    result_backend=os.environ.get("BILLING_RESULT_BACKEND", "redis://localhost:6379/1"),
)
app.autodiscover_tasks(["billing"])
