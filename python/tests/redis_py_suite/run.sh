#!/usr/bin/env bash
# Runs redis-py's own tests/test_commands.py and tests/test_pipeline.py, unmodified, against
# redpool.Redis: plugin.py swaps the client their fixtures build and starts a throwaway
# redis-server; exclusions.py lists the tests skipped, each with its reason.
#
#   bash python/tests/redis_py_suite/run.sh PYTHON [pytest arguments...]
#
# redis-py's own options select the client's protocol and reply shapes (`--protocol 3`,
# `--legacy-responses false`).
#
# PYTHON has redpool, pytest and redis-py 8.1.0 installed. The test files come from redis-py's
# source distribution on PyPI (checked against its SHA-256), cached under target/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
python="${1:?usage: run.sh PYTHON [pytest arguments...]}"
shift
# Absolute: the tests run from the unpacked source directory.
case "$python" in
    */*) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;;
    *) python="$(command -v "$python")" ;;
esac

version=8.1.0
sha256=6e1a19beef9225c83efd689c7e6b7da2d5215b1f42cd13b7fc3714d0a09c7b25
installed="$("$python" -c 'import redis; print(redis.__version__)')"
if [ "$installed" != "$version" ]; then
    echo "run.sh: redis-py $version is needed (the tests are its own), found $installed" >&2
    exit 1
fi

source_dir="$repo/target/redis-py-$version"
if [ ! -f "$source_dir/tests/test_commands.py" ]; then
    download="$(mktemp -d)"
    trap 'rm -rf "$download"' EXIT
    "$python" -m pip download -q --no-deps --no-binary :all: -d "$download" "redis==$version"
    echo "$sha256  $download/redis-$version.tar.gz" | sha256sum -c --quiet -
    tar -xzf "$download/redis-$version.tar.gz" -C "$download"
    mkdir -p "$repo/target"
    rm -rf "$source_dir"
    mv "$download/redis-$version" "$source_dir"
fi

cd "$source_dir"
# Standalone server tests only: cluster, module, TLS and replica tests need servers we do not
# start (as redis-py's own CI selects them with these markers).
PYTHONPATH="$here:$repo/python/tests" "$python" -m pytest -q -p no:cacheprovider -p plugin \
    -m "not onlycluster and not redismod and not ssl and not replica" \
    tests/test_commands.py tests/test_pipeline.py "$@"
