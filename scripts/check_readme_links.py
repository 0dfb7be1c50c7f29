"""Check that every link into the manual resolves in the built site (CI runs this).

    sphinx-build -W --keep-going -n docs docs/_build/html
    python scripts/check_readme_links.py docs/_build/html

The README (and the package's own messages) link to the manual on Read the Docs, under
the ``Documentation`` URL of ``pyproject.toml``.  Each such link must name a page of the
built site, and its ``#anchor`` an element id on that page.  Relative links in the README
must name a file of the repository.  Exit status 1 lists what does not resolve.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>|(https?://[^\s)\"'`>\]]+)")


def docs_base(root: Path = ROOT) -> str:
    """The manual's URL, from ``[project.urls] Documentation`` in pyproject.toml."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^Documentation\s*=\s*"([^"]+)"', text, re.M)
    if match is None:
        raise SystemExit("pyproject.toml has no [project.urls] Documentation")
    return match.group(1).rstrip("/") + "/"


def links(text: str) -> list[str]:
    """Every link target in Markdown (or Python) text, in order, without duplicates."""
    found = [next(g for g in m.groups() if g) for m in LINK.finditer(text)]
    return list(dict.fromkeys(found))


def manual_links(text: str, base: str) -> Iterator[tuple[str, str, str]]:
    """``(link, page, anchor)`` of each link into the manual: ``page`` relative to the
    site root (``index.html`` for the root), ``anchor`` without ``#`` (or "")."""
    for link in links(text):
        url, anchor = urldefrag(link)
        if url.rstrip("/") + "/" == base:
            yield link, "index.html", anchor
        elif url.startswith(base):
            page = url[len(base) :]
            yield link, (page + "index.html" if page.endswith("/") else page), anchor


def check_site(site: Path, texts: dict[str, str], base: str) -> list[str]:
    problems = []
    for source, text in texts.items():
        for link, page, anchor in manual_links(text, base):
            html = site / page
            if not html.is_file():
                problems.append(f"{source}: {link}: no page {page} in {site}")
            elif anchor and f'id="{anchor}"' not in html.read_text(encoding="utf-8"):
                problems.append(f"{source}: {link}: no #{anchor} on {page}")
    return problems


def check_relative(readme: str, root: Path = ROOT) -> list[str]:
    problems = []
    for link in links(readme):
        path = urldefrag(link)[0]
        if path and "://" not in path and not path.startswith("mailto:"):
            if not (root / path).exists():
                problems.append(f"README.md: {link}: no file {path}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    site = Path(argv[0])
    base = docs_base()
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    for path in sorted((ROOT / "pytest_celerybase").rglob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    problems = check_site(site, texts, base) + check_relative(texts["README.md"])
    checked = sum(len(list(manual_links(t, base))) for t in texts.values())
    if problems:
        print("links into the manual that do not resolve:", *problems, sep="\n  ")
        return 1
    print(f"{checked} links into the manual resolve in {site}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
