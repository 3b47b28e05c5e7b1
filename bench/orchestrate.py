"""Runs every benchmark scenario against a running redis-server (started by bench/run) and writes
one JSON line per measurement to --out.

For each scenario and each repetition it runs redpool, each peer and the limit (redis-benchmark
with the same concurrency and pipeline depth) one after the other, rotating their order every
repetition, so slow drift of a shared machine hits every client alike. Each measurement is a fresh
process pinned to CPU 1 (the server has CPU 0) with `taskset` when present, bounded in commands and
in seconds. Keys key:%012d below --keys are preloaded with the scenario's value size, so GETs hit.
"""

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

import redis

BENCH = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(BENCH, "build")


@dataclass
class Scenario:
    lang: str
    label: str
    command: str  # get | set | checkout
    concurrency: int
    pipeline: int
    size: int
    ops: int  # commands (or checkouts) per measurement in full mode
    clients: list
    limit: bool = True  # compare with redis-benchmark -c concurrency -P pipeline
    extra: list = field(default_factory=list)


def scenarios():
    out = []
    c_clients = ["redpool", "hiredis"]
    for conc, pipe, ops, name in [(1, 1, 60_000, "1 caller"), (8, 1, 150_000, "8 threads"),
                                  (1, 100, 1_500_000, "pipeline 100"),
                                  (8, 100, 2_000_000, "8 threads x pipeline 100")]:
        out.append(Scenario("c", f"GET, {name}", "get", conc, pipe, 1, ops, c_clients))
    py_clients = ["redpool", "redis-py"]
    for command in ("get", "set"):
        for size, size_name in ((1, "1 B"), (1024, "1 KiB")):
            for conc, pipe, ops, name in [(1, 1, 30_000, "1 thread"), (8, 1, 60_000, "8 threads"),
                                          (1, 100, 300_000, "pipeline 100")]:
                out.append(Scenario("python", f"{command.upper()} {size_name}, {name}", command,
                                    conc, pipe, size, ops, py_clients))
    # asyncio: redpool.asyncio against redis.asyncio; the concurrency is the number of tasks.
    for conc, ops, name in [(1, 20_000, "1 task"), (100, 60_000, "100 tasks")]:
        out.append(Scenario("python", f"asyncio GET 1 B, {name}", "get", conc, 1, 1, ops,
                            py_clients, extra=["--asyncio"]))
    node_clients = ["redpool", "ioredis", "node-redis"]
    for conc, pipe, ops, name in [(1, 1, 40_000, "awaited"), (8, 1, 120_000, "8 callers"),
                                  (1, 100, 400_000, "100 in flight"),
                                  (1, 1000, 600_000, "1000 in flight")]:
        out.append(Scenario("node", f"GET, {name}", "get", conc, pipe, 1, ops, node_clients))
    rust_clients = ["redpool", "r2d2", "r2d2-tested"]
    for conc, name in [(1, "1 thread"), (16, "16 threads")]:
        out.append(Scenario("rust", f"checkout+return, {name}, 4 conns", "checkout", conc, 0, 0,
                            2_000_000, rust_clients, limit=False, extra=["--connections", "4"]))
    return out


def driver_command(s, client, port, ops, keys, max_seconds):
    common = ["--port", str(port), "--label", s.label, "--concurrency", str(s.concurrency),
              "--ops", str(ops), "--max-seconds", str(max_seconds)]
    workload = ["--scenario", s.command, "--pipeline", str(s.pipeline), "--size", str(s.size),
                "--keys", str(keys)]
    if s.lang == "c":
        return [os.path.join(BUILD, "c", f"bench_{client}")] + common + workload
    if s.lang == "python":
        return ([sys.executable, os.path.join(BENCH, "python", "bench.py"), "--client", client]
                + common + workload + s.extra)
    if s.lang == "node":
        return ["node", os.path.join(BENCH, "node", "bench.js"), "--client", client] + common + workload
    exe = os.path.join(BENCH, "rust", "target", "release", "redpool-bench")
    return [exe, "--client", client] + common + s.extra


