#!/usr/bin/env bash
# Real-broker leg: the live-worker, parity and prefork tests over a local RabbitMQ.
#
# Installs Debian's rabbitmq-server when missing (as root: apt-get), starts a throwaway
# node (its own name, port, data directory; nothing of a system node is touched), runs
#   python -m pytest -p celerybase tests/worker/test_live_worker.py tests/worker/test_parity.py tests/worker/test_prefork.py
# with CELERYBASE_BROKER_URL=pyamqp://guest@127.0.0.1:<port>// (the result backend is a
# file:// directory for prefork workers, the in-memory cache otherwise), then deletes the
# queues the tests left, stops the node and exits with pytest's exit code.  Extra
# arguments go to pytest: .ci/rabbitmq_leg.sh -x -q
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}

if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "rabbitmq_leg: rabbitmq-server is not installed and this is not root (apt-get)" >&2
        exit 1
    fi
    echo "== apt-get install rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d: the package must not start (or leave running) the system's own node
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
PATH="/usr/lib/rabbitmq/bin:/usr/sbin:$PATH"

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
port=$(free_port)
dist_port=$(free_port)
workdir=$(mktemp -d "${TMPDIR:-/tmp}/celerybase-rabbitmq.XXXXXX")
export RABBITMQ_NODENAME="celerybase-$$@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$dist_port
export RABBITMQ_MNESIA_BASE="$workdir/mnesia"
export RABBITMQ_LOG_BASE="$workdir/log"
export RABBITMQ_PID_FILE="$workdir/rabbitmq.pid"
export RABBITMQ_ENABLED_PLUGINS_FILE="$workdir/enabled_plugins"
export RABBITMQ_CONFIG_FILE="$workdir/rabbitmq"  # no such file: defaults
echo "[]." > "$RABBITMQ_ENABLED_PLUGINS_FILE"
# The Erlang cookie: a private HOME keeps the system's (and the user's) untouched.
export HOME="$workdir/home"
mkdir -p "$HOME"

stop_rabbitmq() {
    status=$?
    # Cleanup runs to the end whatever happens around it: output to a reader that went
    # away (SIGPIPE killed it half-way: the node kept running), a failing command,
    # another Ctrl-C.
    trap '' PIPE INT TERM HUP
    set +e +o pipefail
    if [ -n "${started:-}" ]; then
        # Queues the tests left (each worker uses a private celerybase.* queue).
        rabbitmqctl -q list_queues name 2>/dev/null | grep -E '^celerybase\.|^celery' \
            | while read -r queue; do
                rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1
            done
        left=$(rabbitmqctl -q list_queues name 2>/dev/null | grep -cE '^celerybase\.')
        echo "== rabbitmq: ${left:-0} celerybase queue(s) left after cleanup" 2>/dev/null
        rabbitmqctl -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1
    fi
    if [ -s "$RABBITMQ_PID_FILE" ]; then
        pid=$(cat "$RABBITMQ_PID_FILE")
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 100); do  # bounded: 10 s, then SIGKILL
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
    fi
    if [ -z "${epmd_was_running:-}" ]; then
        epmd -kill >/dev/null 2>&1  # the port mapper our node started
    fi
    rm -rf "$workdir"
    exit "$status"
}
trap stop_rabbitmq EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

epmd_was_running=
if epmd -names >/dev/null 2>&1; then epmd_was_running=1; fi
echo "== rabbitmq-server $RABBITMQ_NODENAME on 127.0.0.1:$port"
rabbitmq-server -detached
started=1
if ! rabbitmqctl -q wait --timeout 60 "$RABBITMQ_PID_FILE"; then
    cat "$workdir"/log/*.log >&2 || true
    exit 1
fi

export CELERYBASE_BROKER_URL="pyamqp://guest@127.0.0.1:$port//"
echo "== CELERYBASE_BROKER_URL=$CELERYBASE_BROKER_URL python -m pytest -p celerybase" \
    "tests/worker/test_live_worker.py tests/worker/test_parity.py tests/worker/test_prefork.py $*"
"$python" -m pytest -p celerybase tests/worker/test_live_worker.py tests/worker/test_parity.py \
    tests/worker/test_prefork.py "$@"
