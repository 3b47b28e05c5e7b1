#!/usr/bin/env bash
# Runs every test of the project, stage by stage; stops at the first failing stage.
#
#   bash tests/run.sh
#
# Installs what the tests need when it is missing (redis-server, redis-tools, openssl) through
# apt-get, with sudo when not root. Each stage is one function; `main` calls them in order.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

banner() {
    printf '\n==================== %s ====================\n' "$*"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "run.sh: need root or sudo to run: $*" >&2
        exit 1
    fi
}

# Stage: system tools the tests use (redis-server for every integration test, openssl for the
# throwaway TLS certificates, valgrind / cmake / pkg-config for the C tests, promtool (Debian's
# `prometheus` package) to validate the metrics text, cargo for everything).
stage_prerequisites() {
    banner "prerequisites"
    local missing=()
    local tool
    for tool in redis-server:redis-server redis-cli:redis-tools openssl:openssl valgrind:valgrind \
        cmake:cmake pkg-config:pkg-config promtool:prometheus; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing with apt-get: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "run.sh: cargo not found; install Rust (https://rustup.rs) and retry" >&2
        exit 1
    fi
    echo "redis-server: $(redis-server --version)"
    echo "openssl:      $(openssl version)"
    echo "cargo:        $(cargo --version)"
}

# Stage: the core crate and the `redpool` CLI (the default members): unit tests, integration
# tests (tests/*.rs, including the C tests, the header check and promtool on the metrics; cli/tests
# running the binary), examples (built) and doctests. The Python and Node binding crates are built
# by their own tools in their own stages.
stage_rust() {
    banner "Rust, C and CLI: cargo test"
    cargo test
}

# Stage: the Node package (node/): `npm ci` installs the dependencies (with the napi-rs CLI; the
# package has no install script, so it builds nothing), `npm run build` builds the release addon
# (bindings/node) with `napi build` into node/; then node's test runner runs node/test against real
# redis-server processes (install.test.mjs also packs the package and installs the tarball into a
# fresh app). Needs node >= 20 and npm.
stage_node() {
    banner "Node: npm ci + npm run build + node --test"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "run.sh: node and npm (Node >= 20) are needed for the Node package tests" >&2
        exit 1
    fi
    echo "node:         $(node --version)"
    (
        cd node
        npm ci --no-audit --no-fund
        # Rebuild: an addon left from an older checkout would load, and be tested, otherwise.
        npm run build
        # The build regenerates the committed loader and declarations from the addon: a
        # difference means the addon changed and they were not committed with it.
        if git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
            && ! git diff --quiet -- native.js native.d.ts; then
            git diff --stat -- native.js native.d.ts
            echo "run.sh: node/native.js or node/native.d.ts differ from what the addon generates; commit them" >&2
            exit 1
        fi
        node --test
    )
}

# Stage: the Python package (python/): a virtualenv at .venv with the build and test tools, the
# package built from source and installed by pip exactly as a user would (`pip install ./python`:
# maturin compiles bindings/python and the core), then pytest on python/tests against real
# redis-server processes the tests start themselves; then redis-py's own command and pipeline
# tests against redpool.Redis (python/tests/redis_py_suite), in RESP2, in RESP3 and with the
# unified reply shapes.
stage_python() {
    banner "Python: pip install ./python, pytest python/tests"
    local venv="$REPO_ROOT/.venv"
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m ensurepip --version >/dev/null 2>&1; then
        echo "installing python3-venv with apt-get"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
    fi
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    "$venv/bin/python" -m pip install -q "maturin>=1.9.4,<2" "redis==8.1.0" pytest pytest-timeout mypy \
        "prometheus_client>=0.17"
    # No build isolation: the venv's maturin builds it (no download per run; the backend runs
    # the `maturin` binary from PATH); cargo's target/ keeps the build incremental.
    PATH="$venv/bin:$PATH" "$venv/bin/python" -m pip install -q --no-build-isolation ./python
    echo "python: $("$venv/bin/python" --version), redis-py $("$venv/bin/python" -c 'import redis; print(redis.__version__)')"
    "$venv/bin/python" -m pytest python/tests
    # As redis-py's CI runs them: RESP2 shapes by default, RESP3 (protocol=3) and the unified
    # shapes (legacy_responses=False).
    bash python/tests/redis_py_suite/run.sh "$venv/bin/python"
    bash python/tests/redis_py_suite/run.sh "$venv/bin/python" --protocol 3
    bash python/tests/redis_py_suite/run.sh "$venv/bin/python" --legacy-responses false
}

# Stage: the install paths the README shows for C and Python (tests/install_paths.sh): the C
# release tarball and the Python wheel and sdist built with the README's commands, each installed
# into a fresh directory or virtualenv (cargo off PATH where the path needs none) and used against
# a throwaway server. Node's (npm pack into a fresh app) runs in the Node stage.
stage_install_paths() {
    banner "install paths: C release tree, Python wheel and sdist"
    bash tests/install_paths.sh
}

main() {
    local started=$SECONDS
    stage_prerequisites
    stage_rust
    stage_python
    stage_node
    stage_install_paths
    banner "all stages passed in $((SECONDS - started)) s (repo: $REPO_ROOT)"
}

main "$@"
