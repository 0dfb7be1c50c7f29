"""The task names Celery apps in the process know, and the "did you mean" of a typo.

Shared by the hook and sent-task assertions, so an unknown task name is rejected the same
way everywhere (no pytest import).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

__all__ = ["registered_names", "unknown_name_hint"]


def unknown_name_hint(
    name: str, known: Collection[str], suggestions: Collection[str]
) -> str | None:
    """``None`` when ``name`` is ``known`` or registered on a live app; else the
    ``"; did you mean 'x'?"`` part of the error (empty when no name is close), drawn from
    the registered names and ``suggestions``."""
    if name in known:
        return None
    registered = registered_names()
    if name in registered:
        return None
    close = difflib.get_close_matches(name, sorted({*registered, *suggestions}))
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def registered_names() -> list[str]:
    """Names of the tasks registered on the current app and every live app."""
    from celery import _state, current_app

    names: dict[str, None] = {}
    try:
        names.update(dict.fromkeys(current_app.tasks))
    except Exception:  # an app that cannot finalize must not hide the real failure
        pass
    for app in list(_state._get_active_apps()):
        names.update(dict.fromkeys(app._tasks))
    return list(names)
