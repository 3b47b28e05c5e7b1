#!/usr/bin/env bash
# The install paths the README shows for C and Python, run as a new user would: each artifact
# built with the README's command, then installed into a fresh directory or virtualenv and used
# for a real command against a throwaway redis-server. Where the path claims to need no Rust
# (the C release tree, the wheel), every directory holding cargo or rustc is taken off PATH.
# The Rust paths (the crate as a path dependency of a fresh project, `cargo install --path cli`)
# need cargo by nature. (Node's path, `npm pack` installed into a fresh app, is
# node/test/install.test.mjs.)
#
#   bash tests/install_paths.sh
#
# Writes the artifacts to dist/ (as the README's commands do) and works in a temporary directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/redpool-install.XXXXXX")"
export PIP_DISABLE_PIP_VERSION_CHECK=1

source examples/throwaway_redis.sh
cleanup() {
    stop_throwaway_redis
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
    printf '\n--- install paths: %s\n' "$*"
}

# PATH without any directory that holds cargo or rustc.
path_without_rust() {
    local dir kept=()
    local IFS=:
    for dir in $PATH; do
        [ -n "$dir" ] && [ ! -x "$dir/cargo" ] && [ ! -x "$dir/rustc" ] && kept+=("$dir")
    done
    echo "${kept[*]}"
}
NO_RUST_PATH="$(path_without_rust)"
if PATH="$NO_RUST_PATH" command -v cargo >/dev/null 2>&1; then
    echo "install_paths.sh: cargo is still on the reduced PATH" >&2
    exit 1
fi

# Runs "$@" with the reduced PATH.
without_rust() {
    PATH="$NO_RUST_PATH" "$@"
}

# C: `bash bindings/c/package.sh`, the tarball unpacked into a fresh prefix, examples/c built
# against it with pkg-config (make PKG_CONFIG=1) and with CMake, both binaries run.
check_c() {
    step "C release tree"
    local tarball prefix="$WORK/c/prefix" app="$WORK/c/app"
    tarball="$(bash bindings/c/package.sh | tail -n 1)"
    mkdir -p "$prefix" "$app"
    tar xzf "$tarball" --strip-components=1 -C "$prefix"
    cp examples/c/hello.c examples/c/Makefile examples/c/CMakeLists.txt "$app/"
    local soname
    soname="$(readelf -d "$prefix/lib/libredpool.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
    [ -n "$soname" ] && [ -e "$prefix/lib/$soname" ] || {
        echo "install_paths.sh: libredpool.so has no soname, or $soname is not in the tree" >&2
        exit 1
    }

    without_rust env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -s -C "$app" PKG_CONFIG=1
    readelf -d "$app/hello" | grep -q "Shared library: \[$soname\]" || {
        echo "install_paths.sh: hello does not load $soname" >&2
        exit 1
    }
    without_rust "$app/hello" | tee "$WORK/c/make.out"
    grep -q "transaction -> " "$WORK/c/make.out"

    without_rust cmake -S "$app" -B "$app/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    without_rust cmake --build "$app/build" >/dev/null
    without_rust "$app/build/hello" | grep -q "transaction -> "
    echo "C: the release tree builds with pkg-config and CMake and runs ($(basename "$tarball"))"
}

# Python's check, run by an installed redpool: a SET and a GET through the shared pool.
PYTHON_CHECK='
import sys, redpool
r = redpool.Redis.from_url(sys.argv[1])
r.set("install:python", sys.argv[2])
assert r.get("install:python") == sys.argv[2].encode(), r.get("install:python")
r.close()
print("redpool", redpool.__version__, "from", redpool.__file__)
'

# A fresh virtualenv at "$1".
fresh_venv() {
    python3 -m venv "$1"
    "$1/bin/python" -m pip install -q --upgrade pip >/dev/null
}

