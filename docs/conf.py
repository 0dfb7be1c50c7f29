"""Sphinx configuration of the pytest-celerybase manual.

Built warning-free in CI: ``sphinx-build -W --keep-going -n docs docs/_build/html``.
No page needs the network: there is no intersphinx, so references to other projects'
objects are listed in ``nitpick_ignore_regex`` below; a broken reference to one of ours
still fails the build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # the package itself, also without an install

import pytest_celerybase  # noqa: E402

project = "pytest-celerybase"
author = "pytest-celerybase developers"
copyright = "pytest-celerybase developers"
release = pytest_celerybase.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_copybutton",
    "celerybase_docs",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "examples/**/*.md", "README.md"]
# docs/examples holds test files included by pages, not pages.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

nitpicky = True
# Other projects' objects (no intersphinx: the build must not need the network) and
# builtins.  Only pytest_celerybase's own names must resolve.
_EXTERNAL = (
    r"(celery|kombu|billiard|sqlalchemy|requests|responses|fakeredis|redis|urllib3"
    r"|prometheus_client|pytest|_pytest|pluggy|collections|typing|typing_extensions|types"
    r"|contextlib|logging|threading|datetime|decimal|smtplib|email|pathlib|os|re"
    r"|concurrent|queue|socket|dataclasses|enum|abc|builtins)(\..*)?"
)
_BUILTINS = (
    r"(None|Any|str|int|float|bool|bytes|dict|list|tuple|set|frozenset|object|type"
    r"|BaseException|Exception|ValueError|TypeError|LookupError|RuntimeError|TimeoutError"
    r"|AssertionError|NotImplementedError|Callable|Iterator|Iterable|Generator|Mapping"
    r"|MutableMapping|Sequence|Literal|Self|Engine|Celery|Task|AsyncResult|EagerResult"
    r"|Signature|RequestsMock|FakeRedis|Session|TracebackType|ExceptionInfo|T|P|R)"
)
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL),
    (r"py:.*", _BUILTINS),
    (r"py:class", r"pytest_celerybase\..*\._\w+"),  # private types in annotations
    (r"py:class", r"pytest_celerybase\..*\.[A-Z]"),  # type variables (T, R)
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

add_module_names = False
# Public-looking members that are plumbing between the package's modules, not API for
# test authors: left out of the reference.
celerybase_internal_members = ["add_hook", "watch_worker_tasks", "inflight", "from_options"]

html_theme = "furo"
html_title = f"pytest-celerybase {release}"
# The repository, as pyproject.toml names it for PyPI: "view" and "edit this page" at the
# top of each page, an icon in the footer, and links in the sidebar (docs/index.md).
SOURCE = re.search(
    r'^Source\s*=\s*"([^"]+)"', (DOCS.parent / "pyproject.toml").read_text("utf-8"), re.M
)[1]
# Octicons' mark-github (MIT).
_GITHUB_ICON = (
    '<svg stroke="currentColor" fill="currentColor" stroke-width="0" viewBox="0 0 16 16">'
    '<path fill-rule="evenodd" d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07'
    ".55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82"
    "-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52"
    ".28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08"
    "-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82"
    " 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29"
    ".25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0 0 16 8c0"
    '-4.42-3.58-8-8-8z"></path></svg>'
)
html_theme_options = {
    "source_repository": f"{SOURCE}/",
    "source_branch": "main",
    "source_directory": "docs/",
    "top_of_page_buttons": ["view", "edit"],
    "footer_icons": [
        {"name": "GitHub", "url": SOURCE, "html": _GITHUB_ICON, "class": ""},
    ],
}
html_static_path = ["_static"]
html_css_files = ["celerybase.css"]
pygments_style = "friendly"
pygments_dark_style = "monokai"

copybutton_prompt_text = r"\$ |>>> "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"
