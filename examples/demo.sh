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

    source examples/throwaway_redis.sh
    trap stop_throwaway_redis EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_throwaway_redis demo.sh
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
