import logging

from celery import Task

audit = logging.getLogger("billing.audit")


class AuditedTask(Task):
    """One audit line per outcome of a payment task."""

    def on_success(self, retval, task_id, args, kwargs):
        audit.info("%s %s succeeded", self.name, task_id)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        audit.error("%s %s failed: %r", self.name, task_id, exc)

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        audit.warning("%s %s will retry: %r", self.name, task_id, exc)


class ReportTask(Task):
    """Flags a failed report and releases its lock, whatever the outcome."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        audit.error("report %s failed: %r", task_id, exc)

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        audit.info("report %s done: %s", task_id, status)
