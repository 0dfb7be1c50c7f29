#!/usr/bin/env bash
# Real-broker leg: run the live-worker and parity tests over a local Redis.
#
# Installs Debian's redis-server when missing (as root: apt-get), starts a throwaway
# server on 127.0.0.1 and a free port (no persistence), runs
#   python -m pytest -p celerybase tests/worker/test_live_worker.py tests/worker/test_parity.py tests/worker/test_prefork.py
# with CELERYBASE_BROKER_URL pointing at it (the result backend defaults to the same
# Redis; set CELERYBASE_RESULT_BACKEND to override), stops the server and exits with
# pytest's exit code.  Extra arguments go to pytest: .ci/redis_leg.sh -x -q
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "redis_leg: redis-server is not installed and this is not root (apt-get)" >&2
        exit 1
    fi
    echo "== apt-get install redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
workdir=$(mktemp -d "${TMPDIR:-/tmp}/celerybase-redis.XXXXXX")

stop_redis() {
    status=$?
    trap '' PIPE INT TERM HUP  # cleanup runs to the end (see rabbitmq_leg.sh)
    set +e
    if [ -s "$workdir/redis.pid" ]; then
        pid=$(cat "$workdir/redis.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do  # bounded: 5 s
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
    exit "$status"
}
trap stop_redis EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

echo "== redis-server on 127.0.0.1:$port"
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize yes --pidfile "$workdir/redis.pid" --dir "$workdir" \
    --logfile "$workdir/redis.log"

# Wait (bounded) until it answers; redis-py is a dependency of the package.
if ! "$python" - "$port" <<'EOF'; then
import sys
import time

import redis

client = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=1)
deadline = time.monotonic() + 10
while True:
    try:
        client.ping()
        break
    except redis.ConnectionError:
        if time.monotonic() > deadline:
            sys.exit("redis-server did not answer within 10 s")
        time.sleep(0.05)
EOF
    cat "$workdir/redis.log" >&2 || true
    exit 1
fi

export CELERYBASE_BROKER_URL="redis://127.0.0.1:$port/0"
echo "== CELERYBASE_BROKER_URL=$CELERYBASE_BROKER_URL python -m pytest -p celerybase" \
    "tests/worker/test_live_worker.py tests/worker/test_parity.py tests/worker/test_prefork.py tests/sent_tasks/test_parity.py $*"
status=0
"$python" -m pytest -p celerybase tests/worker/test_live_worker.py tests/worker/test_parity.py \
    tests/worker/test_prefork.py tests/sent_tasks/test_parity.py "$@" || status=$?
exit "$status"
