"""validate_config() and worker_only() used directly: how each kind of key is sorted."""

from __future__ import annotations

import pytest

from pytest_celerybase.apps.config_check import PLUGIN_SETTINGS, validate_config, worker_only


@pytest.mark.parametrize(
    "key",
    [
        "task_always_eager",
        "broker_transport_options",
        *PLUGIN_SETTINGS,
        "PAYMENTS_API_URL",  # the app's own: close to no Celery setting
        "shop_region",
        "Shop_Region",
    ],
)
def test_accepted(key: str) -> None:
    assert validate_config({key: 1}) == {key: 1}


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("TASK_ALWAYS_EAGER", "use 'task_always_eager'"),
        ("Task_Always_Eager", "use 'task_always_eager'"),
        ("CELERY_TASK_ALWAYS_EAGER", "use 'task_always_eager'"),
        ("celery_task_always_eager", "use 'task_always_eager'"),
        ("BROKER_URL", "use 'broker_url'"),
        ("CELERY_ALWAYS_EAGER", "old-style Celery setting name: use 'task_always_eager'"),
        ("CELERYD_CONCURRENCY", "old-style Celery setting name: use 'worker_concurrency'"),
        ("TASK_ALWAYS_EAGR", "did you mean 'task_always_eager'?"),
        ("task_always_eagr", "did you mean 'task_always_eager'?"),
        ("celerybase_worker_start_timout", "did you mean 'celerybase_worker_start_timeout'?"),
        ("CELERYBASE_DATABASE_URL", "did you mean 'celerybase_database_url'?"),
        ("celerybase_whatever", "the celerybase_ settings are: "),
    ],
)
def test_refused(key: str, meant: str) -> None:
    with pytest.raises(ValueError, match=f"^.*{key!r}.*") as info:
        validate_config({key: 1})
    assert meant in str(info.value)
    assert "\n" not in str(info.value)


def test_not_a_mapping_or_not_str_keys() -> None:
    with pytest.raises(TypeError, match="must be a mapping"):
        validate_config(["task_always_eager"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="names must be str, got 1"):
        validate_config({1: True})


def test_worker_only() -> None:
    settings = {
        "worker_pool": "threads",
        "task_always_eager": True,
        "celerybase_worker_stop_timeout": 1,
        "celerybase_database_url": "sqlite://",
        "worker_prefetch_multiplier": 1,
    }
    assert worker_only(settings) == [
        "worker_pool", "celerybase_worker_stop_timeout", "worker_prefetch_multiplier"
    ]  # fmt: skip
    assert worker_only({"task_default_queue": "q"}) == []
