"""Only for runs from this repository: the examples also go through the project's leak
guard (tests/leak_guard.py), which fails a test that leaves Celery or the bases'
bindings changed.  Not part of the tutorial, and not needed in a project of your own."""

from __future__ import annotations

import importlib.util

pytest_plugins: list[str] = []
try:
    if importlib.util.find_spec("tests.leak_guard") is not None:
        pytest_plugins.append("tests.leak_guard")
except ImportError:
    pass
