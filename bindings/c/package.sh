#!/usr/bin/env bash
# Builds the C release tree of redpool and packs it as a tarball:
#
#   bash bindings/c/package.sh [--out DIR]
#
# gives DIR/redpool-<version>-<target>.tar.gz (DIR defaults to dist/), holding one directory:
#
#   lib/libredpool.so.<version>       the shared library, soname libredpool.so.<abi>
#   lib/libredpool.so.<abi>           -> libredpool.so.<version> (what programs load)
#   lib/libredpool.so                 -> libredpool.so.<abi> (what the linker finds)
#   lib/libredpool.a                  the static library
#   include/redpool.h                 the cbindgen-generated header
#   lib/pkgconfig/redpool.pc          pkg-config file, relocatable (paths from its own place)
#   lib/cmake/redpool/redpoolConfig.cmake, redpoolConfigVersion.cmake
#                                     find_package(redpool CONFIG), target redpool::redpool
#
# <abi> is the version's major number, or major.minor while the major is 0 (0.x releases may
# break the ABI between minors). The tree works wherever it is unpacked; to install under a
# prefix: tar xzf <tarball> --strip-components=1 -C /usr/local. Needs cargo (release build).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "package.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
minor_patch=${version#*.}
if [ "$major" = 0 ]; then abi="0.${minor_patch%%.*}"; else abi="$major"; fi
soname="libredpool.so.$abi"
target=$(rustc -vV | sed -n 's/^host: //p')
name="redpool-$version-$target"

# The soname is a link argument of the cdylib only (rlib and staticlib are not linked); in-tree
# builds keep the plain libredpool.so the tests and examples/c link against.
cargo rustc --lib --release --quiet -- -C "link-arg=-Wl,-soname,$soname"
built="${CARGO_TARGET_DIR:-target}/release"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
tree="$staging/$name"
mkdir -p "$tree/lib/pkgconfig" "$tree/lib/cmake/redpool" "$tree/include"
install -m 0755 "$built/libredpool.so" "$tree/lib/libredpool.so.$version"
install -m 0644 "$built/libredpool.a" "$tree/lib/libredpool.a"
# The release profile keeps line tables for profiling; shipped libraries go without them.
strip --strip-unneeded "$tree/lib/libredpool.so.$version"
strip --strip-debug "$tree/lib/libredpool.a"
ln -s "libredpool.so.$version" "$tree/lib/$soname"
ln -s "$soname" "$tree/lib/libredpool.so"
install -m 0644 include/redpool.h "$tree/include/redpool.h"
# What a program linking libredpool.a statically also needs (rustc --print native-static-libs).
native_libs="-lpthread -ldl -lm -lrt -lutil -lgcc_s -lc"
sed -e "s|@VERSION@|$version|" -e "s|@NATIVE_STATIC_LIBS@|$native_libs|" \
    bindings/c/redpool.pc.in > "$tree/lib/pkgconfig/redpool.pc"
for template in redpoolConfig redpoolConfigVersion; do
    sed -e "s|@VERSION@|$version|" -e "s|@SONAME@|$soname|" \
        "bindings/c/$template.cmake.in" > "$tree/lib/cmake/redpool/$template.cmake"
done

mkdir -p "$out"
tarball="$(cd "$out" && pwd)/$name.tar.gz"
tar -C "$staging" --owner=0 --group=0 --numeric-owner -czf "$tarball" "$name"
echo "$tarball"
