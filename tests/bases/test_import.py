"""Production code imports the bases without pytest; the plugin imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["sqlalchemy", "requests", "redis", "urllib3", "prometheus_client", "fakeredis"]

BLOCK_PYTEST = """
import sys

class BlockPytest:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pytest", "_pytest"):
            raise ImportError("pytest is not installed here")

sys.meta_path.insert(0, BlockPytest())
"""


def _run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_bases_import_without_pytest_and_lazily() -> None:
    result = _run(
        BLOCK_PYTEST
        + f"""
import json
import pytest_celerybase.bases as bases
print(json.dumps({{
    "names": sorted(bases.__all__),
    "loaded": [m for m in {HEAVY!r} + ["pytest"] if m in sys.modules],
}}))
"""
    )
    assert result["loaded"] == []
    assert {
        "APIClientTask",
        "CachedTask",
        "DatabaseTask",
        "LoggingTask",
        "MetricsTask",
        "ProductionTask",
        "ResourcePoolTask",
    } <= set(result["names"])  # type: ignore[arg-type]


def test_fixtures_import_nothing_heavy() -> None:
    result = _run(
        f"""
import json, sys
import pytest_celerybase.fixtures as fixtures
print(json.dumps({{
    "all": fixtures.__all__,
    "loaded": [m for m in {HEAVY!r} + ["celery", "responses"] if m in sys.modules],
}}))
"""
    )
    assert result["loaded"] == []
    assert {
        "fake_redis",
        "http_stub",
        "metrics_sink",
        "sql_queries",
        "sqlite_engine",
    } <= set(result["all"])  # type: ignore[arg-type]
