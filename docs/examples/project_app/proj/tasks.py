from proj.celery import app


@app.task(bind=True)
def welcome(self, email):
    return f"{self.app.conf.welcome_subject} {email}"
