"""The Python benchmark harness: arguments, the working set, caller threads, timing, client CPU
(getrusage of the whole process, every thread included) and the one JSON line per measurement.
bench.py supplies the clients; both clients have redis-py's API, so the operations are shared."""

import argparse
import json
import resource
import threading
import time


def parse_args(clients):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--client", choices=sorted(clients), required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scenario", choices=["get", "set"], default="get")
    p.add_argument("--label", default="")
    p.add_argument("--concurrency", type=int, default=1, help="caller threads")
    p.add_argument("--pipeline", type=int, default=1, help="commands per round trip")
    p.add_argument("--size", type=int, default=1, help="value size in bytes")
    p.add_argument("--ops", type=int, default=10000)
    p.add_argument("--keys", type=int, default=10000, help="preloaded keys key:%%012d below this")
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--asyncio", action="store_true",
                   help="the asyncio clients; --concurrency is then the number of tasks")
    return p.parse_args()


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def report(lang, client_name, args, ops, seconds, cpu):
    """Prints the one JSON line of a measurement."""
    print(json.dumps({
        "lang": lang, "scenario": args.scenario, "label": args.label, "client": client_name,
        "concurrency": args.concurrency, "pipeline": args.pipeline, "value_size": args.size,
        "ops": ops, "seconds": round(seconds, 6), "ops_per_sec": round(ops / seconds, 1),
        "cpu_us_per_op": round(cpu * 1e6 / ops, 4),
    }), flush=True)


def make_batch(client, args):
    """A function running one batch (one command, or one pipeline of args.pipeline) from a key
    index; it checks the replies, so a miss or a wrong reply fails the run."""
    keys = [b"key:%012d" % i for i in range(args.keys)]
    value = b"x" * args.size
    n, nkeys, is_set = args.pipeline, args.keys, args.scenario == "set"

    def single(i):
        key = keys[i % nkeys]
        if is_set:
            ok = client.set(key, value)
        else:
            ok = client.get(key) == value
        if not ok:
            raise SystemExit(f"bad reply for {key!r}")

    def pipelined(i):
        pipe = client.pipeline(transaction=False)
        for j in range(i, i + n):
            if is_set:
                pipe.set(keys[j % nkeys], value)
            else:
                pipe.get(keys[j % nkeys])
        replies = pipe.execute()
        if len(replies) != n or not all(r is True or r == value for r in replies):
            raise SystemExit("bad pipeline reply")

    return single if n == 1 else pipelined


def run(lang, client_name, client, args):
    """Runs args.ops commands over args.concurrency threads and prints the JSON line."""
    batch = make_batch(client, args)
    batches = -(-args.ops // args.pipeline)
    done = [0] * args.concurrency
    failures = []
    start = threading.Barrier(args.concurrency + 1)
    deadline = [0.0]

    def caller(t):
        mine = batches // args.concurrency + (1 if t < batches % args.concurrency else 0)
        i = t * 7919  # callers start at different keys
        start.wait()
        try:
            for b in range(mine):
                if b % 64 == 0 and time.monotonic() > deadline[0]:
                    break
                batch(i)
                i += args.pipeline
                done[t] += args.pipeline
        except BaseException as exc:  # noqa: BLE001 - reported below, the run fails
            failures.append(exc)

    batch(0)  # connect (and warm the pool) outside the timed part
    # One caller runs on the main thread, as a script calls (redpool then hands each call to its
    # helper thread, so Ctrl-C works); several callers are threads.
    threads = [threading.Thread(target=caller, args=(t,)) for t in range(args.concurrency)]
    if args.concurrency == 1:
        threads = []
        start = threading.Barrier(1)
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + args.max_seconds
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    if threads:
        start.wait()
    else:
        caller(0)
    for t in threads:
        t.join()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    ops = sum(done)
    if failures or ops == 0:
        raise SystemExit(f"{client_name}: failed: {failures[:1]}")
    report(lang, client_name, args, ops, seconds, cpu)


def run_async(lang, client_name, make_client, args):
    """Runs args.ops GETs or SETs over args.concurrency asyncio tasks of one event loop, each
    awaiting its commands one at a time, and prints the JSON line (as :func:`run`)."""
    import asyncio

    keys = [b"key:%012d" % i for i in range(args.keys)]
    value = b"x" * args.size
    nkeys, is_set = args.keys, args.scenario == "set"

    async def main():
        client = make_client(args)
        done = [0] * args.concurrency
        deadline = [0.0]

        async def one(i):
            key = keys[i % nkeys]
            ok = (await client.set(key, value)) if is_set else (await client.get(key)) == value
            if not ok:
                raise SystemExit(f"bad reply for {key!r}")

        async def task(t):
            mine = args.ops // args.concurrency + (1 if t < args.ops % args.concurrency else 0)
            i = t * 7919  # tasks start at different keys
            for b in range(mine):
                if b % 64 == 0 and time.monotonic() > deadline[0]:
                    break
                await one(i)
                i += 1
                done[t] += 1

        # Connect (and open every connection the tasks will use) outside the timed part.
        await asyncio.gather(*(one(t) for t in range(args.concurrency)))
        deadline[0] = time.monotonic() + args.max_seconds
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(task(t) for t in range(args.concurrency)))
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        await client.aclose()
        return sum(done), seconds, cpu

    ops, seconds, cpu = asyncio.run(main())
    if ops == 0:
        raise SystemExit(f"{client_name}: failed: no operation completed")
    report(lang, client_name, args, ops, seconds, cpu)
