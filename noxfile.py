"""Compatibility matrix for pytest-celerybase (``pip install nox``, then ``nox``).

Every session installs the package (not editable) plus the test tools into a fresh
virtualenv and runs the same two commands as the README: the plugin's own suite
(``python -m pytest``) and the examples (``python -m pytest -p celerybase examples``).
Extra arguments go to both: ``nox -s oldest -- -x -q``.

Sessions (``nox -l`` lists them):

* ``newest-3.10`` ... ``newest-3.13``: the newest release of every dependency, on every
  Python.
* ``oldest``: Python 3.10 with every dependency pinned to the floor ``pyproject.toml``
  declares (read from it, so the floors are by construction exactly what is tested).
* ``celery(celery='5.3')`` ... ``celery(celery='5.7')``: the newest patch release of each
  Celery minor on Python 3.11, everything else newest.
* ``pytest8_sqlalchemy20``: the newest pytest 8.x with the newest SQLAlchemy 2.0.x.

``.ci/matrix.sh`` runs the reduced matrix (``oldest`` + ``newest-3.13``).

Interpreters: a session whose Python is not installed is skipped, not failed, and nox
never downloads one.  Interpreters installed with pyenv are found without activating
them (``pyenv`` shims alone only run the active versions).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
OLDEST_PYTHON = PYTHONS[0]
CELERY_PYTHON = "3.11"
CELERY_MINORS = ["5.3", "5.4", "5.5", "5.6", "5.7"]
# The oldest set also pins the transport layer to what Celery 5.3.0 was released with:
# kombu is not a direct dependency (Celery's), and the newest kombu's Redis transport
# refuses redis-py 5.0 (our floor) with VersionMismatch.
OLDEST_TRANSITIVE = ["kombu==5.3.0"]
# Test-only tools (not runtime dependencies): any release compatible with the pins.
TEST_TOOLS = ["pytest-xdist", "pytest-randomly"]
# Printed by every session so its log says what was actually tested.
REPORTED = [
    "celery", "kombu", "billiard", "pytest", "sqlalchemy", "pytest-mock", "fakeredis",
    "redis", "requests", "responses", "urllib3", "prometheus-client",
]  # fmt: skip

ROOT = Path(__file__).parent
# One line, so nox echoes it compactly: the installed versions, "-" when absent.
_VERSIONS = (
    "import sys, importlib.metadata as m; print('python', sys.version.split()[0]); "
    "d = {x.metadata['Name'].lower().replace('_', '-'): x.version for x in m.distributions()}; "
    f"[print(n, d.get(n, '-')) for n in {REPORTED!r}]"
)

nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
nox.options.default_venv_backend = "uv|virtualenv"  # uv when installed, else virtualenv
nox.options.sessions = ["newest", "oldest", "celery", "pytest8_sqlalchemy20"]


def _expose_pyenv_interpreters() -> None:
    """Put ``pythonX.Y`` of each pyenv-installed version on PATH (newest patch wins).

    A pyenv shim for an inactive version exists on PATH but fails when run, which nox
    would report as a failure instead of a skip; a directory of symlinks to the real
    interpreters, first on PATH, avoids that without activating anything.
    """
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(root) / "versions"
    if not versions.is_dir():
        return
    links = ROOT / ".nox" / "_interpreters"
    links.mkdir(parents=True, exist_ok=True)
    for minor in PYTHONS:
        candidates = [
            p
            for p in versions.glob(f"{minor}.*")
            if re.fullmatch(rf"{re.escape(minor)}\.\d+", p.name)
            and (p / "bin" / f"python{minor}").exists()
        ]
        if not candidates:
            continue
        best = max(candidates, key=lambda p: int(p.name.rsplit(".", 1)[1]))
        link = links / f"python{minor}"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(best / "bin" / f"python{minor}")
    os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"


_expose_pyenv_interpreters()


def _floors() -> list[str]:
    """``name==X`` for every ``name>=X`` in the dependencies and the optional extras.

    Only the user-facing extras count (``dev`` holds lint/test tools, not floors).
    """
    project = nox.project.load_toml(ROOT / "pyproject.toml")["project"]
    requirements = list(project["dependencies"])
    for extra, reqs in project.get("optional-dependencies", {}).items():
        if extra != "dev":
            requirements.extend(reqs)
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*>=\s*([0-9][0-9.]*)\s*(?:,.*)?", requirement)
        if match is None:
            raise ValueError(f"pyproject.toml: {requirement!r} has no '>=' floor")
        pins[match[1].lower()] = f"{match[1]}=={match[2]}"
    return list(pins.values())


def _install(session: nox.Session, *pins: str) -> None:
    session.install(".[prometheus]", *TEST_TOOLS, *pins)
    session.run("python", "-c", _VERSIONS, silent=False)


def _run_suites(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", *session.posargs)
    session.run("python", "-m", "pytest", "-p", "celerybase", "examples", *session.posargs)


@nox.session(python=PYTHONS)
def newest(session: nox.Session) -> None:
    """The newest release of everything, on every Python."""
    _install(session)
    _run_suites(session)


@nox.session(python=OLDEST_PYTHON)
def oldest(session: nox.Session) -> None:
    """Every dependency at the floor pyproject.toml declares, on the oldest Python."""
    _install(session, *_floors(), *OLDEST_TRANSITIVE)
    _run_suites(session)


@nox.session(python=CELERY_PYTHON)
@nox.parametrize("celery", CELERY_MINORS)
def celery(session: nox.Session, celery: str) -> None:
    """The newest patch release of one Celery minor, everything else newest."""
    _install(session, f"celery=={celery}.*")
    _run_suites(session)


@nox.session(python="3.12")
def pytest8_sqlalchemy20(session: nox.Session) -> None:
    """The newest pytest 8.x and SQLAlchemy 2.0.x (the other supported lines)."""
    _install(session, "pytest==8.*", "sqlalchemy==2.0.*")
    _run_suites(session)


@nox.session(python=False, default=False)
def floors(session: nox.Session) -> None:
    """Print the floor pins the ``oldest`` session installs."""
    for pin in _floors():
        session.log(pin)
