"""Isolated Celery apps: ``eager_app``'s app, its snapshot and restore, Celery's globals.

``isolated`` (an app configured for a test and restored after, and the session's cache of
apps), ``app_state`` (the snapshot of one app), ``celery_globals`` (Celery's process-wide
state), ``names`` (the task names apps know, and a typo's "did you mean").  No pytest
import, and no Celery import until used.
"""

from __future__ import annotations

from pytest_celerybase.apps.isolated import EAGER_DEFAULTS, isolated_app

__all__ = ["EAGER_DEFAULTS", "isolated_app"]
