"""Lifecycle coverage: which hook overrides of the task classes the suite never ran.

``tally`` (what one test's executions ran, read from its recorder), ``collect`` (the
session's per-class counts, the project app's classes, and merging xdist workers'),
``report`` (the terminal section and the JSON document).  The plugin uses them only when
``--celerybase-coverage`` (or its ``-json``/``-fail`` forms) is given.  No pytest import.
"""

from __future__ import annotations

from pytest_celerybase.coverage.collect import ClassCoverage, LifecycleCoverage, MethodCoverage
from pytest_celerybase.coverage.report import SECTION, document, render
from pytest_celerybase.coverage.tally import MODES, TestTally

__all__ = [
    "MODES",
    "SECTION",
    "ClassCoverage",
    "LifecycleCoverage",
    "MethodCoverage",
    "TestTally",
    "document",
    "render",
]
