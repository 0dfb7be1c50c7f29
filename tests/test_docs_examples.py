"""The manual's code examples (docs/examples/test_*.py) pass when run through the plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunPytest
from tests.leak_guard import child_processes

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.mark.parametrize(
    ("name", "tests"), [("test_prefork_howto.py", 2)], ids=lambda v: str(v)
)
def test_example_passes(
    pytester: pytest.Pytester, run: RunPytest, name: str, tests: int
) -> None:
    pytester.makepyfile(**{name.removesuffix(".py"): (EXAMPLES / name).read_text()})
    result = run("-p", "tests.leak_guard", "-p", "no:randomly")
    result.assert_outcomes(passed=tests)
    assert child_processes() == []
