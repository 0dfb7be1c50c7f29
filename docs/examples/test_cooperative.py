from celery import Task
from pytest_celerybase import assert_hooks_cooperative
from pytest_celerybase.bases import LoggingTask, MetricsTask

AUDIT_LOG = []


class AuditTask(Task):
    """A project's own base: records each finished task."""

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        AUDIT_LOG.append((self.name, status))
        super().after_return(status, retval, task_id, args, kwargs, einfo)


class ShopTask(LoggingTask, MetricsTask, AuditTask):
    """Composed: every base's hooks must run, which takes super() in every override."""


def test_shop_task_is_cooperative(eager_app, metrics_sink):
    @eager_app.task(base=ShopTask, name="shop.checkout")
    def checkout(order_id):
        return order_id

    checkout.delay(1)
    assert_hooks_cooperative(checkout)
    assert AUDIT_LOG[-1] == ("shop.checkout", "SUCCESS")
