"""Renders the benchmark results (JSON lines from orchestrate.py) as results.md (one row per
scenario and client: median ops/s, min-max spread, median client CPU per op, ratios to the peers
and to the limit, then the issue's targets, met or missed) and throughput.png (throughput against
requests in flight, one panel per language, redpool against its peers and the limit).

    python report.py RESULTS.jsonl --out DIR [--quick]
"""

import argparse
import json
import os
import statistics
from collections import defaultdict

# The issues' targets: (lang, scenario label, what, threshold). `what` is "peer:NAME" (redpool
# over NAME), "peer:A,B" (redpool over the faster of A and B), "limit" (redpool over
# redis-benchmark's), "ns" (redpool's wall ns per checkout, at most the threshold) or "collapse"
# (16-thread over 1-thread checkout throughput). Ratios are taken within each repetition (the
# clients of a scenario run one after the other in it), then the median of those is shown.
TARGETS = [
    ("python", "GET 1 B, 1 thread", "peer:redis-py", 2.0),
    ("python", "GET 1 B, 1 thread", "limit", 0.9),
    ("python", "GET 1 B, 8 threads", "peer:redis-py", 3.0),
    ("python", "GET 1 B, pipeline 100", "peer:redis-py", 3.0),
    ("python", "SET 1 B, pipeline 100", "peer:redis-py", 3.0),
    ("python", "asyncio GET 1 B, 1 task", "peer:redis-py", 1.5),
    ("python", "asyncio GET 1 B, 100 tasks", "peer:redis-py", 3.0),
    ("node", "GET, awaited", "peer:ioredis", 1.2),
    ("node", "GET, 8 callers", "peer:ioredis", 1.2),
    ("node", "GET, 100 in flight", "peer:ioredis,node-redis", 1.2),
    ("c", "GET, 1 caller", "peer:hiredis", 0.95),
    ("c", "GET, pipeline 100", "peer:hiredis", 0.9),
    ("c", "GET, 8 threads", "limit", 0.8),
    ("rust", "checkout+return, 1 thread, 4 conns", "ns", 200.0),
    ("rust", "checkout+return, 16 threads, 4 conns", "collapse", 0.5),
]
LANG_NAMES = {"c": "C", "python": "Python", "node": "Node", "rust": "Rust (pool checkout + return)"}


def load(path):
    meta, rows = {}, []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if row.get("meta"):
                meta = row
            else:
                rows.append(row)
    return meta, rows


