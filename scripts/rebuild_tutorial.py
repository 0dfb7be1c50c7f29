"""Rebuild the tutorial's example from the rendered page alone, and run it (CI runs this).

    sphinx-build -W --keep-going -n docs docs/_build/html
    python scripts/rebuild_tutorial.py docs/_build/html

Every code block of ``tutorial.html`` whose caption names a file (``examples/...py``,
then ``examples/...py (continued)``) is a piece of that file.  The pieces, in page
order, are written to a temporary directory, and there the rebuilt suite runs with
``python -m pytest -p celerybase -p pytest_mock examples`` (plugin auto-loading off),
as a reader who copied the page would run it.  Before that, each piece must be a run of
lines of the repository's file, and together they must show every line that is not
inside a test function: imports, constants, helpers, fixtures and every non-test
module whole.  Exit status 1 says what is missing or what failed.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = "tutorial.html"
CAPTION = re.compile(r"(examples/[\w/]+\.py)( \(continued\))?$")
#: In examples/ but not in the tutorial: the repository's own test scaffolding.
REPOSITORY_ONLY = frozenset({"examples/conftest.py"})
#: In examples/ but another page's example ("Test your own base classes").
OTHER_PAGES = ("examples/own_bases/",)


class _Blocks(HTMLParser):
    """``(caption, code)`` of every captioned code block, in page order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self.article = 0  # the page's content, not the navigation around it
        self.caption: str | None = None
        self.in_caption = 0
        self.in_pre = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "article":
            self.article += 1
        if not self.article:
            return
        if self.in_caption:
            self.in_caption += 1
        elif tag == "span" and "caption-text" in classes:
            self.in_caption, self.text = 1, []
        elif tag == "pre" and self.caption is not None:
            self.in_pre, self.text = 1, []
        elif self.in_pre:
            self.in_pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.article -= 1
        if self.in_caption:
            self.in_caption -= 1
            if not self.in_caption:
                self.caption = "".join(self.text).strip()
        elif self.in_pre:
            self.in_pre -= 1
            if not self.in_pre and self.caption is not None:
                self.blocks.append((self.caption, "".join(self.text)))
                self.caption = None

    def handle_data(self, data: str) -> None:
        if self.in_caption or self.in_pre:
            self.text.append(data)


def pieces_of(html: str) -> tuple[dict[str, list[str]], list[str]]:
    """``{path: [piece, ...]}`` from the page's captioned blocks, and the problems met."""
    parser = _Blocks()
    parser.feed(html)
    parser.close()
    files: dict[str, list[str]] = {}
    problems = []
    for caption, code in parser.blocks:
        match = CAPTION.match(caption)
        if match is None:
            continue
        path, continued = match.group(1), bool(match.group(2))
        if continued != (path in files):
            want = "'(continued)'" if path in files else "no '(continued)'"
            problems.append(f"{PAGE}: the block captioned {caption!r} needs {want}")
        files.setdefault(path, []).append(code)
    return files, problems


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def _test_function_lines(source: str) -> set[int]:
    """0-based numbers of the lines of top-level test functions, decorators included."""
    inside: set[int] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            inside.update(range(first - 1, node.end_lineno))
    return inside


def check_pieces(files: dict[str, list[str]], root: Path = ROOT) -> list[str]:
    """Each piece is a run of its file's lines, no line is shown twice, and every line
    outside a test function is shown.  Every module of ``examples/`` is on the page."""
    problems = []
    on_disk = {
        p.relative_to(root).as_posix()
        for p in (root / "examples").rglob("*.py")
        if "__pycache__" not in p.parts
        and not p.relative_to(root).as_posix().startswith(OTHER_PAGES)
    }
    for missing in sorted(on_disk - set(files) - REPOSITORY_ONLY):
        problems.append(f"{PAGE}: {missing} is not shown")
    for path, pieces in files.items():
        if path not in on_disk:
            problems.append(f"{PAGE}: {path} is not a file of the repository")
            continue
        source = (root / path).read_text(encoding="utf-8")
        lines = _lines(source)
        shown: set[int] = set()
        for piece in pieces:
            want = _lines(piece)
            starts = [
                i for i in range(len(lines) - len(want) + 1) if lines[i : i + len(want)] == want
            ]
            if not starts:
                problems.append(f"{path}: a piece is not in the file: {want[0]!r} ...")
                continue
            run = set(range(starts[0], starts[0] + len(want)))
            if run & shown:
                problems.append(f"{path}: line {min(run & shown) + 1} is shown twice")
            shown |= run
        hidden = [
            i
            for i, line in enumerate(lines)
            if line.strip() and i not in shown and i not in _test_function_lines(source)
        ]
        if hidden:
            i = hidden[0]
            problems.append(
                f"{path}: {len(hidden)} line(s) outside the tests are not shown, the "
                f"first is line {i + 1}: {lines[i].strip()!r}"
            )
    return problems


def rebuild(files: dict[str, list[str]], into: Path) -> None:
    for path, pieces in files.items():
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n\n\n".join(p.strip("\n") for p in pieces) + "\n", "utf-8")


def run_rebuilt(into: Path) -> tuple[bool, str]:
    """Run the rebuilt suite as a reader would; whether every test passed, and the output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # The checkout's package, not another installed copy.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "pytest", "-p", "celerybase", "-p", "pytest_mock",
            "-p", "no:cacheprovider", "-q", "examples"]  # fmt: skip
    proc = subprocess.run(argv, cwd=into, env=env, capture_output=True, text=True, timeout=600)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    ok = proc.returncode == 0 and re.fullmatch(r"\d+ passed in .*", summary) is not None
    return ok, proc.stdout + proc.stderr


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    html = (Path(argv[0]) / PAGE).read_text(encoding="utf-8")
    files, problems = pieces_of(html)
    problems += check_pieces(files)
    if problems:
        print("the tutorial cannot be rebuilt from its page:", *problems, sep="\n  ")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        rebuild(files, Path(tmp))
        ok, output = run_rebuilt(Path(tmp))
    if not ok:
        print(output[-5000:])
        print(f"the suite rebuilt from {PAGE} does not pass")
        return 1
    print(f"{len(files)} files rebuilt from {PAGE}: {output.strip().splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
