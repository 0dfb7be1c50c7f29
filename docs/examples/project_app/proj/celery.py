from celery import Celery

app = Celery("proj", broker="redis://broker.internal:6379/0", include=["proj.tasks"])
app.conf.update(
    task_default_queue="proj", task_acks_late=True, welcome_subject="Welcome!"
)
