"""What the main thread's hand-off costs one caller (bench/results/PROFILE.md, "Python, one
thread"): GETs of one key by redpool on the main thread (each call on a helper thread, so that
Ctrl-C works), by redpool from a second thread (inline, the GIL released, no hand-off) and by
redis-py, alternately; medians and the median of the per-round ratios.

    taskset -c 1 bench/.venv/bin/python bench/python/main_thread_handoff.py PORT [GETS] [ROUNDS]
"""

import statistics
import sys
import threading
import time

import redis

import redpool


def rate(client, gets):
    """GETs per second of `gets` GETs in a row."""
    started = time.perf_counter()
    for _ in range(gets):
        client.get(b"k")
    return gets / (time.perf_counter() - started)


def from_second_thread(client, gets):
    """`rate` measured on a thread other than the main one."""
    out = []
    worker = threading.Thread(target=lambda: out.append(rate(client, gets)))
    worker.start()
    worker.join()
    return out[0]


def main():
    port = int(sys.argv[1])
    gets = int(sys.argv[2]) if len(sys.argv) > 2 else 15000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    redis.Redis(port=port).set(b"k", b"x")
    ours = redpool.Redis(port=port, shared_pool=False, max_connections=1)
    theirs = redis.Redis(port=port)
    rows = {"redpool, main thread": [], "redpool, second thread": [], "redis-py": []}
    for _ in range(rounds):
        rate(ours, 1000), rate(theirs, 1000)  # warm-up
        rows["redpool, main thread"].append(rate(ours, gets))
        rows["redpool, second thread"].append(from_second_thread(ours, gets))
        rows["redis-py"].append(rate(theirs, gets))
    for name, rates in rows.items():
        print(f"{name:24} {statistics.median(rates):9.0f} GET/s")
    peer = rows["redis-py"]
    for name in ("redpool, main thread", "redpool, second thread"):
        ratio = statistics.median(a / b for a, b in zip(rows[name], peer))
        print(f"{name} / redis-py: {ratio:.2f}x")


if __name__ == "__main__":
    main()
