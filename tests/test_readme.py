"""README.md stays true: it starts with the two commands and they work, its example and
output are the tested ones, and its links resolve.  Layout is free; the manual holds the
details.

Links into the manual are checked here against the manual's sources (the page exists, the
anchor is an explicit ``(label)=`` target on it); CI also checks them against the built
site (``scripts/check_readme_links.py``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
COMMANDS = [
    'pip install -e ".[dev]" && python -m pytest -p celerybase examples',
    'pip install -e ".[dev]" && python -m pytest -n 2',
]


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_readme_links", ROOT / "scripts" / "check_readme_links.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(info string, body)`` of every fenced code block."""
    return [(m[0], m[1]) for m in re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)]


def test_readme_starts_with_the_two_setup_commands() -> None:
    # .ci/run executes the first fenced block's lines, so they must come first.
    first_block = README.split("```")[1].splitlines()[1:]
    assert first_block == COMMANDS


def test_ci_runs_exactly_these_commands() -> None:
    # The extraction .ci/run uses, run as it is there.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    awk = re.search(r"< <\((awk .*? README\.md)\)", ci)
    assert awk, ".ci/run must read the commands from README.md"
    proc = subprocess.run(
        ["bash", "-c", awk.group(1)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines() == COMMANDS


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


def test_readme_is_a_landing_page() -> None:
    assert len(README.encode("utf-8")) <= 8 * 1024


def test_quickstart_is_the_tested_example() -> None:
    python = [body for info, body in fenced_blocks(README) if info == "python"]
    assert python, "the README shows the quickstart"
    example = (DOCS / "examples" / "test_quickstart.py").read_text(encoding="utf-8")
    assert python[0] == example  # run by tests/test_docs.py


def test_quickstart_failure_output_is_the_real_one() -> None:
    text = [body for info, body in fenced_blocks(README) if info == "text"]
    output = (DOCS / "examples" / "failures" / "test_quickstart.txt").read_text("utf-8")
    assert output in text  # generated and checked by tests/test_docs.py


def _labels(page: Path) -> set[str]:
    return set(re.findall(r"^\(([\w-]+)\)=$", page.read_text(encoding="utf-8"), re.M))


def _source_of(page: str) -> Path | None:
    stem = DOCS / page.removesuffix(".html")
    candidates = (stem.with_suffix(".md"), stem.with_suffix(".rst"))
    return next((p for p in candidates if p.exists()), None)


def test_links_into_the_manual_resolve() -> None:
    base = checker.docs_base()
    texts = {"README.md": README}
    for path in (ROOT / "pytest_celerybase").rglob("*.py"):
        texts[path.name] = path.read_text(encoding="utf-8")
    problems = []
    checked = 0
    for name, text in texts.items():
        for link, page, anchor in checker.manual_links(text, base):
            checked += 1
            source = _source_of(page)
            if source is None:
                problems.append(f"{name}: {link}: no page docs/{page} (.md or .rst)")
            elif anchor and anchor not in _labels(source):
                problems.append(f"{name}: {link}: add an explicit ({anchor})= target")
    assert checked >= 10
    assert problems == []


def test_relative_links_resolve() -> None:
    assert checker.check_relative(README) == []


def test_the_site_checker_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "how-to").mkdir()
    (tmp_path / "how-to" / "a.html").write_text('<section id="here">', encoding="utf-8")
    base = "https://example.org/en/latest/"
    text = (
        f"[ok]({base}how-to/a.html#here) [no anchor]({base}how-to/a.html#gone) "
        f"[no page]({base}how-to/b.html) [elsewhere](https://example.com/x.html)"
    )
    assert checker.check_site(tmp_path, {"R": text}, base) == [
        f"R: {base}how-to/a.html#gone: no #gone on how-to/a.html",
        f"R: {base}how-to/b.html: no page how-to/b.html in {tmp_path}",
    ]


@pytest.mark.parametrize("text", ["[x](NOPE.md)", "[x](docs/nope.md#a)"])
def test_a_missing_relative_file_is_reported(text: str) -> None:
    assert checker.check_relative(text) != []
