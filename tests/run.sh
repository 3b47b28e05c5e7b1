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
# throwaway TLS certificates, cargo for everything).
stage_prerequisites() {
    banner "prerequisites"
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
        || ! command -v openssl >/dev/null 2>&1; then
        echo "installing redis-server, redis-tools and openssl with apt-get"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools openssl
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "run.sh: cargo not found; install Rust (https://rustup.rs) and retry" >&2
        exit 1
    fi
    echo "redis-server: $(redis-server --version)"
    echo "openssl:      $(openssl version)"
    echo "cargo:        $(cargo --version)"
}

# Stage: the Rust crate: unit tests, integration tests (tests/*.rs), examples (built) and doctests.
# (`--all-targets` would skip the doctests, so plain `cargo test --workspace` it is.)
stage_rust() {
    banner "Rust: cargo test --workspace"
    cargo test --workspace
}

main() {
    local started=$SECONDS
    stage_prerequisites
    stage_rust
    banner "all stages passed in $((SECONDS - started)) s (repo: $REPO_ROOT)"
}

main "$@"
