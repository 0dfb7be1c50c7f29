#!/usr/bin/env bash
# Isolation check (issue 6): the whole suite -- the plugin's tests and the examples --
# once in random order with an explicit seed, once spread over two xdist workers.
# Called from .ci/run; usable alone:  .ci/reliability.sh [SEED]
# SEED defaults to $RELIABILITY_SEED, else a fresh random one (printed: rerun a failure
# with the same seed to reproduce its order).
set -euo pipefail
cd "$(dirname "$0")/.."

seed="${1:-${RELIABILITY_SEED:-$(python -c 'import random; print(random.randrange(1, 2**31))')}}"
# Autoloading must stay on (pytest-randomly, xdist and the plugin load through it).
unset PYTEST_DISABLE_PLUGIN_AUTOLOAD PYTEST_ADDOPTS

echo "== random order, seed $seed (reproduce: .ci/reliability.sh $seed)"
python -m pytest -q -p randomly --randomly-seed="$seed"
python -m pytest -q -p celerybase -p randomly --randomly-seed="$seed" examples

echo "== xdist, 2 workers"
python -m pytest -q -n 2
python -m pytest -q -p celerybase -n 2 examples
