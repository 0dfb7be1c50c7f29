"""Check that every table of the built manual fits its content column (CI runs this).

    sphinx-build -W --keep-going -n docs docs/_build/html
    python scripts/check_tables.py docs/_build/html

A browser lays a table out no narrower than the sum of its columns' narrowest widths: a
column cannot be narrower than the longest word in it (text breaks at spaces and
``<wbr>``; a code word does not break).  This script estimates that width from the
built HTML, with the font metrics of Arial/Helvetica (monospace: 0.6 em a character)
and a safety margin, and fails when a table cannot fit:

* on a wide screen, in furo's 46 em (736 px) content column;
* on a 400 px phone (a 352 px column): there a table of a class in ``STACKED`` shows
  one cell under the other (``docs/_static/celerybase.css``), so each cell must fit the
  column; any other table must fit as a whole.

No browser is needed; measured in headless Chromium the estimate is within a few
percent above the real width.  Exit status 1 lists the tables that do not fit.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

WIDE_COLUMN = 736.0  # px: furo's .content is 46em wide
PHONE_COLUMN = 352.0  # px: a 400 px screen less furo's padding
BASE_FONT = 16.0  # px
CODE_SCALE = 0.8125  # furo's code.literal: var(--font-size--small--2)
CELL_PADDING = 17.0  # px: td padding 0 .25rem, p margin .25rem, a border
#: Tables whose cells the manual's style sheet stacks on a narrow screen: those the
#: Sphinx extension labels (a table with a header) and the general index.
STACKED = ("celerybase-stack", "genindextable")
MARGIN = 1.05  # other fonts (San Francisco, Segoe UI) run a little wider
BOLD = 1.1  # header cells

# Advance widths of Arial/Helvetica (Liberation Sans), in 1/1000 em.
_ARIAL = {
    **dict.fromkeys("abdeghnopqu0123456789$#_", 556),
    **dict.fromkeys("ckvxyzsJ", 500),
    **dict.fromkeys("fijlt/\\!.,:;|[] ", 278),
    **dict.fromkeys("ijl", 222),
    "m": 833,
    "w": 722,
    "r": 333,
    **dict.fromkeys("-()`{}", 333),
    **dict.fromkeys("'\u2018\u2019", 191),
    **dict.fromkeys('"\u201c\u201d', 355),
    **dict.fromkeys("=+<>~^", 584),
    **dict.fromkeys("ABEKPSVXY", 667),
    **dict.fromkeys("CDHNRUw", 722),
    **dict.fromkeys("FTZ", 611),
    **dict.fromkeys("GOQ", 778),
    "I": 278,
    "L": 556,
    "M": 833,
    "W": 944,
    "%": 889,
    "&": 667,
    "@": 1015,
    "*": 389,
    "?": 556,
    "\u2192": 1000,  # the arrow of the parity tables' outcomes
}
_WIDEST = 1000


def text_width(word: str, size: float) -> float:
    return sum(_ARIAL.get(ch, _WIDEST if ord(ch) > 0x2000 else 667) for ch in word) * size / 1000


def code_width(word: str, size: float) -> float:
    return len(word) * 0.6 * size * CODE_SCALE


@dataclass
class Cell:
    header: bool
    span: int = 1
    # The longest unbreakable runs: (width with labels shown, width with labels hidden).
    words: list[tuple[float, bool]] = field(default_factory=list)  # (width, is_label)

    def min_width(self, *, labels: bool) -> float:
        widths = [w for w, is_label in self.words if labels or not is_label]
        return max(widths, default=0.0) + CELL_PADDING


@dataclass
class Table:
    page: str
    index: int
    classes: list[str]
    caption: str = ""
    rows: list[list[Cell]] = field(default_factory=list)

    @property
    def stacks(self) -> bool:
        return any(c in self.classes for c in STACKED)

    def min_width(self) -> float:
        """The narrowest the table can be laid out side by side (labels hidden)."""
        columns = max((sum(c.span for c in row) for row in self.rows), default=0)
        widths = [0.0] * columns
        spanning = []
        for row in self.rows:
            col = 0
            for cell in row:
                if cell.span == 1:
                    widths[col] = max(widths[col], cell.min_width(labels=False))
                else:
                    spanning.append((col, cell))
                col += cell.span
        for col, cell in spanning:
            missing = cell.min_width(labels=False) - sum(widths[col : col + cell.span])
            if missing > 0:
                for c in range(col, col + cell.span):
                    widths[c] += missing / cell.span
        return sum(widths)

    def widest_cell(self) -> float:
        """The narrowest the widest body cell can be when the rows are stacked."""
        cells = [c for row in self.rows for c in row if not c.header]
        return max((c.min_width(labels=True) for c in cells), default=0.0)


class _Parser(HTMLParser):
    """The tables inside ``<article>``, cell by cell, as runs of unbreakable text."""

    def __init__(self, page: str, scales: dict[str, float]) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.scales = scales
        self.tables: list[Table] = []
        self.article = 0
        self.stack: list[str] = []  # open elements inside the current cell
        self.code = 0
        self.label = 0
        self.cell: Cell | None = None
        self.run = ""  # the unbreakable run being read
        self.run_width = 0.0
        self.run_label = False

    # Elements without an end tag.
    VOID = frozenset({"br", "wbr", "img", "hr", "input", "meta", "link", "col"})

    @property
    def size(self) -> float:
        table = self.tables[-1]
        scale = next((self.scales[c] for c in table.classes if c in self.scales), 1.0)
        return BASE_FONT * scale

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = (attr.get("class") or "").split()
        if tag == "article":
            self.article += 1
        if not self.article:
            return
        if tag == "table":
            self.tables.append(Table(self.page, len(self.tables), classes))
        elif tag == "tr" and self.tables:
            self.tables[-1].rows.append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1].rows:
            self.cell = Cell(header=tag == "th", span=int(attr.get("colspan") or 1))
            self.tables[-1].rows[-1].append(self.cell)
            self.stack = []
        elif self.cell is not None:
            if tag in ("wbr", "br"):
                self._end_run()
            if tag in self.VOID:
                return
            self.stack.append(tag)
            if tag == "code":
                self.code += 1
            if "celerybase-label" in classes:
                self._end_run()
                self.label += 1
                self.stack[-1] = "label:" + tag
            if tag in ("p", "div", "li", "ul", "ol", "dl", "dd", "dt", "pre"):
                self._end_run()

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.article -= 1
        if not self.article or self.cell is None:
            return
        if tag in ("td", "th"):
            self._end_run()
            self.cell = None
            return
        if tag in self.VOID:
            return
        while self.stack:
            open_tag = self.stack.pop()
            if open_tag == "code":
                self.code -= 1
            if open_tag.startswith("label:"):
                self._end_run()
                self.label -= 1
            if open_tag.split(":")[-1] == tag:
                break
        if tag in ("p", "div", "li", "pre"):
            self._end_run()

    def handle_data(self, data: str) -> None:
        if self.cell is None:
            return
        size = self.size * (BOLD if self.cell.header else 1.0)
        if self.label:
            size *= 0.85 * BOLD
        for i, piece in enumerate(re.split(r"[ \t\n\r\f]+", data)):
            if i:
                self._end_run()
            if piece:
                self.run += piece
                self.run_width += code_width(piece, size) if self.code else text_width(piece, size)
                self.run_label = bool(self.label)

    def _end_run(self) -> None:
        if self.run and self.cell is not None:
            self.cell.words.append((self.run_width * MARGIN, self.run_label))
        self.run, self.run_width = "", 0.0


def stylesheet(site: Path) -> str:
    css = site / "_static" / "celerybase.css"
    return css.read_text(encoding="utf-8") if css.exists() else ""


def font_scales(css: str) -> dict[str, float]:
    """``{table class: font-size in em}`` declared by the manual's own style sheet."""
    rules = re.findall(r"table\.([\w-]+)[^{}]*\{[^}]*?font-size:\s*([\d.]+)em", css)
    return {name: float(size) for name, size in rules}