# Python: `maturin build --release` and `maturin sdist` in python/ (maturin from a fresh build
# venv); the wheel into a fresh venv without Rust; the sdist and `pip install ./python` into
# fresh venvs with it (they compile).
check_python() {
    step "Python wheel and sdist"
    fresh_venv "$WORK/py-build"
    "$WORK/py-build/bin/python" -m pip install -q "maturin>=1.9.4,<2"
    local version wheel sdist
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
    sdist="dist/redpool-$version.tar.gz" # the C tarball beside it is redpool-$version-<target>.tar.gz
    rm -f dist/redpool-"$version"-*.whl "$sdist"
    (cd python && "$WORK/py-build/bin/maturin" build --release --out ../dist && "$WORK/py-build/bin/maturin" sdist --out ../dist)
    wheel="$(ls dist/redpool-"$version"-*.whl)"
    [ -f "$sdist" ] || { echo "install_paths.sh: maturin sdist made no $sdist" >&2; exit 1; }
    case "$(basename "$wheel")" in
        redpool-*-cp39-abi3-manylinux_*_x86_64*.whl|redpool-*-cp39-abi3-manylinux_*_aarch64*.whl) ;;
        *) echo "install_paths.sh: $wheel is not an abi3 manylinux wheel" >&2; exit 1 ;;
    esac

    step "Python: the wheel into a fresh venv, without Rust"
    without_rust python3 -m venv "$WORK/py-wheel"
    without_rust "$WORK/py-wheel/bin/python" -m pip install -q "$REPO_ROOT/$wheel[prometheus]"
    (cd "$WORK" && without_rust "$WORK/py-wheel/bin/python" -c "$PYTHON_CHECK" "$REDIS_URL" wheel)
    (cd "$WORK" && without_rust "$WORK/py-wheel/bin/python" -c "import redpool.prometheus, prometheus_client")

    step "Python: the sdist into a fresh venv (builds from source)"
    fresh_venv "$WORK/py-sdist"
    # cargo's cache of the registry crates is kept; redpool itself compiles from the sdist.
    CARGO_TARGET_DIR="$REPO_ROOT/target" "$WORK/py-sdist/bin/python" -m pip install -q --no-binary redpool "$REPO_ROOT/$sdist"
    (cd "$WORK" && "$WORK/py-sdist/bin/python" -c "$PYTHON_CHECK" "$REDIS_URL" sdist)

    step "Python: pip install ./python into a fresh venv"
    fresh_venv "$WORK/py-checkout"
    "$WORK/py-checkout/bin/python" -m pip install -q ./python
    (cd "$WORK" && "$WORK/py-checkout/bin/python" -c "$PYTHON_CHECK" "$REDIS_URL" checkout)
    echo "Python: $(basename "$wheel") and $(basename "$sdist") install and work"
}

# Rust: a fresh cargo project with redpool as a path dependency (as the README shows) running a
# SET and a GET; the CLI installed with `cargo install --path cli` and run. Both share the
# repository's target directory (cargo's cache; the project and the install are still fresh).
check_rust() {
    step "Rust: the crate as a dependency of a fresh project"
    local app="$WORK/rust-app"
    mkdir -p "$app/src"
    cat > "$app/Cargo.toml" <<TOML
[package]
name = "install-check"
version = "0.1.0"
edition = "2024"

[dependencies]
redpool = { path = "$REPO_ROOT" }
TOML
    cat > "$app/src/main.rs" <<'RUST'
use redpool::{Value, cmd};

fn main() -> Result<(), redpool::Error> {
    let url = std::env::var("REDIS_URL").expect("REDIS_URL");
    let pool = redpool::shared(&url)?;
    pool.execute(cmd("SET").arg("install:rust").arg("crate"))?;
    let value = pool.execute(cmd("GET").arg("install:rust"))?;
    assert_eq!(value, Value::BulkString(b"crate".to_vec()));
    println!("redpool {} as a dependency: GET -> crate", redpool::VERSION);
    Ok(())
}
RUST
    (cd "$app" && CARGO_TARGET_DIR="$REPO_ROOT/target" cargo run --quiet)

    step "Rust: cargo install --path cli"
    CARGO_TARGET_DIR="$REPO_ROOT/target" cargo install --quiet --path cli --root "$WORK/cli"
    without_rust "$WORK/cli/bin/redpool" health "$REDIS_URL"
    echo "Rust: the crate and the CLI install and work"
}

main() {
    start_throwaway_redis install_paths.sh
    check_c
    check_python
    check_rust
}

main "$@"
