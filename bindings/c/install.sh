#!/usr/bin/env bash
# Installs the C library: libredpool.so / libredpool.a, include/redpool.h, a pkg-config file and a
# CMake package, under a prefix.
#
#   bash bindings/c/install.sh [--prefix DIR] [--profile release|debug] [--no-build]
#
# Defaults: --prefix /usr/local, --profile release. Builds with cargo first unless --no-build.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
prefix=/usr/local
profile=release
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$profile" in
    release) cargo_flags=(--release) ;;
    debug) cargo_flags=() ;;
    *) echo "install.sh: --profile must be release or debug" >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-target}/$profile"
if [ "$build" = 1 ]; then
    cargo build --lib "${cargo_flags[@]}"
fi
for artifact in libredpool.so libredpool.a; do
    [ -f "$target_dir/$artifact" ] || { echo "install.sh: $target_dir/$artifact missing (build first)" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
native_libs="-lpthread -ldl -lm -lrt -lutil -lgcc_s -lc"

mkdir -p "$prefix/lib/pkgconfig" "$prefix/lib/cmake/redpool" "$prefix/include"
install -m 0755 "$target_dir/libredpool.so" "$prefix/lib/libredpool.so"
install -m 0644 "$target_dir/libredpool.a" "$prefix/lib/libredpool.a"
install -m 0644 include/redpool.h "$prefix/include/redpool.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@NATIVE_STATIC_LIBS@|$native_libs|" \
    bindings/c/redpool.pc.in > "$prefix/lib/pkgconfig/redpool.pc"
sed -e "s|@VERSION@|$version|" bindings/c/redpoolConfig.cmake.in > "$prefix/lib/cmake/redpool/redpoolConfig.cmake"
echo "installed redpool $version into $prefix"
