"""The manual cannot rot: its examples run, its outputs are real, its lists are complete.

* Every ``docs/examples/test_*.py`` (included by the pages with ``literalinclude``) runs
  through the plugin, as a user's test file with no conftest, and passes.
* Every ``docs/examples/<project>/`` directory is a small project with its own ini file
  and runs the same way.
* Every ``docs/examples/failures/test_*.py`` fails, and what pytest prints (the ``E``
  lines, task ids masked) is exactly the ``.txt`` file next to it, which the pages
  include.  After changing a failure message on purpose:
  ``UPDATE_DOC_OUTPUTS=1 python -m pytest tests/test_docs.py`` rewrites them.
* Every page that documents an example is reachable: each example file is included by
  some page.
* The troubleshooting page and its contributor twin cite the same entries, and every
  cited test exists.
* The reference's generated lists (docs/_ext/celerybase_discovery.py) find what the plugin
  defines, and the package reads no ``CELERYBASE_*`` environment variable that the
  reference would miss.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pytest_celerybase
from tests.conftest import RunPytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
FAILURES = EXAMPLES / "failures"
SQLALCHEMY_VERSION = re.compile(r"(sqlalche\.me/e/)\d+(/)")
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# The examples' module names (test_live_worker, ...) can be those of modules of this suite
# already imported in this process: in-process runs import them from a package of their own.
PACKAGE = "docs_examples"


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("test_*.py"))


def example_projects() -> list[Path]:
    return sorted(
        p
        for p in EXAMPLES.iterdir()
        if p.is_dir() and p.name not in ("failures", "__pycache__") and not p.name.startswith(".")
    )


def failure_demos() -> list[Path]:
    return sorted(FAILURES.glob("test_*.py"))


def pages() -> dict[Path, str]:
    return {
        p: p.read_text(encoding="utf-8")
        for p in DOCS.rglob("*.md")
        if "_build" not in p.parts and EXAMPLES not in p.parents
    }


def _reports(result: pytest.RunResult) -> Iterator[pytest.TestReport]:
    reprec = getattr(result, "reprec", None)
    assert reprec is not None, "runpytest_inprocess keeps the reports"
    yield from reprec.getreports("pytest_runtest_logreport")


def normalize(text: str) -> str:
    """What a reader sees of a failure: pytest's ``E`` lines, task ids masked.

    A failure without a traceback (``pytest.fail(..., pytrace=False)``) is shown whole.
    """
    lines = [line for line in text.splitlines() if line.startswith("E ")] or [text.strip()]
    text = UUID.sub("<task-id>", "\n".join(lines))
    text = SQLALCHEMY_VERSION.sub(r"\1…\2", text)  # sqlalche.me/e/20/ on 2.0, e/21/ on 2.1
    return ADDRESS.sub(" at 0x…", text) + "\n"


def test_every_example_file_passes(pytester: pytest.Pytester, run: RunPytest) -> None:
    files = example_files()
    assert files, f"no examples in {EXAMPLES}"
    package = pytester.mkpydir(PACKAGE)
    for path in files:
        shutil.copy(path, package / path.name)
    result = run(*(f"{PACKAGE}/{p.name}" for p in files))
    passed: dict[str, int] = {f"{PACKAGE}/{p.name}": 0 for p in files}
    problems = []
    for report in _reports(result):
        if report.failed:
            problems.append(f"{report.nodeid} ({report.when}):\n{report.longreprtext}")
        elif report.when == "call" and report.passed:
            passed[report.nodeid.split("::")[0]] += 1
    problems += [f"{name}: no test passed" for name, count in passed.items() if count == 0]
    if problems:
        problems.append(result.stdout.str()[-3000:])
    assert not problems, "docs examples must pass:\n" + "\n".join(problems)


@pytest.mark.parametrize("project", example_projects(), ids=lambda p: p.name)
def test_every_example_project_passes(
    pytester: pytest.Pytester, run: RunPytest, project: Path
) -> None:
    shutil.copytree(project, pytester.path / project.name, ignore=_PYCACHE)
    result = run(project.name)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0 and set(outcomes) <= {"passed"}, result.stdout.str()


_PYCACHE = shutil.ignore_patterns("__pycache__")


# Failure demos run in a fresh process, as a user's run would: what an earlier test of
# this suite imported (a module-level @shared_task, say) must not show in the messages.
# This conftest hands the reports back.
REPORTER = """
import json

