"""Where the bases read their settings: task attribute first, then the app's config."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["setting"]


def setting(task: Any, attr: str, conf_key: str, default: T) -> T:
    """``task.<attr>`` if set (not ``None``), else ``app.conf[conf_key]``, else ``default``.

    Read at use time, not at class creation, so a test that reconfigures the app
    (``celerybase`` marker, ``celerybase_config`` fixture) is honoured.
    """
    value = getattr(task, attr, None)
    if value is not None:
        return value  # type: ignore[no-any-return]
    conf_value = task.app.conf.get(conf_key)
    return default if conf_value is None else conf_value
