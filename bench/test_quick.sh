#!/usr/bin/env bash
# Smoke test of the benchmark harness, so it cannot rot: runs `bench/run --quick` (every scenario
# once, tiny) into a temporary directory and checks that results.md and throughput.png exist and
# that every scenario has a redpool row, every peer row and (where it applies) a limit row.
#
#   bash bench/test_quick.sh [--no-setup]
#
# Not part of tests/run.sh or CI (it installs the peers: hiredis, redis-py, ioredis, node-redis,
# r2d2). Asserts no speed. About 2 minutes once everything is installed.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

timeout 900 bash "$BENCH/run" --quick --out "$out" "$@"

"$BENCH/.venv/bin/python" - "$out" "$BENCH" <<'PY'
import json, os, sys

out, bench = sys.argv[1], sys.argv[2]
sys.path.insert(0, bench)
import orchestrate  # the scenario list is the source of truth

failures = []
png = os.path.join(out, "throughput.png")
if not os.path.exists(png) or open(png, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
    failures.append("throughput.png missing or not a PNG")
md_path = os.path.join(out, "results.md")
md = open(md_path).read() if os.path.exists(md_path) else ""
if not md:
    failures.append("results.md missing or empty")
rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if '"meta"' not in l]
seen = {(r["lang"], r["label"], r["client"]) for r in rows}
checked = 0
for s in orchestrate.scenarios():
    for client in s.clients + (["limit"] if s.limit else []):
        checked += 1
        if (s.lang, s.label, client) not in seen:
            failures.append(f"no measurement: {s.lang} / {s.label} / {client}")
        name = {"redpool": "**redpool**", "limit": "redis-benchmark (limit)"}.get(client, client)
        prefix = {"c": "C", "python": "Python", "node": "Node", "rust": "Rust"}[s.lang]
        if f"| {prefix}: {s.label} | {name} |" not in md:
            failures.append(f"no row in results.md: {prefix}: {s.label} / {name}")
bad = [r for r in rows if not (r["ops"] > 0 and r["ops_per_sec"] > 0 and r["cpu_us_per_op"] >= 0)]
failures += [f"bad measurement: {r}" for r in bad]
for f in failures:
    print("FAIL:", f)
print(f"bench quick: {checked - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
PY
