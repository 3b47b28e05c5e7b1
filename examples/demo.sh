#!/usr/bin/env bash
# Runs examples/demo.rs, then examples/demo_node.mjs, against Redis.
#
#   bash examples/demo.sh                                  # throwaway redis-server on 127.0.0.1
#   REDIS_URL=redis://127.0.0.1:6379/0 bash examples/demo.sh   # an existing server
#
# Without REDIS_URL it installs redis-server if missing, starts one on a free 127.0.0.1 port in a
# temporary directory (no persistence), and stops it and removes the directory on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "demo.sh: need root or sudo to run: $*" >&2
        exit 1
    fi
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "demo.sh: cargo not found; install Rust (https://rustup.rs) and retry" >&2
    exit 1
fi

if [ -z "${REDIS_URL:-}" ]; then
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        echo "demo.sh: installing redis-server and redis-tools"
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
    fi

    REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/redpool-demo.XXXXXX")"
    REDIS_PID=""
    REDIS_PORT=""
    stop_redis() {
        if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
            redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 \
                || kill "$REDIS_PID" 2>/dev/null || true
        fi
        if [ -n "$REDIS_PID" ]; then
            wait "$REDIS_PID" 2>/dev/null || true # reap it: no zombie left behind
        fi
        REDIS_PID=""
    }
    cleanup() {
        stop_redis
        rm -rf "$REDIS_DIR"
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    }

    # A free port can be taken by someone else before redis binds it: retry with a new one.
    for attempt in 1 2 3 4 5; do
        REDIS_PORT="$(free_port)"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
            --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" --daemonize no &
        REDIS_PID=$!
        ready=""
        for _ in $(seq 100); do # up to ~10 s
            if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]; then
                ready=1
                break
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break # it exited (port clash?)
            sleep 0.1
        done
        [ -n "$ready" ] && break
        echo "demo.sh: redis-server on port $REDIS_PORT did not start (attempt $attempt):" >&2
        tail -n 5 "$REDIS_DIR/redis.log" >&2 2>/dev/null || true
        stop_redis
    done
    if [ -z "$ready" ]; then
        echo "demo.sh: could not start redis-server" >&2
        exit 1
    fi
    echo "demo.sh: started redis-server $(redis-server --version | sed -n "s/.*v=\([^ ]*\).*/\1/p") on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
fi

# Not exec: the EXIT trap must still stop the server afterwards.
cargo run --quiet --release --example demo

# The Python side, on the same server: the package built from source into .venv (as
# tests/run.sh does), then examples/demo_python.py.
echo
echo "demo.sh: the Python package (pip install ./python into .venv; the first build takes a minute)"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m ensurepip --version >/dev/null 2>&1; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv python3-pip
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install -q ./python
.venv/bin/python examples/demo_python.py

# The Node side, on the same server: node/'s dependencies (with the napi CLI) if never installed,
# then the addon built into node/ (npm run build: napi build --release, quick once cargo has it).
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    echo
    echo "demo.sh: the Node client (examples/demo_node.mjs)"
    if [ ! -d node/node_modules ]; then
        (cd node && npm ci --no-audit --no-fund)
    fi
    (cd node && npm run build)
    node examples/demo_node.mjs
else
    echo "demo.sh: node/npm not found; skipping the Node demo"
fi
