"""``ProductionTask``: logging, metrics and database handling composed with ``super()``."""

from __future__ import annotations

from pytest_celerybase.bases.database import DatabaseTask
from pytest_celerybase.bases.log import LoggingTask
from pytest_celerybase.bases.metrics import MetricsTask

__all__ = ["ProductionTask"]


class ProductionTask(LoggingTask, MetricsTask, DatabaseTask):
    """Logging, metrics, a database and its error handling in one base.

    Nothing is re-implemented here: every base's hooks call ``super()``, so Python's
    method resolution order runs each base's hook body exactly once per execution
    (``LoggingTask`` → ``MetricsTask`` → ``DatabaseTask`` → ``celery.Task``).  Use it
    with Celery's own retry options, which need no help from the base::

        @app.task(base=ProductionTask, bind=True, autoretry_for=(OperationalError,),
                  retry_backoff=True, max_retries=3)
        def import_orders(self, batch_id): ...

    Add the other bases the same way; order only matters for who logs first::

        class ShopTask(ProductionTask, CachedTask, APIClientTask, ResourcePoolTask):
            pass
    """
