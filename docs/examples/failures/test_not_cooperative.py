from celery import Task
from pytest_celerybase import assert_hooks_cooperative
from pytest_celerybase.bases import LoggingTask


class MetricsMixin(Task):
    def on_success(self, retval, task_id, args, kwargs):
        self.succeeded = (
            getattr(self, "succeeded", 0) + 1
        )  # forgot super().on_success()


class AuditMixin(Task):
    def on_success(self, retval, task_id, args, kwargs):
        super().on_success(retval, task_id, args, kwargs)


class ShopTask(LoggingTask, MetricsMixin, AuditMixin):
    pass


def test_shop_task_is_cooperative(eager_app):
    @eager_app.task(base=ShopTask, name="shop.checkout")
    def checkout(order_id):
        return order_id

    checkout.delay(1)
    assert_hooks_cooperative(checkout)
