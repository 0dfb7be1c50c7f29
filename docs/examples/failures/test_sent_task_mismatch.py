"""What assert_task_sent prints when the message sent is not the one expected."""

from pytest_celerybase import assert_task_sent


def test_welcome_mail_for_the_new_user(eager_app, sent_tasks):
    @eager_app.task(name="accounts.send_welcome")
    def send_welcome(user_id):
        return user_id

    send_welcome.delay(1)  # the code under test sent it for user 1
    assert_task_sent(send_welcome, (2,))
