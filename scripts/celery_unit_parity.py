#!/usr/bin/env python
"""Celery's own unit tests give the same outcome per test with and without this plugin.

Downloads the celery sdist matching the installed celery, extracts its ``t/`` tree (not
the ``celery/`` sources: the *installed* celery is the one under test), installs the few
test-only packages its ``t/unit/conftest.py`` needs, then runs the selected ``t/unit``
directories twice:

* with the plugin auto-loaded through its ``pytest11`` entry point (as any user has it);
* with ``-p no:celerybase``.

Both runs use ``-p celery.contrib.pytest`` (the conftest needs the ``celery`` marker and
fixtures it registers), ``-p no:randomly`` (same order in both) and the same
``PYTHONHASHSEED``.  Outcomes are read per test id from ``--junitxml`` and compared; the
script prints a summary and exits 1 on any difference (2 on a setup problem).

Usage::

    python scripts/celery_unit_parity.py                 # tasks, worker, app, contrib
    python scripts/celery_unit_parity.py t/unit/tasks    # a subset
    python scripts/celery_unit_parity.py --keep DIR      # keep the sdist/logs in DIR

It takes a few minutes on 2 cores (about 3,200 tests, run twice): too slow for every CI
run, meant for release checks and after changes to ``recorder.py``.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_PATHS = ("t/unit/tasks", "t/unit/worker", "t/unit/app", "t/unit/contrib")

# import name -> pip requirement: what t/unit/conftest.py and the selected tests import
# beyond celery's own runtime dependencies (see requirements/test.txt in the sdist).
# pytest >= 9 ships the ``subtests`` fixture that pytest-subtests used to provide.
# Not pytest-click: t/unit/app/test_preload_cli.py needs its ``isolated_cli_runner`` (2
# tests then error at setup, in both runs alike), but with it the ``shell`` case starts
# IPython when installed, whose history thread then fails celery's own
# ``threads_not_lingering`` check for every later test.
TEST_REQUIREMENTS = {"freezegun": "freezegun"}
if tuple(int(p) for p in importlib.metadata.version("pytest").split(".")[:1]) < (9,):
    TEST_REQUIREMENTS["pytest_subtests"] = "pytest-subtests"


def _log(message: str) -> None:
    print(f"[parity] {message}", flush=True)


def fetch_tests(version: str, workdir: Path) -> Path:
    """Download the sdist of ``celery==version`` and extract its ``t/`` tree and config."""
    _log(f"downloading the celery {version} sdist")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
            "--no-deps", "--dest", str(workdir), f"celery=={version}",
        ],
        check=True,
    )
    [sdist] = workdir.glob(f"celery-{version}.tar.gz")
    root = workdir / "celery-tests"
    prefix = f"celery-{version}/"
    with tarfile.open(sdist) as tar:
        members = [
            m for m in tar.getmembers()
            if m.name.startswith(prefix + "t/") or m.name == prefix + "pyproject.toml"
        ]
        for member in members:
            member.name = member.name[len(prefix):]
        tar.extractall(root, members=members, filter="data")
    # pyproject.toml carries the [tool.pytest.ini_options] the tests rely on
    # (--strict-markers, python_classes = "test_*", the marker list); it has no package
    # directory next to it, so the installed celery is imported, not a source copy.
    return root


def install_requirements(workdir: Path) -> Path | None:
    """Install the missing test requirements into ``workdir/site`` (not the environment).

    Returns the directory to put on ``PYTHONPATH`` for both runs, or ``None``.
    """
    missing = [req for mod, req in TEST_REQUIREMENTS.items() if not importlib.util.find_spec(mod)]
    if not missing:
        return None
    site = workdir / "site"
    _log(f"installing test requirements into {site}: {' '.join(missing)}")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--target", str(site), *missing,
        ],
        check=True,
    )
    return site


def run_suite(
    root: Path, paths: list[str], label: str, extra: list[str], site: Path | None
) -> tuple[Path, float]:
    junit = root / f"junit-{label}.xml"
    log = root / f"log-{label}.txt"
    cmd = [
        sys.executable, "-m", "pytest", *paths,
        "-p", "celery.contrib.pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
        f"--junitxml={junit}", *extra,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("PYTEST_ADDOPTS", None)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    _log(f"run {label}: {' '.join(cmd[1:])}")
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    text = log.read_text(errors="replace")
    plugins = next((ln for ln in text.splitlines() if ln.startswith("plugins:")), "")
    loaded = "celerybase" in plugins
    _log(f"run {label}: exit {proc.returncode} in {elapsed:.1f}s; celerybase loaded: {loaded}")
    if loaded != (label == "with-plugin"):
        raise SystemExit(f"[parity] run {label}: unexpected plugin state; see {log}")
    if proc.returncode not in (0, 1) or not junit.exists():
        tail = "\n".join(text.splitlines()[-30:])
        raise SystemExit(f"[parity] run {label} did not complete (exit {proc.returncode}):\n{tail}")
    return junit, elapsed


def outcomes(junit: Path) -> dict[str, str]:
    """Outcome per test id; a test that both failed and errored (teardown) lists both."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        kinds = []
        for child in case:
            if child.tag in ("failure", "error"):
                kinds.append(child.tag)
            elif child.tag == "skipped":
                kinds.append("xfailed" if child.get("type") == "pytest.xfail" else "skipped")
        outcome = "+".join(sorted(kinds)) or "passed"
        if test_id in result:  # setup/teardown errors may add a second entry
            outcome = "+".join(sorted({*result[test_id].split("+"), *outcome.split("+")}))
        result[test_id] = outcome
    return result


def compare(with_plugin: dict[str, str], without: dict[str, str]) -> list[str]:
    diffs = []
    for test_id in sorted(with_plugin.keys() | without.keys()):
        a = with_plugin.get(test_id, "<absent>")
        b = without.get(test_id, "<absent>")
        if a != b:
            diffs.append(f"  {test_id}: with plugin {a}, without {b}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS))
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--pytest-args", default="", help="extra arguments for both pytest runs (one string)"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    version = importlib.metadata.version("celery")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="celery-parity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        root = fetch_tests(version, workdir)
        site = install_requirements(workdir)
        extra = args.pytest_args.split()
        junit_on, t_on = run_suite(root, args.paths, "with-plugin", extra, site)
        junit_off, t_off = run_suite(
            root, args.paths, "without-plugin", ["-p", "no:celerybase", *extra], site
        )
        on, off = outcomes(junit_on), outcomes(junit_off)
        diffs = compare(on, off)
        print()
        print(f"celery {version} unit tests: {' '.join(args.paths)}")
        for label, res, secs in (("with plugin", on, t_on), ("without plugin", off, t_off)):
            counts = collections.Counter(res.values())
            summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            print(f"  {label:15} {len(res)} tests in {secs:.0f}s: {summary}")
        if not on:
            print("no tests ran")
            return 2
        if diffs:
            print(f"{len(diffs)} test(s) differ:")
            print("\n".join(diffs))
            print(f"logs and junit XML: {root}")
            return 1
        total = time.monotonic() - started
        print(f"identical outcome for all {len(on)} tests ({total:.0f}s in all)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
