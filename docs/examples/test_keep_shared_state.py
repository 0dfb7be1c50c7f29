"""celerybase_keep: state a base shares on purpose stays from one test to the next."""

import pytest
from celery import Task, shared_task

LOADS = []


def load_templates():
    LOADS.append("loaded")  # expensive: parse every template of the project
    return {"invoice": "Invoice {number}"}


class TemplateTask(Task):
    celerybase_keep = ("_templates",)  # loaded once per process, also in tests
    _templates = None

    def templates(self):
        if TemplateTask._templates is None:
            TemplateTask._templates = load_templates()
        return TemplateTask._templates


@shared_task(base=TemplateTask, bind=True)
def render(self, number):
    return self.templates()["invoice"].format(number=number)


@pytest.mark.parametrize("number", [1, 2])
def test_templates_are_loaded_once_for_all_tests(eager_app, number):
    assert render.delay(number).get() == f"Invoice {number}"
    assert LOADS == ["loaded"]  # by whichever test ran first
