"""README.md stays true: its two set-up commands work, its misuse catalogue cites real tests."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _setup_commands() -> list[list[str]]:
    """The pytest part of each command of README's first fenced block (.ci/run runs it)."""
    block = README.split("```")[1].splitlines()[1:]
    commands = []
    for line in filter(None, map(str.strip, block)):
        *_, test = line.split("&&")  # "pip install ... && python -m pytest ..."
        argv = shlex.split(test)
        assert argv[:3] == ["python", "-m", "pytest"], line
        commands.append([sys.executable, *argv[1:]])
    return commands


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_first_command_runs_the_examples_with_the_plugin() -> None:
    examples, _ = _setup_commands()
    assert examples[-3:] == ["-p", "celerybase", "examples"]
    result = _run(examples)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\d+ passed", result.stdout)


def test_the_second_command_runs_the_plugins_tests() -> None:
    _, tests = _setup_commands()
    # The command runs this very test: check it collects the whole suite instead.
    result = _run([*tests, "--collect-only", "-q", "-p", "no:randomly"])
    assert result.returncode == 0, result.stdout[-3000:]
    collected = int(re.findall(r"(\d+) tests? collected", result.stdout)[-1])
    assert collected > 300
    assert "tests/test_readme.py::test_the_second_command_runs_the_plugins_tests" in result.stdout


def test_every_test_the_misuse_catalogue_cites_exists() -> None:
    catalogue = README[README.index("## Misuse and the error you get") :]
    catalogue = catalogue[: catalogue.index("\n## ", 1)]
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py")}
    cited = re.findall(r"`(test_\w+\.py)::(\w+)`", catalogue)
    assert len(cited) > 30
    missing = [f"{f}::{t}" for f, t in cited if f"def {t}(" not in sources.get(f, "")]
    # "`::name`" rows refer to the file cited just before them in the same cell
    for name in re.findall(r"`::(\w+)`", catalogue):
        if not any(f"def {name}(" in src for src in sources.values()):
            missing.append(f"::{name}")
    assert missing == []
