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
# throwaway TLS certificates, valgrind / cmake / pkg-config for the C tests, cargo for everything).
stage_prerequisites() {
    banner "prerequisites"
    local missing=()
    local tool
    for tool in redis-server:redis-server redis-cli:redis-tools openssl:openssl valgrind:valgrind \
        cmake:cmake pkg-config:pkg-config; do
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

# Stage: the core crate: unit tests, integration tests (tests/*.rs, including the C tests and the
# header check), examples (built) and doctests. Plain `cargo test` covers the default member only:
# the Python and Node binding crates are built by their own tools in their own stages.
stage_rust() {
    banner "Rust and C: cargo test"
    cargo test
}

main() {
    local started=$SECONDS
    stage_prerequisites
    stage_rust
    banner "all stages passed in $((SECONDS - started)) s (repo: $REPO_ROOT)"
}

main "$@"
