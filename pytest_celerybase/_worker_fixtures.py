"""The ``live_worker`` fixture (re-exported by :mod:`pytest_celerybase.plugin`).

Celery is imported inside the fixture only: importing the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_celerybase.recorder import HookRecorder

if TYPE_CHECKING:
    from pytest_celerybase.worker import LiveWorker

__all__ = ["live_worker"]


@pytest.fixture
def live_worker(
    request: pytest.FixtureRequest,
    celerybase_config: dict[str, Any],
    hook_recorder: HookRecorder,
) -> Generator[LiveWorker, None, None]:
    """A real Celery worker running in a thread of the test process, for this test.

    ``live_worker.app`` is its app (current and default during the test): in-memory
    broker and result backend, not eager, solo pool.  ``task.delay(...).get(timeout=...)``
    goes through the worker's consume -> trace -> ack path; hooks are recorded and hook
    assertions wait for the worker to finish the task.  Settings come from
    ``celerybase_config`` and ``@pytest.mark.celerybase(...)`` (e.g.
    ``worker_pool="threads", worker_concurrency=4``); ``CELERYBASE_BROKER_URL`` /
    ``CELERYBASE_RESULT_BACKEND`` select a real broker.  The worker is stopped after the
    test, and no thread of it is left behind.
    """
    from pytest_celerybase.apps import isolated_app, load_app
    from pytest_celerybase.plugin import _merged_settings
    from pytest_celerybase.worker import LiveWorker, live_defaults, split_options

    if "eager_app" in request.fixturenames:
        pytest.fail(
            "live_worker: eager_app and live_worker cannot be used in the same test: each "
            "makes its own app the current one. Use live_worker.app (not eager) or eager_app "
            "(eager), one per test.",
            pytrace=False,
        )
    settings, options = split_options(_merged_settings(request, celerybase_config))
    if settings.get("task_always_eager"):
        pytest.fail(
            "live_worker: task_always_eager=True would run every task in the test thread "
            "instead of on the worker; remove it from celerybase_config / "
            "@pytest.mark.celerybase (use eager_app for eager tests).",
            pytrace=False,
        )
    path = request.config.getini("celerybase_app")
    app = load_app(path) if path else None
    with isolated_app(app, settings, defaults=live_defaults()) as configured:
        pool = None
        if "worker_pool" not in settings and int(configured.conf.worker_concurrency or 1) > 1:
            pool = "threads"  # concurrency asked for without a pool: solo cannot give it
        worker = LiveWorker(
            configured,
            pool=pool,
            start_timeout=options["start_timeout"],
            stop_timeout=options["stop_timeout"],
        )
        # Publications of the worker's tasks count as in flight until it has run them,
        # so hook assertions right after result.get() wait for on_success/after_return.
        hook_recorder.watch_worker_tasks(lambda: configured.tasks)
        try:
            with worker:
                yield worker
        finally:
            hook_recorder.watch_worker_tasks(lambda: ())
