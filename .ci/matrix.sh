#!/usr/bin/env bash
# Reduced compatibility matrix: the oldest supported set (Python 3.10 with every
# dependency at its pyproject.toml floor) and the newest set (Python 3.13, newest of
# everything), each running the test suite and the examples.  The full matrix is `nox`.
#
# Works on a fresh machine: installs nox (and uv, for fast virtualenvs, if it can) with
# pip when missing.  A session whose interpreter is not installed is skipped, not failed;
# the run fails if nothing ran at all.  Extra arguments go to pytest: .ci/matrix.sh -x
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
start=$SECONDS

if ! "$python" -m nox --version >/dev/null 2>&1; then
    "$python" -m pip install --quiet nox
fi
if ! command -v uv >/dev/null 2>&1 && ! "$python" -c "import uv" 2>/dev/null; then
    "$python" -m pip install --quiet uv || echo "uv not installable: using virtualenv"
fi

report=$(mktemp "${TMPDIR:-/tmp}/celerybase-matrix.XXXXXX.json")
trap 'rm -f "$report"' EXIT

status=0
"$python" -m nox --report "$report" -s oldest newest-3.13 -- "$@" || status=$?

"$python" - "$report" <<'EOF' || status=1
import json
import sys

sessions = json.load(open(sys.argv[1]))["sessions"]
for s in sessions:
    print(f"   {(s.get('signatures') or [s['name']])[-1]:<14} {s['result']}")
if all(s["result"] == "skipped" for s in sessions):
    sys.exit("no matrix session ran: install Python 3.10 and/or 3.13 (pyenv ones are found)")
EOF

echo "== matrix finished in $((SECONDS - start)) s (exit $status)"
exit "$status"
