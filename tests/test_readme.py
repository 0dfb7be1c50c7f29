"""README.md stays true: its commands come first and its misuse catalogue cites real tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = README.split("```")[1].splitlines()[1:]
    assert first_block == [
        'pip install -e ".[dev]" && python -m pytest -p celerybase examples',
        'pip install -e ".[dev]" && python -m pytest',
    ]


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