REPORTS = []

def pytest_runtest_logreport(report):
    REPORTS.append({"nodeid": report.nodeid, "when": report.when,
                    "outcome": report.outcome, "text": report.longreprtext})

def pytest_sessionfinish(session):
    with open("reports.json", "w", encoding="utf-8") as f:
        json.dump(REPORTS, f)
"""


def failure_outputs(reports: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """file name -> test name -> what it printed, for every test that failed (first
    failing phase: set-up, call or teardown)."""
    outputs: dict[str, dict[str, str]] = {}
    for report in reports:
        if report["outcome"] == "failed":
            file, _, test = report["nodeid"].partition("::")
            outputs.setdefault(file, {}).setdefault(test, normalize(report["text"]))
    return outputs


def render_outputs(tests: dict[str, str]) -> str:
    """One failing test: its output.  Several: a ``[test]`` ... ``[/test]`` section each,
    for ``literalinclude``'s ``:start-after:`` / ``:end-before:``."""
    if len(tests) == 1:
        return next(iter(tests.values()))
    return "".join(f"[{name}]\n{text}[/{name}]\n" for name, text in tests.items())


def test_failure_outputs_are_real(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    demos = failure_demos()
    assert demos
    for path in demos:
        shutil.copy(path, pytester.path / path.name)
    pytester.makeconftest(REPORTER)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # The subprocess must run the package this process tests, not another installed copy.
    here = str(Path(pytest_celerybase.__file__).resolve().parent.parent)
    paths = [here, os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    pytester.runpytest_subprocess(
        "-p", "celerybase", "-p", "pytest_mock", "--tb=short", *(p.name for p in demos)
    )
    reports = json.loads((pytester.path / "reports.json").read_text(encoding="utf-8"))
    outputs = failure_outputs(reports)
    failed = {f"{file}::{test}" for file, tests in outputs.items() for test in tests}
    ran = {r["nodeid"] for r in reports}
    update = os.environ.get("UPDATE_DOC_OUTPUTS") == "1"
    problems = [f"{nodeid} passed: a failure demo must fail" for nodeid in ran - failed]
    for path in demos:
        if path.name not in outputs:
            problems.append(f"{path.name}: nothing failed")
            continue
        actual = render_outputs(outputs[path.name])
        expected_file = path.with_suffix(".txt")
        if update:
            expected_file.write_text(actual, encoding="utf-8")
            continue
        expected = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
        if actual != expected:
            diff = difflib.unified_diff(
                expected.splitlines(), actual.splitlines(),
                str(expected_file.relative_to(ROOT)), "actual", lineterm="",
            )
            problems.append("\n".join(diff))
    assert not problems, (
        "docs failure outputs differ from what pytest prints (if the change is intended: "
        "UPDATE_DOC_OUTPUTS=1 python -m pytest tests/test_docs.py):\n" + "\n".join(problems)
    )


def test_every_example_is_shown_by_a_page() -> None:
    text = "\n".join(pages().values())
    examples = [*example_files(), *failure_demos()]
    examples += [p.with_suffix(".txt") for p in failure_demos()]
    for project in example_projects():
        examples += [
            p for p in project.rglob("*") if p.is_file() and p.stat().st_size
            and "__pycache__" not in p.parts
        ]
    # A failure demo is shown by including its files or by the celerybase-failure
    # directive (docs/_ext/celerybase_docs.py), which shows the demo and its output.
    shown_by_directive = set(re.findall(r"\{celerybase-failure\} ([\w.]+\.py)", text))
    not_shown = [
        p.relative_to(EXAMPLES).as_posix()
        for p in examples
        if f"examples/{p.relative_to(EXAMPLES).as_posix()}" not in text
        and not (p.parent == FAILURES and p.with_suffix(".py").name in shown_by_directive)
    ]
    assert not_shown == [], "examples no page includes (literalinclude them or remove them)"


# --------------------------------------------------------------------------- reference


@pytest.fixture
def ext() -> Iterator[Any]:
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import celerybase_discovery  # no Sphinx needed: runs in every nox session

        yield celerybase_discovery
    finally:
        sys.path.remove(str(DOCS / "_ext"))


def _section_names(output: str, header: str) -> set[str]:
    """Fixture names pytest lists under ``--fixtures`` sections whose header has ``header``."""
    names: set[str] = set()
    inside = False
    for line in output.splitlines():
        if line.startswith("-") and "fixtures defined from" in line:
            inside = header in line
        elif inside and line and not line.startswith(" "):
            names.add(line.split(" ")[0])
    return names


def test_reference_lists_the_fixtures_pytest_sees(
    pytester: pytest.Pytester, run: RunPytest, ext: Any
) -> None:
    result = run("--fixtures")
    registered = _section_names(result.stdout.str(), "pytest_celerybase")
    documented = {f.name for f in ext.discover_fixtures()}
    assert registered, result.stdout.str()
    assert documented == registered


def test_reference_lists_the_markers_and_ini_keys_pytest_sees(
    pytester: pytest.Pytester, run: RunPytest, ext: Any
) -> None:
    markers = run("--markers").stdout.str()
    documented = ext.discover_markers()
    assert documented
    for signature, description in documented:
        assert f"@pytest.mark.{signature}: {description}" in markers
    assert {sig.split("(")[0] for sig, _ in documented} >= {"celerybase", "http_stub"}
    help_text = run("--help").stdout.str()
    settings = ext.discover_settings()
    ini_in_help = set(re.findall(r"^  (celerybase_\w+)", help_text, re.M))
    assert {i.name for i in settings.ini} == ini_in_help
    options_in_help = set(re.findall(r"^  (--celerybase[\w-]*)", help_text, re.M))
    assert {flag for o in settings.options for flag in o.flags} >= options_in_help


def test_reference_lists_every_environment_variable_the_package_reads(ext: Any) -> None:
    package = ROOT / "pytest_celerybase"
    # os.environ / getenv with the name written out, or a constant holding it.
    reads = re.compile(
        r"(?:environ(?:\.get)?\(|environ\[|getenv\(|\w+ = )\s*[\"'](CELERYBASE_[A-Z_]+)[\"']"
    )
    read = set()
    for path in package.rglob("*.py"):
        read |= set(reads.findall(path.read_text("utf-8")))
    documented = {e.name: e for e in ext.discover_env_vars()}
    assert read and read <= set(documented), "name each one in a *_ENV constant with a #: comment"
    assert all(e.doc for e in documented.values())


def test_troubleshooting_and_its_test_citations_agree() -> None:
    troubleshooting = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    citations = (DOCS / "contributing" / "error-tests.md").read_text(encoding="utf-8")
    entries = re.findall(r"^\((err-[\w-]+)\)=$", troubleshooting, re.M)
    rows = dict(re.findall(r"^\| \{ref\}`(err-[\w-]+)` \| (.+) \|$", citations, re.M))
    assert len(entries) == len(set(entries)) > 20
    assert list(rows) == entries, "one row per troubleshooting entry, in the same order"
    tests = ROOT / "tests"
    sources = {
        p.relative_to(tests).as_posix(): p.read_text(encoding="utf-8")
        for p in tests.rglob("test_*.py")
    }
    missing = []
    for entry, cell in rows.items():
        cited = re.findall(r"`((?:\w+/)?test_\w+\.py)::(\w+)`", cell)
        assert cited, f"{entry}: cite at least one test"
        missing += [f"{f}::{t}" for f, t in cited if f"def {t}(" not in sources.get(f, "")]
    assert missing == []


def test_reference_shows_the_hook_and_signal_names() -> None:
    # Written out in docs/reference/api.md (autodoc would show tuple's docstring).
    api = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    assert f":value: {pytest_celerybase.HOOKS!r}" in api
    assert f":value: {pytest_celerybase.SIGNALS!r}" in api


# ------------------------------------------------------------------- timeline report
TIMELINE_DEMOS = FAILURES / "timeline"
_TIMES = re.compile(r"^ *\d+\.\d\d ms", re.M)


def timeline_section(stdout: str) -> str:
    """The 'celerybase timeline' section of a failure report, task ids masked."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "- celerybase timeline -" in line)
    end = next(
        i for i in range(start + 1, len(lines)) if lines[i].startswith(("=", "-", "_"))
    )
    return UUID.sub("<task-id>", "\n".join(lines[start:end])) + "\n"


def test_timeline_report_is_real(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The how-to shows the section a failing test's report gets, pasted from a run: it
    # must be what pytest prints now (times differ from run to run: compared masked).
    demos = sorted(TIMELINE_DEMOS.glob("test_*.py"))
    assert demos
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    problems = []
    for path in demos:
        shutil.copy(path, pytester.path / path.name)
        result = pytester.runpytest_subprocess("-p", "celerybase", path.name)
        result.assert_outcomes(failed=1)
        actual = timeline_section(result.stdout.str())
        expected_file = path.with_suffix(".txt")
        if os.environ.get("UPDATE_DOC_OUTPUTS") == "1":
            expected_file.write_text(actual, encoding="utf-8")
            continue
        expected = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
        if _TIMES.sub("<t> ms", actual) != _TIMES.sub("<t> ms", expected):
            diff = difflib.unified_diff(
                expected.splitlines(), actual.splitlines(),
                str(expected_file.relative_to(ROOT)), "actual", lineterm="",
            )
            problems.append("\n".join(diff))
    assert not problems, (
        "the timeline report differs from the docs (if intended: "
        "UPDATE_DOC_OUTPUTS=1 python -m pytest tests/test_docs.py):\n" + "\n".join(problems)
    )


# ------------------------------------------------------------------- tables fit the column
def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tables() -> Any:
    return _load_script("check_tables")


def _page(*tables: str) -> str:
    return f"<html><body><nav><table><tr><td>{'x' * 500}</td></tr></table></nav>" \
        f"<article>{''.join(tables)}</article></body></html>"


def _html_table(header: list[str], rows: list[list[str]], classes: str = "docutils") -> str:
    head = "".join(f"<th><p>{h}</p></th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td><p>{c}</p></td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _problems(tables: Any, html: str, scales: dict[str, float] | None = None) -> list[str]:
    found = tables.tables_of(html, "page.html", scales or {})
    return [p for t in found for p in tables.problems_of(t)]


def test_table_check_rejects_the_old_parity_layout(tables: Any) -> None:
    # The parity table as the manual showed it before the notes moved under each row:
    # seven columns side by side, cut off at 1280 px and on a phone (Chromium measured
    # 930 px of min-content width in the 736 px column).
    from pytest_celerybase.recorder.parity import PARITY

    header = ["Scenario", "Eager hooks", "Eager outcome", "Worker hooks", "Worker outcome",
              "Prefork hooks and outcome", "Note"]
    rows = [
        [s.title, s.eager.render_hooks(), s.eager.render_outcome(), s.worker.render_hooks(),
         s.worker.render_outcome(),
         "same as the worker" if s.prefork is None
         else f"{s.prefork.render_hooks()}; {s.prefork.render_outcome()}", s.note]
        for s in PARITY
    ]
    html = _page(_html_table(header, rows, "celerybase-parity docutils"))
    problems = _problems(tables, html, {"celerybase-parity": 0.85})
    assert len(problems) == 2, problems
    wide, phone = problems
    assert re.fullmatch(r"page\.html: table 1 needs (\d+) px, the column is 736 px", wide)
    assert int(re.findall(r"\d+", wide)[1]) > 900
    assert "400 px screen it (rows not stacked)" in phone


def test_table_check_accepts_a_small_table_and_measures_only_the_article(
    tables: Any,
) -> None:
    html = _page(_html_table(["key", "meaning"], [["`a`", "the first letter"]]))
    assert _problems(tables, html) == []


def test_code_does_not_break_but_wbr_and_spaces_do(tables: Any) -> None:
    word = "test_a_very_long_module_name.py::test_a_very_long_test_function_name_indeed"
    unbroken = f'<code class="literal"><span class="pre">{word}</span></code>'
    broken = unbroken.replace("::", "::<wbr>").replace("_", "_<wbr>")
    assert _problems(tables, _page(_html_table(["a", "b"], [["x", unbroken]]))) != []
    assert _problems(tables, _page(_html_table(["a", "b"], [["x", broken]]))) == []
    spaced = " ".join(["before_start,"] * 40)
    assert _problems(tables, _page(_html_table(["a", "b"], [["x", spaced]]))) == []


def test_a_stacked_table_fits_a_phone_cell_by_cell(tables: Any) -> None:
    label = '<p class="celerybase-label">Worker and prefork</p>'
    header = [f"column {i}" for i in range(4)]
    rows = [[f"{label}before_start, on_success {i}" for i in range(4)]]
    side_by_side = _problems(tables, _page(_html_table(header, rows)))
    assert len(side_by_side) == 1 and "(rows not stacked)" in side_by_side[0]
    assert _problems(tables, _page(_html_table(header, rows, "celerybase-stack"))) == []
    # Stacking does not help a wide screen ...
    seven = [[f"before_start, on_success {i}" for i in range(7)]]
    problems = _problems(tables, _page(_html_table(header + header[:3], seven, "celerybase-stack")))
    assert len(problems) == 1 and "the column is 736 px" in problems[0]
    # ... nor a phone when one cell alone is wider than its column.
    code = f"<code>{'x' * 60}</code>"
    problems = _problems(tables, _page(_html_table(["a", "b"], [["x", code]], "celerybase-stack")))
    assert len(problems) == 1 and "a cell of it (rows stacked) needs" in problems[0]


def test_the_style_sheet_must_stack_what_the_check_assumes_stacked(
    tables: Any, tmp_path: Path
) -> None:
    css = (DOCS / "_static" / "celerybase.css").read_text(encoding="utf-8")
    assert tables.unstacked(css) == []
    assert tables.font_scales(css) == {"celerybase-parity": 0.85}
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "celerybase.css").write_text("", encoding="utf-8")
    (tmp_path / "page.html").write_text(_page(_html_table(["a"], [["b"]])), encoding="utf-8")
    count, problems = tables.check_site(tmp_path)
    assert count == 1
    assert problems == [
        f"_static/celerybase.css does not stack table.{name}" for name in tables.STACKED
    ]


# ------------------------------------------------------ the tutorial, rebuilt from its page
@pytest.fixture(scope="module")
def rebuild() -> Any:
    return _load_script("rebuild_tutorial")


def _captioned(caption: str, code: str) -> str:
    return (
        '<div class="literal-block-wrapper docutils container"><div class="code-block-caption">'
        f'<span class="caption-text">{caption}</span><a class="headerlink">¶</a></div>'
        '<div class="highlight-python notranslate"><div class="highlight"><pre><span></span>'
        f"{code}</pre></div></div></div>"
    )


def test_the_rebuild_reads_the_captioned_blocks_of_the_article(rebuild: Any) -> None:
    html = (
        '<nav><span class="caption-text">Learn</span></nav><article>'
        "<pre>$ pip install pytest-celerybase</pre>"
        + _captioned("examples/shop/db.py", '<span class="kn">import</span> os\n')
        + _captioned("examples/shop/db.py (continued)", "X = &quot;&lt;a&gt;&quot;\n")
        + _captioned("examples/shop/tasks.py (continued)", "pass\n")
        + _captioned("A diagram", "not a file\n")
        + "</article>"
    )
    files, problems = rebuild.pieces_of(html)
    assert files == {
        "examples/shop/db.py": ["import os\n", 'X = "<a>"\n'],
        "examples/shop/tasks.py": ["pass\n"],
    }
    assert problems == [
        "tutorial.html: the block captioned 'examples/shop/tasks.py (continued)' needs "
        "no '(continued)'"
    ]


def _source(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def _whole_example(rebuild: Any) -> dict[str, list[str]]:
    paths = [p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").rglob("*.py")]
    return {
        path: [_source(path)]
        for path in paths
        if "__pycache__" not in path
        and path not in rebuild.REPOSITORY_ONLY
        and not path.startswith(rebuild.OTHER_PAGES)
    }


def test_the_rebuild_accepts_every_file_whole(rebuild: Any) -> None:
    assert rebuild.check_pieces(_whole_example(rebuild)) == []


def test_the_rebuild_wants_every_line_outside_the_tests(rebuild: Any) -> None:
    files = _whole_example(rebuild)
    users = "examples/tests/test_shop_users.py"
    head, _, tests = _source(users).partition("\ndef page(")
    first_test = tests[tests.index("def test_") :]
    files[users] = [head, first_test]  # the helpers page() and names() left out
    del files["examples/shop/orders.py"]
    problems = rebuild.check_pieces(files)
    page = "def page(*users: tuple[int, str, str]) -> dict[str, Any]:"
    line = _source(users).splitlines().index(page) + 1
    assert problems == [
        "tutorial.html: examples/shop/orders.py is not shown",
        f"{users}: 5 line(s) outside the tests are not shown, the first is line {line}: "
        f"{page!r}",
    ]


def test_the_rebuild_wants_pieces_of_the_real_files_shown_once(rebuild: Any) -> None:
    files = _whole_example(rebuild)
    db = "examples/shop/db.py"
    files[db] = [*files[db], 'MARK_SENT = text("UPDATE orders SET receipt_sent = 1")']
    tasks = "examples/shop/tasks.py"
    files[tasks] = [*files[tasks], "def line_total_cents(unit_cents: int, qty: int) -> int:"]
    assert rebuild.check_pieces(files) == [
        f"{db}: a piece is not in the file: 'MARK_SENT = text(\"UPDATE orders SET "
        "receipt_sent = 1\")' ...",
        f"{tasks}: line {_source(tasks).splitlines().index(files[tasks][-1]) + 1} is "
        "shown twice",
    ]


def test_the_howto_index_and_the_sidebar_group_the_guides_alike() -> None:
    # The sidebar shows the captions of the root page's toctrees only, so the guides are
    # listed there, one toctree per group of docs/how-to/index.md.
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctrees = re.findall(r"```\{toctree\}\n(.*?)```", index, re.S)
    sidebar = [
        [e.removeprefix("how-to/") for e in re.findall(r"^(how-to/[\w-]+)$", body, re.M)]
        for body in toctrees
        if re.search(r":caption: \"?How-to: ", body)
    ]
    howto = (DOCS / "how-to" / "index.md").read_text(encoding="utf-8")
    groups = [
        re.findall(r"^- \{doc\}`([\w-]+)`", section, re.M)
        for section in re.split(r"^## ", howto, flags=re.M)[1:]
    ]
    guides = {p.stem for p in (DOCS / "how-to").glob("*.md")} - {"index"}
    assert len(sidebar) == len(groups) == 3
    assert sidebar == groups
    assert sorted(g for group in groups for g in group) == sorted(guides)
# ------------------------------------------------------------ lifecycle coverage report
COVERAGE_PROJECT = EXAMPLES / "lifecycle_coverage"
# What the how-to shows: the report of the payment tests alone (with the fail option),
# then of every test, and the JSON file the second run writes.
COVERAGE_RUNS = {
    "coverage-gaps.txt": ("tests/test_payments.py", "--celerybase-coverage-fail"),
    "coverage-all.txt": ("--celerybase-coverage", "--celerybase-coverage-json=coverage.json"),
}


def coverage_section(stdout: str) -> str:
    """The 'celerybase lifecycle coverage' section of a run's summary, title included."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "= celerybase lifecycle coverage =" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def test_lifecycle_coverage_outputs_are_real(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh process, as a user's run: the project app registers the shared tasks of the
    # process (those of this suite's modules would be reported too).
    monkeypatch.setenv("COLUMNS", "80")  # the section's title line is as wide as the terminal
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    here = str(Path(pytest_celerybase.__file__).resolve().parent.parent)
    paths = [here, os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    project = pytester.path / COVERAGE_PROJECT.name
    shutil.copytree(COVERAGE_PROJECT, project, ignore=_PYCACHE)
    monkeypatch.chdir(project)
    actual: dict[str, str] = {}
    for name, args in COVERAGE_RUNS.items():
        result = pytester.runpytest_subprocess("-p", "celerybase", "-p", "pytest_mock", *args)
        assert result.ret == (1 if "--celerybase-coverage-fail" in args else 0)
        assert set(result.parseoutcomes()) == {"passed"}
        actual[name] = coverage_section(result.stdout.str())
    actual["lifecycle-coverage.json"] = (project / "coverage.json").read_text(encoding="utf-8")
    problems = []
    for name, text in actual.items():
        expected_file = COVERAGE_PROJECT / name
        if os.environ.get("UPDATE_DOC_OUTPUTS") == "1":
            expected_file.write_text(text, encoding="utf-8")
            continue
        expected = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
        if text != expected:
            diff = difflib.unified_diff(
                expected.splitlines(), text.splitlines(),
                str(expected_file.relative_to(ROOT)), "actual", lineterm="",
            )  # fmt: skip
            problems.append("\n".join(diff))
    assert not problems, (
        "the lifecycle coverage report differs from the docs (if intended: "
        "UPDATE_DOC_OUTPUTS=1 python -m pytest tests/test_docs.py):\n" + "\n".join(problems)
    )
