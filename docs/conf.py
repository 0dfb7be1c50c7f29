"""Sphinx configuration of the pytest-celerybase manual.

Built warning-free in CI: ``sphinx-build -W --keep-going -n docs docs/_build/html``.
No page needs the network: there is no intersphinx, so references to other projects'
objects are listed in ``nitpick_ignore_regex`` below; a broken reference to one of ours
still fails the build.
"""

from __future__ import annotations

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
html_static_path = ["_static"]
html_css_files = ["celerybase.css"]
pygments_style = "friendly"
pygments_dark_style = "monokai"

copybutton_prompt_text = r"\$ |>>> "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"
