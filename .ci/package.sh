#!/usr/bin/env bash
# Packaging check: build the sdist and the wheel (the wheel from the sdist, so a file
# missing from the sdist breaks the build), twine-check both, check their contents, then
# install the wheel (not editable) into a fresh virtualenv and run a small user suite
# from a directory outside the checkout: with `pytest -p celerybase` and auto-loading
# disabled, then through the pytest11 entry point.  The examples run the same way when
# examples/ holds tests.  Works on a fresh machine (installs build/twine if missing);
# uses uv for the throwaway venv when it is installed, else venv + pip.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python}
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/celerybase-package.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! "$python" -c "import build, twine" 2>/dev/null; then
    "$python" -m pip install --quiet build twine
fi

echo "== build (sdist, then the wheel from the sdist)"
"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || {
    cat "$work/build.log"
    exit 1
}
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
echo "   $(basename "$sdist")  $(basename "$wheel")"

echo "== twine check"
"$python" -m twine check --strict "$sdist" "$wheel"

echo "== contents"
"$python" - "$sdist" "$wheel" <<'EOF'
import re
import sys
import tarfile
import zipfile

sdist, wheel = sys.argv[1:]
problems = []
with tarfile.open(sdist) as tar:
    names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
with zipfile.ZipFile(wheel) as whl:
    wheel_names = whl.namelist()
    entry_points = next(
        whl.read(n).decode() for n in wheel_names if n.endswith(".dist-info/entry_points.txt")
    )
    metadata = next(whl.read(n).decode() for n in wheel_names if n.endswith(".dist-info/METADATA"))

for required in ("README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", "noxfile.py",
                 "pytest_celerybase/__init__.py", "pytest_celerybase/py.typed",
                 "tests/conftest.py"):
    if required not in names:
        problems.append(f"sdist lacks {required}")
junk = re.compile(r"(^|/)(__pycache__|\.git|\.nox|\.mypy_cache|\.ruff_cache|\.pytest_cache|"
                  r"\.benchmarks|\.ci|benchmarks|mutants|build|dist)(/|$)|\.py[cod]$")
problems += [f"sdist has junk: {n}" for n in names if junk.search(n)]

for required in ("pytest_celerybase/py.typed", "pytest_celerybase/plugin.py"):
    if required not in wheel_names:
        problems.append(f"wheel lacks {required}")
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel_names):
    problems.append("wheel lacks the LICENSE file")
problems += [f"wheel has {n}" for n in wheel_names
             if not n.startswith(("pytest_celerybase/", "pytest_celerybase-"))
             or junk.search(n)]
if not re.search(r"\[pytest11\]\s*\ncelerybase = pytest_celerybase\.plugin", entry_points):
    problems.append(f"wheel lacks the pytest11 entry point: {entry_points!r}")
for line in ("Classifier: Framework :: Pytest", "Classifier: Framework :: Celery",
             "License-Expression: MIT", "Provides-Extra: prometheus"):
    if line not in metadata.splitlines():
        problems.append(f"wheel METADATA lacks {line!r}")
if problems:
    sys.exit("\n".join(problems))
print(f"   sdist: {len(names)} entries, wheel: {len(wheel_names)} files; nothing missing or extra")
EOF

echo "== fresh virtualenv with the wheel (not editable)"
venv=$work/venv
if command -v uv >/dev/null 2>&1; then
    uv venv --quiet --python "$("$python" -c 'import sys; print(sys.executable)')" "$venv"
    uv pip install --quiet --python "$venv/bin/python" "$wheel[prometheus]"
else
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "$wheel[prometheus]"
fi
vpy=$venv/bin/python

# A user's project, outside the checkout: nothing of the source tree is importable.
user=$work/user
mkdir -p "$user"
cat >"$user/test_user_tasks.py" <<'EOF'
import pytest
from celery import Task

import pytest_celerybase
from pytest_celerybase import apply_and_raise, assert_hooks_called
from pytest_celerybase.bases import LoggingTask


class Audited(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        self.seen = exc


def test_installed_from_the_wheel():
    assert "site-packages" in pytest_celerybase.__file__


def test_plain_and_custom_tasks(eager_app):
    @eager_app.task
    def add(x, y):
        return x + y

    @eager_app.task(base=Audited)
    def charge(amount):
        raise ValueError(f"declined {amount}")

    assert add.delay(2, 3).get() == 5
    with pytest.raises(ValueError):
        apply_and_raise(charge, (10,))
    assert_hooks_called(add, ["before_start", "on_success", "after_return"])
    assert_hooks_called(charge, ["before_start", "on_failure", "after_return"])


@pytest.mark.celerybase(task_eager_propagates=True)
def test_marker_and_a_reference_base(eager_app, hook_recorder):
    @eager_app.task(base=LoggingTask)
    def ping():
        return "pong"

    assert ping.delay().get() == "pong"
    assert hook_recorder.hooks_for(ping.name) == ["before_start", "on_success", "after_return"]


def test_sent_tasks(eager_app, sent_tasks):
    from pytest_celerybase import assert_task_sent

    @eager_app.task
    def remind(user_id):
        return user_id

    remind.apply_async((7,), countdown=60)
    assert_task_sent(remind, (7,), countdown=60)
    assert [r.get() for r in sent_tasks.run()] == [7]
EOF

site=$(cd "$user" && "$vpy" -c 'import pytest_celerybase, os; print(os.path.dirname(pytest_celerybase.__file__))')
case $site in
    "$root"*) echo "pytest_celerybase imported from the checkout: $site" >&2; exit 1 ;;
esac
test -f "$site/py.typed" || { echo "py.typed not installed" >&2; exit 1; }
echo "   installed at $site (py.typed present)"

# The bases are production code: they import without pytest.
(cd "$user" && "$vpy" -c '
import sys
sys.modules["pytest"] = None  # any "import pytest" now fails
import pytest_celerybase.bases
print("   pytest_celerybase.bases imports without pytest")
')

echo "== user suite: -p celerybase, auto-loading disabled"
(cd "$user" && PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "$vpy" -m pytest -p celerybase \
    --strict-markers -q -p no:cacheprovider)

echo "== user suite: auto-loaded through the pytest11 entry point"
(cd "$user" && "$vpy" -m pytest --strict-markers -p no:cacheprovider >"$work/auto.log" 2>&1) || {
    cat "$work/auto.log"
    exit 1
}
grep -E "^plugins: .*celerybase-" "$work/auto.log" >/dev/null || {
    echo "the plugin was not auto-loaded:" >&2
    cat "$work/auto.log" >&2
    exit 1
}
tail -n 1 "$work/auto.log"

if compgen -G "examples/*test*.py" >/dev/null || compgen -G "examples/**/test_*.py" >/dev/null; then
    echo "== examples against the installed wheel"
    cp -r examples "$work/examples"
    find "$work/examples" -name __pycache__ -prune -exec rm -rf {} +
    (cd "$work" && "$vpy" -m pytest -p celerybase -q -p no:cacheprovider examples)
fi

echo "== package check passed in $((SECONDS - start)) s"
