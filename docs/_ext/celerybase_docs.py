"""Sphinx extension: the reference pages read the plugin itself, so they cannot drift.

Object types (each with a directive and a role of the same name, cross-referenced and
checked by ``-n``): ``fixture``, ``marker``, ``confval`` (ini keys), plus Sphinx's own
``option`` and ``envvar``.

Directives that list what the plugin defines, as found at build time:

* ``celerybase-fixtures`` - every public fixture in the namespace of
  ``pytest_celerybase.plugin`` (what pytest sees), with its docstring, the fixtures it
  requests and the type it gives (a cross-reference: a fixture returning one of our
  classes that the reference does not document fails the build).
* ``celerybase-ini`` / ``celerybase-options`` - the ini keys and command-line options,
  recorded by calling the plugin's ``pytest_addoption`` with a recording parser.
* ``celerybase-markers`` - the markers its ``pytest_configure`` registers.
* ``celerybase-envvars`` - the environment variables the package reads: module
  constants named ``*_ENV`` holding a ``CELERYBASE_*`` name, documented by their ``#:``
  comment (``tests/test_docs.py`` checks no other ``CELERYBASE_*`` name is read).
* ``celerybase-parity`` - the eager/worker/prefork table from
  ``pytest_celerybase.recorder.parity.PARITY`` (``:rows:`` picks scenarios by key, ``:columns:
  hooks`` leaves out the outcomes, ``:columns: lifecycle`` shows hooks and Celery signals
  in order; a prefork column appears when a row shown differs on the prefork pool).
* ``celerybase-held-parity`` - the held (``sent_tasks``) vs broker table from
  ``pytest_celerybase.recorder.parity.HELD_PARITY``.

The ``celerybase-*`` directives emit reStructuredText (docstrings are reST): in a MyST
page, use them inside an ``{eval-rst}`` block.  ``celerybase-parity`` works anywhere.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from celerybase_discovery import (
    EnvVarDoc,
    FixtureDoc,
    RecordingParser,
    discover_env_vars,
    discover_fixtures,
    discover_markers,
    discover_settings,
    is_ours_unexported,
    package_modules,
)
from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

# --------------------------------------------------------------------------- rendering


def _indent(text: str, prefix: str = "   ") -> list[str]:
    return [prefix + line if line.strip() else "" for line in text.splitlines()]


def _xref_type(gives: str | None, target: str | None) -> str:
    if target is not None:
        return f":py:class:`~{target}`"
    return f"``{gives}``" if gives else "(nothing)"


def render_fixtures(
    fixtures: Sequence[FixtureDoc], examples: dict[str, str] | None = None
) -> list[str]:
    """The fixtures' entries; ``examples`` maps a fixture's name to a usage snippet."""
    lines: list[str] = []
    for fx in fixtures:
        facts = [f"**Gives** {_xref_type(fx.gives, fx.gives_target)}"]
        if fx.requests:
            facts.append("**requests** " + ", ".join(f":fixture:`{r}`" if r in {
                f.name for f in fixtures} else f"``{r}``" for r in fx.requests))
        facts.append(f"**scope** ``{fx.scope}``" + (", autouse" if fx.autouse else ""))
        lines += [f".. fixture:: {fx.name}", "", "   " + " · ".join(facts), ""]
        lines += [*_indent(fx.doc), ""]
        if examples and fx.name in examples:
            lines += ["   **Example**", "", "   .. code-block:: python", ""]
            lines += [*_indent(examples[fx.name], "      "), ""]
        if is_ours_unexported(fx.gives_target):
            # The object's own API, documented where the reader meets it.
            lines += [f"   .. autoclass:: {fx.gives_target}", "      :members:", ""]
    return lines


def render_ini(settings: RecordingParser) -> list[str]:
    lines: list[str] = []
    for ini in settings.ini:
        default = "" if ini.default in (None, "") else f" (default ``{ini.default}``)"
        kind = f"**type** ``{ini.type}``; " if ini.type else ""
        lines += [f".. confval:: {ini.name}", "", f"   {kind}set in the ``[pytest]`` "
                  f"ini section or ``[tool.pytest.ini_options]``{default}.", ""]
        lines += [*_indent(ini.help), ""]
    return lines or ["The plugin adds no ini keys.", ""]


def render_options(settings: RecordingParser) -> list[str]:
    lines: list[str] = []
    for opt in settings.options:
        flags = ", ".join(
            f"{flag} {opt.metavar or 'VALUE'}" if opt.takes_value else flag
            for flag in opt.flags
        )
        lines += [f".. option:: {flags}", ""]
        lines += [*_indent(opt.help), ""]
    return lines or ["The plugin adds no command-line options.", ""]


def render_markers(markers: Sequence[tuple[str, str]]) -> list[str]:
    lines: list[str] = []
    for signature, description in markers:
        name = signature.split("(", 1)[0]
        lines += [f".. marker:: {name}", "", f"   ``@pytest.mark.{signature}``", ""]
        lines += [*_indent(description), ""]
    return lines


def render_env_vars(env_vars: Sequence[EnvVarDoc]) -> list[str]:
    lines: list[str] = []
    for env in env_vars:
        lines += [f".. envvar:: {env.name}", ""]
        lines += [*_indent(env.doc or "(undocumented)"), ""]
    return lines or ["The plugin reads no environment variables.", ""]


# --------------------------------------------------------------------------- directives


class _GeneratedDirective(SphinxDirective):
    has_content = False
    render: Callable[[], list[str]]

    def lines(self) -> list[str]:
        return type(self).render()

    def run(self) -> list[nodes.Node]:
        node = nodes.container()
        source = f"<generated by {self.name}>"
        content = StringList(self.lines(), source=source)
        nested_parse_with_titles(self.state, content, node)
        # Rebuild when the package changes (its modules are not tracked by Sphinx).
        for module in package_modules():
            path = getattr(module, "__file__", None)
            if path:
                self.env.note_dependency(path)
        return list(node.children)


class FixturesDirective(_GeneratedDirective):
    """``:examples: path`` (from the docs folder) names a test module holding a usage
    snippet for every fixture: ``test_<fixture>``, or ``class Test<Fixture>`` for one
    that needs a fixture of its own beside it (``celerybase_config`` overridden)."""

    option_spec = {"examples": directives.path}  # noqa: RUF012 - docutils' API

    def lines(self) -> list[str]:
        fixtures = discover_fixtures()
        examples: dict[str, str] = {}
        if "examples" in self.options:
            path = Path(self.env.srcdir) / self.options["examples"]
            if not path.exists():
                raise self.error(f"{path} does not exist")
            self.env.note_dependency(str(path))
            source = path.read_text(encoding="utf-8")
            missing = []
            for fx in fixtures:
                camel = "".join(part.capitalize() for part in fx.name.split("_"))
                snippet = _function_source(source, f"test_{fx.name}") or _class_source(
                    source, f"Test{camel}"
                )
                if snippet is None:
                    missing.append(fx.name)
                else:
                    examples[fx.name] = snippet
            if missing:
                raise self.error(f"no usage snippet in {path} for: {', '.join(missing)}")
        return render_fixtures(fixtures, examples)


class IniDirective(_GeneratedDirective):
    render = staticmethod(lambda: render_ini(discover_settings()))


class OptionsDirective(_GeneratedDirective):
    render = staticmethod(lambda: render_options(discover_settings()))


class MarkersDirective(_GeneratedDirective):
    render = staticmethod(lambda: render_markers(discover_markers()))


class EnvVarsDirective(_GeneratedDirective):
    render = staticmethod(lambda: render_env_vars(discover_env_vars()))


_INLINE = re.compile(r"`([^`]+)`|celery#(\d+)")


def inline_nodes(text: str) -> list[nodes.Node]:
    """Markdown-ish cell text: `code` becomes a literal, celery#N a link to the issue."""
    out: list[nodes.Node] = []
    pos = 0
    for match in _INLINE.finditer(text):
        if match.start() > pos:
            out.append(nodes.Text(text[pos : match.start()]))
        if match.group(1) is not None:
            out.append(nodes.literal(match.group(1), match.group(1)))
        else:
            number = match.group(2)
            url = f"https://github.com/celery/celery/issues/{number}"
            out.append(nodes.reference(match.group(0), match.group(0), refuri=url))
        pos = match.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


