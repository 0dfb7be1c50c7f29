from pytest_celerybase.bases import MetricsTask


def test_outcomes_and_durations(eager_app, metrics_sink):
    @eager_app.task(base=MetricsTask, bind=True, max_retries=1)
    def sync(self):
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        self.emit_metric("users_synced_total", 3)
        return "synced"

    sync.delay().get()

    outcomes = metrics_sink.filter("celery_task_executions_total", task=sync.name)
    assert [m.labels["status"] for m in outcomes] == ["RETRY", "SUCCESS"]
    assert metrics_sink.total("users_synced_total") == 3
    assert len(metrics_sink.values("celery_task_duration_seconds")) == 2
    assert (
        metrics_sink.last("celery_task_duration_seconds").labels["status"] == "SUCCESS"
    )