def unstacked(css: str) -> list[str]:
    """The classes of ``STACKED`` the style sheet does not stack (``display: block``
    under a ``max-width`` media query)."""
    media = re.search(r"@media \(max-width:[^{]*\{(.*?)\n\}", css, re.S)
    body = media.group(1) if media else ""
    blocks = re.findall(r"([^{}]*)\{[^}]*display:\s*block", body)
    return [c for c in STACKED if not any(f"table.{c} > tbody > tr > td" in b for b in blocks)]


def tables_of(html: str, page: str, scales: dict[str, float]) -> list[Table]:
    parser = _Parser(page, scales)
    parser.feed(html)
    parser.close()
    return parser.tables


def problems_of(table: Table) -> list[str]:
    where = f"{table.page}: table {table.index + 1}"
    problems = []
    wide = table.min_width()
    if wide > WIDE_COLUMN:
        problems.append(f"{where} needs {wide:.0f} px, the column is {WIDE_COLUMN:.0f} px")
    narrow = table.widest_cell() if table.stacks else wide
    if narrow > PHONE_COLUMN:
        kind = "a cell of it (rows stacked)" if table.stacks else "it (rows not stacked)"
        problems.append(
            f"{where}: on a 400 px screen {kind} needs {narrow:.0f} px, the column is "
            f"{PHONE_COLUMN:.0f} px"
        )
    return problems


def check_site(site: Path) -> tuple[int, list[str]]:
    """How many tables were checked, and what does not fit."""
    css = stylesheet(site)
    scales = font_scales(css)
    problems = [f"_static/celerybase.css does not stack table.{c}" for c in unstacked(css)]
    count = 0
    for path in sorted(site.rglob("*.html")):
        if "_static" in path.parts or "_sources" in path.parts:
            continue
        page = path.relative_to(site).as_posix()
        for table in tables_of(path.read_text(encoding="utf-8"), page, scales):
            count += 1
            problems += problems_of(table)
    return count, problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    site = Path(argv[0])
    count, problems = check_site(site)
    if problems:
        print("tables wider than the content column:", *problems, sep="\n  ")
        return 1
    if count == 0:
        print(f"no tables found in {site}: is it a built manual?", file=sys.stderr)
        return 1
    print(f"{count} tables fit the content column at {WIDE_COLUMN:.0f} px and on a phone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