def run_pinned(argv, timeout):
    """Runs argv pinned to CPU 1; returns (stdout, child CPU seconds)."""
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    proc = subprocess.Popen(pin + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"orchestrate: timed out after {timeout} s: {' '.join(argv)}")
    if proc.returncode != 0:
        raise SystemExit(f"orchestrate: failed ({proc.returncode}): {' '.join(argv)}\n{stderr}")
    return stdout


def limit_measurement(s, port, ops, keys, timeout):
    """redis-benchmark with the scenario's concurrency, pipeline depth, command and value size;
    its CPU comes from wait4's rusage of the child."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(s.concurrency),
            "-P", str(s.pipeline), "-n", str(ops), "-r", str(keys), "-t", s.command,
            "-d", str(max(s.size, 1)), "--csv"]
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(pin + argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit(f"orchestrate: redis-benchmark timed out: {' '.join(argv)}")
        time.sleep(0.005)
    seconds = time.perf_counter() - t0
    stdout = proc.stdout.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"orchestrate: redis-benchmark failed: {' '.join(argv)}")
    rows = [r for r in csv.reader(io.StringIO(stdout)) if r and r[0].upper() == s.command.upper()]
    if not rows:
        raise SystemExit(f"orchestrate: no {s.command} row in redis-benchmark output:\n{stdout}")
    rps = float(rows[0][1])
    if not 0 < rps < float("inf"):  # a tiny --quick run can finish within redis-benchmark's clock tick
        rps = ops / seconds
    return {"lang": s.lang, "scenario": s.command, "label": s.label, "client": "limit",
            "concurrency": s.concurrency, "pipeline": s.pipeline, "value_size": s.size, "ops": ops,
            "seconds": round(seconds, 6), "ops_per_sec": rps,
            "cpu_us_per_op": round((rusage.ru_utime + rusage.ru_stime) * 1e6 / ops, 4)}


def preload(port, keys, size):
    r = redis.Redis(host="127.0.0.1", port=port)
    value = b"x" * size
    for start in range(0, keys, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(keys, start + 1000)):
            pipe.set(b"key:%012d" % i, value)
        pipe.execute()
    r.close()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--only", default="c,python,node,rust")
    p.add_argument("--labels", default="",
                   help="only the scenarios whose label contains this text (default: all)")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="every scenario once, tiny")
    args = p.parse_args()
    langs = args.only.split(",")
    reps = 1 if args.quick else args.reps
    keys = 1000 if args.quick else 10_000
    max_seconds = 5.0 if args.quick else 10.0
    todo = [s for s in scenarios() if s.lang in langs and args.labels in s.label]
    loaded_size = None
    started = time.monotonic()
    with open(args.out, "w") as out:
        meta = {"meta": True, "quick": args.quick, "reps": reps, "keys": keys,
                "taskset": bool(shutil.which("taskset")), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "redis": redis.Redis(port=args.port).info("server")["redis_version"],
                "cpus": os.cpu_count()}
        out.write(json.dumps(meta) + "\n")
        for s in todo:
            if s.size and s.size != loaded_size:
                preload(args.port, keys, s.size)
                loaded_size = s.size
            if args.quick:
                ops = 2000 if s.lang == "rust" else max(200, 2 * s.pipeline)
            else:
                ops = s.ops
            runners = list(s.clients) + (["limit"] if s.limit else [])
            for rep in range(reps):
                k = rep % len(runners)
                for client in runners[k:] + runners[:k]:
                    if client == "limit":
                        row = limit_measurement(s, args.port, ops, keys, 60 + 2 * max_seconds)
                    else:
                        argv = driver_command(s, client, args.port, ops, keys, max_seconds)
                        lines = [l for l in run_pinned(argv, 60 + 2 * max_seconds).splitlines() if l.startswith("{")]
                        row = json.loads(lines[-1])
                    row["rep"] = rep
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    print(f"[{time.monotonic() - started:6.0f} s] {s.lang:6} {s.label:38} {client:11} "
                          f"rep {rep}: {row['ops_per_sec']:>12,.0f} ops/s  {row['cpu_us_per_op']:8.3f} µs CPU/op",
                          file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