class Cell(NamedTuple):
    """A body cell: its paragraphs, how many columns it spans and its label (the header
    text a narrow screen shows above it, where the table's rows are stacked)."""

    paragraphs: tuple[str, ...]
    span: int = 1
    label: str = ""


class Row(NamedTuple):
    cells: tuple[Cell, ...]
    note: str = ""  # shown under the row, across the whole table


def _table(header: Sequence[str], rows: Sequence[Row]) -> nodes.table:
    table = nodes.table(classes=["celerybase-parity"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)

    def entry(paragraphs: Sequence[str], span: int = 1) -> nodes.entry:
        cell = nodes.entry(morecols=span - 1) if span > 1 else nodes.entry()
        for text in paragraphs:
            cell += nodes.paragraph("", "", *inline_nodes(text))
        return cell

    head = nodes.row()
    for title in header:
        head += entry([title])
    thead = nodes.thead()
    thead += head
    group += thead
    tbody = nodes.tbody()
    for cells, note in rows:
        body = nodes.row(classes=["celerybase-noted"] if note else [])
        for cell in cells:
            body += entry(cell.paragraphs, cell.span)
            if cell.label:
                body[-1]["celerybase_label"] = cell.label
        tbody += body
        if note:
            below = nodes.row(classes=["celerybase-note"])
            below += entry([note], len(header))
            tbody += below
    group += tbody
    return table


class ParityDirective(SphinxDirective):
    """The eager vs worker table, from ``PARITY`` as measured by ``tests/worker/test_parity.py``.

    A prefork column is added when one of the rows shown differs on the prefork pool
    (``Scenario.prefork``).  Modes that behave the same share one cell spanning their
    columns; each row's note is a full-width row under it.
    """

    option_spec = {  # noqa: RUF012 - docutils' API
        "rows": directives.unchanged,
        "columns": lambda arg: directives.choice(arg, ("all", "hooks", "lifecycle")),
    }

    def run(self) -> list[nodes.Node]:
        from pytest_celerybase.recorder import parity as _parity

        self.env.note_dependency(_parity.__file__)
        scenarios = list(_parity.PARITY)
        if "rows" in self.options:
            by_key = {s.key: s for s in scenarios}
            keys = self.options["rows"].split()
            unknown = [k for k in keys if k not in by_key]
            if unknown:
                raise self.error(
                    f"unknown parity rows {unknown}; valid keys: {', '.join(by_key)}"
                )
            scenarios = [by_key[k] for k in keys]
        header, rows = parity_table(scenarios, self.options.get("columns", "all"))
        return [_table(header, rows)]


def _merged(
    title: str,
    header: Sequence[str],
    names: Sequence[str],
    cells: Sequence[tuple[str, ...]],
    suffix: str = "",
) -> list[Cell]:
    """The scenario's cell, then one cell per run of equal neighbouring modes, labelled
    with its column's header, or with the modes' ``names`` when it spans several."""
    out = [Cell((title,), label="Scenario")]
    i = 0
    while i < len(cells):
        j = i + 1
        while j < len(cells) and cells[j] == cells[i]:
            j += 1
        many = list(names[i:j])
        label = header[i] if j == i + 1 else f"{', '.join(many[:-1])} and {many[-1]}{suffix}"
        out.append(Cell(cells[i], span=j - i, label=label[:1].upper() + label[1:]))
        i = j
    return out


def parity_table(scenarios: Sequence[Any], columns: str) -> tuple[list[str], list[Row]]:
    """Header and rows of the parity table of ``scenarios``.

    ``all``: each mode's hooks with its outcome under them, the note under the row;
    ``hooks``: the hooks only, the note under the row; ``lifecycle``: hooks and signals
    in order, no note.
    """
    prefork = any(s.prefork is not None for s in scenarios)
    modes = ["eager", "worker", *(["prefork"] * prefork)]

    def outcomes(s: Any) -> list[Any]:
        return [s.eager, s.worker, *([s.on_prefork] * prefork)]

    def cell(o: Any) -> tuple[str, ...]:
        if columns == "lifecycle":
            return (o.render_lifecycle(),)
        if columns == "hooks":
            return (o.render_hooks(),)
        if o.render_hooks() == "-":  # cannot happen in this mode: the outcome says why
            return (o.render_outcome(),)
        return (o.render_hooks(), "→ " + o.render_outcome())

    suffix = {"all": "", "hooks": " hooks", "lifecycle": ": hooks and signals"}[columns]
    header = [m.capitalize() + suffix for m in modes]
    rows = [
        Row(
            tuple(_merged(s.title, header, modes, [cell(o) for o in outcomes(s)], suffix)),
            "" if columns == "lifecycle" else s.note,
        )
        for s in scenarios
    ]
    return ["Scenario", *header], rows


class HeldParityDirective(SphinxDirective):
    """The held vs broker table, from ``HELD_PARITY`` as measured by
    ``tests/sent_tasks/test_parity.py``."""

    def run(self) -> list[nodes.Node]:
        from pytest_celerybase.recorder import parity as _parity

        self.env.note_dependency(_parity.__file__)
        header = ["Held, then sent_tasks.run()", "Broker and worker"]
        names = ["held", "on a broker"]
        rows = [
            Row(tuple(_merged(s.title, header, names, [(s.held,), (s.broker,)])), s.note)
            for s in _parity.HELD_PARITY
        ]
        return [_table(["Scenario", *header], rows)]


class FailureDirective(SphinxDirective):
    """What a failure demo prints, and optionally the demo test itself.

    ``.. celerybase-failure:: test_misuse_assertions.py::test_unknown_hook`` shows the
    section of ``docs/examples/failures/test_misuse_assertions.txt`` for that test
    (written and checked by ``tests/test_docs.py``); ``:code:`` shows the test function
    first.  A test or section that does not exist fails the build.
    """

    required_arguments = 1
    option_spec = {"code": directives.flag}  # noqa: RUF012 - docutils' API

    def run(self) -> list[nodes.Node]:
        file, _, test = self.arguments[0].partition("::")
        folder = Path(self.env.srcdir) / "examples" / "failures"
        source, output = folder / file, (folder / file).with_suffix(".txt")
        for path in (source, output):
            if not path.exists():
                raise self.error(f"{path} does not exist")
            self.env.note_dependency(str(path))
        text = output.read_text(encoding="utf-8")
        start, end = f"[{test}]\n", f"[/{test}]\n"
        if start in text:
            text = text[text.index(start) + len(start) : text.index(end)]
        elif test and "[" in text.split("\n", 1)[0]:
            raise self.error(f"no output for {test!r} in {output}")
        result: list[nodes.Node] = []
        if "code" in self.options:
            module_source = source.read_text(encoding="utf-8")
            code = (
                _function_source(module_source, test.split("::")[-1])
                if test
                else module_source.strip()
            )
            if code is None:
                raise self.error(f"no test {test!r} in {source}")
            result.append(nodes.literal_block(code, code, language="python"))
        result.append(nodes.literal_block(text, text, language="text"))
        return result


def _class_source(module_source: str, name: str) -> str | None:
    """The source of top-level class ``name`` (decorators included)."""
    tree = ast.parse(module_source)
    lines = module_source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            return "\n".join(lines[first - 1 : node.end_lineno])
    return None


def _function_source(module_source: str, name: str) -> str | None:
    """The source of function ``name`` (decorators included), at any nesting depth."""
    tree = ast.parse(module_source)
    lines = module_source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            return textwrap.dedent("\n".join(lines[first - 1 : node.end_lineno]))
    return None


def caption_outputs(app: Sphinx, doctree: nodes.document) -> None:
    """Caption every plain-text literal block "Output" (class ``celerybase-output``).

    In this manual a ``text`` block is what pytest or the plugin prints (the failure
    demos, error messages); a reader must tell it from code at a glance.  A block with a
    caption of its own is left as it is.
    """
    for block in list(doctree.findall(nodes.literal_block)):
        if block.get("language") != "text" or isinstance(block.parent, nodes.container):
            continue
        wrapper = nodes.container(
            "", literal_block=True, classes=["literal-block-wrapper", "celerybase-output"]
        )
        block.replace_self(wrapper)
        wrapper += nodes.caption("Output", "", nodes.Text("Output"))
        wrapper += block
        doctree.set_id(wrapper)  # a captioned block is a link target


def label_table_cells(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every body cell of a table with a header the header's text as a label.

    The labels are hidden on wide screens; on narrow ones (``celerybase.css``) the rows
    of these tables are stacked, one cell under the other, and the labels say which
    column each cell was in.  A cell may bring its own label (``celerybase_label``:
    a parity cell spanning several modes).
    """
    if app.builder.format != "html":
        return
    for table in doctree.findall(nodes.table):
        heads = list(table.findall(nodes.thead))
        if not heads or not heads[0].children:
            continue
        header = [
            (entry.astext().strip(), entry.get("morecols", 0))
            for entry in heads[0].children[0].children
        ]
        titles = [title for title, more in header for _ in range(more + 1)]
        for body in table.findall(nodes.tbody):
            for row in body.children:
                column = 0
                for entry in row.children:
                    span = entry.get("morecols", 0) + 1
                    label = entry.get("celerybase_label") or " / ".join(
                        dict.fromkeys(t for t in titles[column : column + span] if t)
                    )
                    column += span
                    if label and span < len(titles):
                        entry.insert(
                            0, nodes.paragraph("", label, classes=["celerybase-label"])
                        )
        table["classes"].append("celerybase-stack")
        for literal in list(table.findall(nodes.literal)):
            _breakable(literal)


# Where a long identifier in a table cell may break (after the separator).
_BREAK_AFTER = re.compile(r"(?<=::)|(?<=[./_=,])(?=\w)")
_LONG_LITERAL = 40


def _breakable(literal: nodes.literal) -> None:
    """Let a long inline literal (``test_file.py::test_name``) break in a table cell:
    an unbreakable one sets the column's width, wider than a phone's screen.  ``<wbr>``
    breaks only where the cell is too narrow, and copying the text gives it unchanged."""
    text = literal.astext()
    if len(text) <= _LONG_LITERAL or not all(isinstance(c, nodes.Text) for c in literal.children):
        return
    pieces = [piece for piece in _BREAK_AFTER.split(text) if piece]
    literal.clear()
    for i, piece in enumerate(pieces):
        if i:
            literal += nodes.raw("", "<wbr>", format="html")
        literal += nodes.Text(piece)


def skip_celery_task_members(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Leave out what the bases inherit unchanged from ``celery.Task`` (Celery documents
    it), and ``celerybase_internal_members``; members a base defines or overrides stay,
    and so do members of our other classes that share a name with one of ``Task``'s
    (``SentTasks.run``, ``SentTask.priority``)."""
    if what not in ("class", "exception"):
        return None
    if name in app.config.celerybase_internal_members:
        return True
    from celery import Task

    if name in vars(Task) and name not in _names_we_define() and not _defined_here(obj):
        return True
    return None


def _defined_here(member: Any) -> bool:
    """Whether a class member (function, property, slot) comes from this package."""
    for candidate in (
        getattr(member, "__func__", None),
        getattr(member, "fget", None),
        getattr(member, "__objclass__", None),  # a __slots__ member
        member if inspect.isfunction(member) else None,
    ):
        if candidate is not None and str(getattr(candidate, "__module__", "")).startswith(
            "pytest_celerybase"
        ):
            return True
    return False


@functools.cache
def _names_we_define() -> frozenset[str]:
    """Names a base keeps although ``celery.Task`` has them: every attribute a task class
    of this package defines or annotates, and every one a class of a public module
    annotates or documents (``#:``: a dataclass field, an instance attribute).  Members
    of our other classes are kept by :func:`_defined_here` instead, so a record's
    ``priority`` or ``run`` does not bring Celery's into the bases' pages."""
    from celery import Task
    from sphinx.pycode import ModuleAnalyzer

    names: set[str] = set()
    for module in package_modules():
        public = not any(part.startswith("_") for part in module.__name__.split("."))
        if public:
            attr_docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
            names.update(name for _, name in attr_docs)
        for obj in vars(module).values():
            if not inspect.isclass(obj) or obj.__module__ != module.__name__:
                continue
            if issubclass(obj, Task):
                names.update(vars(obj))
            if issubclass(obj, Task) or public:
                names.update(getattr(obj, "__annotations__", {}))
    return frozenset(names)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("celerybase_internal_members", [], "env", list)
    app.connect("autodoc-skip-member", skip_celery_task_members)
    app.connect("doctree-resolved", label_table_cells)
    app.connect("doctree-read", caption_outputs)
    app.add_object_type(
        "fixture", "fixture", objname="fixture", indextemplate="pair: %s; fixture"
    )
    app.add_object_type("marker", "marker", objname="marker", indextemplate="pair: %s; marker")
    app.add_object_type(
        "confval", "confval", objname="ini key", indextemplate="pair: %s; ini key"
    )
    app.add_directive("celerybase-fixtures", FixturesDirective)
    app.add_directive("celerybase-ini", IniDirective)
    app.add_directive("celerybase-options", OptionsDirective)
    app.add_directive("celerybase-markers", MarkersDirective)
    app.add_directive("celerybase-envvars", EnvVarsDirective)
    app.add_directive("celerybase-parity", ParityDirective)
    app.add_directive("celerybase-held-parity", HeldParityDirective)
    app.add_directive("celerybase-failure", FailureDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