def summarize(rows):
    """{(lang, label): {client: summary}} in first-seen order."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[(r["lang"], r["label"])][r["client"]].append(r)
    out = {}
    for key, clients in groups.items():
        out[key] = {}
        for client, rs in clients.items():
            ops = [r["ops_per_sec"] for r in rs]
            out[key][client] = {
                "median": statistics.median(ops), "min": min(ops), "max": max(ops), "n": len(ops),
                "cpu": statistics.median(r["cpu_us_per_op"] for r in rs),
                "ns": statistics.median(r.get("ns_per_op", 1e9 / r["ops_per_sec"]) for r in rs),
                "inflight": max(1, rs[0]["concurrency"] * max(rs[0]["pipeline"], 1)),
                "concurrency": rs[0]["concurrency"], "pipeline": rs[0]["pipeline"],
                "by_rep": {r.get("rep", i): r["ops_per_sec"] for i, r in enumerate(rs)},
            }
    return out


def fmt_ops(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def fmt_ratio(value):
    return f"{value:.2f}×" if value is not None else "–"


def table(summary):
    """The scenario rows; ratios are medians of the ratios within each repetition."""
    lines = ["| scenario | client | ops/s (median) | spread (min–max) | client CPU µs/op | ratio vs peer | ratio vs limit |",
             "|---|---|---:|---:|---:|---|---:|"]
    for (lang, label), clients in summary.items():
        limit = clients.get("limit")
        peers = [c for c in clients if c not in ("redpool", "limit")]
        for client in ["redpool"] + peers + (["limit"] if limit else []):
            s = clients.get(client)
            if not s:
                continue
            if client == "redpool":
                vs_peer = ", ".join(f"{fmt_ratio(paired_ratio(clients, [p]))} {p}" for p in peers)
            else:
                vs_peer = ""
            vs_limit = (fmt_ratio(paired_ratio(clients, ["limit"], client))
                        if limit and client != "limit" else "")
            scenario = f"{LANG_NAMES[lang].split(' ')[0]}: {label}"
            name = "**redpool**" if client == "redpool" else ("redis-benchmark (limit)" if client == "limit" else client)
            lines.append(f"| {scenario} | {name} | {fmt_ops(s['median'])} | {fmt_ops(s['min'])} – {fmt_ops(s['max'])} "
                         f"| {s['cpu']:.2f} | {vs_peer} | {vs_limit} |")
    return lines


def paired_ratio(clients, others, client="redpool"):
    """The median over repetitions of `client`'s throughput over the fastest of `others` in the
    same repetition; None when a client is missing."""
    rp = clients.get(client)
    peers = [clients.get(name) for name in others]
    if not rp or not all(peers):
        return None
    ratios = [rp["by_rep"][rep] / max(p["by_rep"][rep] for p in peers)
              for rep in rp["by_rep"] if all(rep in p["by_rep"] for p in peers)]
    return statistics.median(ratios) if ratios else None


def targets(summary):
    lines = ["| target | measured | met? |", "|---|---:|:---:|"]
    for lang, label, what, threshold in TARGETS:
        clients = summary.get((lang, label), {})
        rp = clients.get("redpool")
        if what.startswith("peer:"):
            others = what[5:].split(",")
            value = paired_ratio(clients, others)
            peer = others[0] if len(others) == 1 else f"the best of {' and '.join(others)}"
            if label.startswith("asyncio"):
                peer = peer.replace("redis-py", "redis.asyncio")
            text, ok = f"{LANG_NAMES[lang].split(' ')[0]} {label}: ≥ {threshold}× {peer}", lambda v: v >= threshold
            shown = f"{value:.2f}×" if value is not None else "n/a"
        elif what == "limit":
            value = paired_ratio(clients, ["limit"])
            text, ok = f"{LANG_NAMES[lang].split(' ')[0]} {label}: ≥ {threshold}× the limit", lambda v: v >= threshold
            shown = f"{value:.2f}×" if value is not None else "n/a"
        elif what == "ns":
            value = rp["ns"] if rp else None
            text, ok = f"Rust {label}: ≤ {threshold:.0f} ns", lambda v: v <= threshold
            shown = f"{value:.0f} ns" if value is not None else "n/a"
        else:
            one = summary.get((lang, label.replace("16 threads", "1 thread")), {}).get("redpool")
            value = rp["median"] / one["median"] if rp and one else None
            text, ok = f"Rust {label}: no collapse (≥ {threshold}× the 1-thread throughput)", lambda v: v >= threshold
            shown = f"{value:.2f}×" if value is not None else "n/a"
        met = "n/a" if value is None else ("yes" if ok(value) else "**no**")
        lines.append(f"| {text} | {shown} | {met} |")
    return lines


def chart(summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = [l for l in LANG_NAMES if any(k[0] == l for k in summary)]
    fig, axes = plt.subplots(1, len(langs), figsize=(4.6 * len(langs), 4.2), squeeze=False)
    for ax, lang in zip(axes[0], langs):
        series = defaultdict(list)
        for (l, label), clients in summary.items():
            # One line per client: GET of 1-byte values (Python's SET and 1 KiB rows are in the table).
            if l != lang or (lang == "python" and not label.startswith("GET 1 B")):
                continue
            for client, s in clients.items():
                x = s["concurrency"] if lang == "rust" else s["inflight"]
                series[client].append((x, s["median"], s["min"], s["max"]))
        for client, points in series.items():
            points.sort()
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            style = {"redpool": dict(color="tab:red", linewidth=2.5, marker="o"),
                     "limit": dict(color="black", linestyle="--", marker="x")}.get(client, dict(marker="s"))
            name = "redis-benchmark (limit)" if client == "limit" else client
            ax.errorbar(xs, ys, yerr=err, label=name, capsize=3, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(LANG_NAMES[lang] + (": GET 1 B" if lang != "rust" else ""), fontsize=10)
        ax.set_xlabel("threads" if lang == "rust" else "requests in flight (callers × pipeline)")
        ax.set_ylabel("checkouts/s" if lang == "rust" else "ops/s (median, min–max bars)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("redpool vs peers vs the redis-benchmark limit (same run, same machine)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("results")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--note", default="", help="a line added under the header")
    args = p.parse_args()
    meta, rows = load(args.results)
    summary = summarize(rows)
    md = ["# redpool benchmark results", ""]
    if args.quick or meta.get("quick"):
        md += ["**Smoke run (`--quick`): every scenario once at a tiny size. These numbers mean nothing.**", ""]
    md += [f"Run {meta.get('time', '?')}: Redis {meta.get('redis', '?')}, {meta.get('cpus', '?')} CPUs, "
           f"{meta.get('reps', '?')} repetitions per client, {meta.get('keys', '?')} preloaded keys, "
           + ("server on CPU 0 and clients on CPU 1 (taskset)." if meta.get("taskset") else "no taskset (unpinned)."),
           "",
           "Only ratios within this run count: the machine is shared and noisy, so absolute figures move "
           "from run to run; every client of a scenario ran alternately in the same minutes, and each "
           "ratio is the median of the ratios taken within each repetition. "
           "*limit* is `redis-benchmark` with the same connections (-c) and pipeline depth (-P). "
           "Client CPU is user + system time of the whole client process (every thread) per command.",
           ""] + ([args.note, ""] if args.note else []) + ["## Targets (issues 8 and 17)", ""] + targets(summary) + ["", "## All scenarios", ""] + table(summary)
    md += ["", "![throughput](throughput.png)", "",
           "Produced by `bash bench/run`; see bench/README.md for what each scenario measures. "
           "PROFILE.md holds the profiles of the scenarios redpool loses.", ""]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    chart(summary, os.path.join(args.out, "throughput.png"))
    print("\n".join(targets(summary)))


if __name__ == "__main__":
    main()
