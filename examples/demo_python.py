"""A tour of redpool's Python package against a real server: the redis-py API on the shared Rust
pool, threads, a pipeline, a WATCH transaction, an error with both class hierarchies, asyncio,
events, health and the pool stats.

Run it with ``bash examples/demo.sh`` (starts a throwaway redis-server and installs the package
into .venv), or point it at a server: ``REDIS_URL=redis://127.0.0.1:6379/0 python
examples/demo_python.py`` with redpool installed (``pip install ./python``). Every key it writes
starts with ``redpool:demo:py:`` and is deleted at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

import redis  # only to show that redis-py's exception classes catch redpool's errors

import redpool as redis_compat  # the one-line switch: was `import redis`
import redpool.asyncio

THREADS = 8
OPS = 200
PREFIX = "redpool:demo:py:"


def main() -> int:
    url = os.environ.get("REDIS_URL")
    if not url:
        print("set REDIS_URL (or run examples/demo.sh)", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="   log %(name)s %(levelname)s: %(message)s")

    # 1. redis-py's client API; every client with these settings shares one Rust pool.
    r = redis_compat.Redis.from_url(url, decode_responses=True, max_connections=8)
    other = redis_compat.Redis.from_url(url, decode_responses=True, max_connections=8)
    print(f"== {r!r}, a second client shares its pool: {r._pool.same_pool(other._pool)}")
    events = []
    r.add_event_listener(lambda e: events.append(e["type"]))

    # 2. Threads share the pool; the GIL is released while each one waits for Redis.
    def worker(t: int) -> None:
        for i in range(1, OPS + 1):
            assert r.incr(f"{PREFIX}counter:{t}") == i
            r.incr(f"{PREFIX}counter:total")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"== {THREADS} threads x {OPS} INCR: total={r.get(PREFIX + 'counter:total')}")

    # 3. redis-py's return types: dicts, tuples with float scores, booleans.
    r.hset(PREFIX + "user", mapping={"name": "ada", "visits": 3})
    r.zadd(PREFIX + "scores", {"ada": 9.5, "bob": 7})
    print(f"== hgetall -> {r.hgetall(PREFIX + 'user')}, "
          f"zrange withscores -> {r.zrange(PREFIX + 'scores', 0, -1, withscores=True)}")

    # 4. A pipeline (one round trip) and an optimistic WATCH transaction.
    with r.pipeline(transaction=False) as pipe:
        for i in range(50):
            pipe.set(f"{PREFIX}p:{i}", f"v{i}")
        replies = pipe.execute()
    print(f"== pipeline: {len(replies)} SETs in one round trip, all True: {all(replies)}")
    r.set(PREFIX + "balance", 100)
    attempts = []

    def deposit(pipe) -> None:
        balance = int(pipe.get(PREFIX + "balance"))
        if not attempts:
            r.incrby(PREFIX + "balance", 5)  # a concurrent writer spoils the first attempt
        attempts.append(balance)
        pipe.multi()
        pipe.set(PREFIX + "balance", balance + 10)

    r.transaction(deposit, PREFIX + "balance")
    print(f"== WATCH transaction: attempts read {attempts}, balance now {r.get(PREFIX + 'balance')}")

    # 5. Errors are redpool's and redis-py's classes at once.
    try:
        r.incr(PREFIX + "user")
    except redis.ResponseError as error:
        print(f"== INCR on a hash: {type(error).__module__}.{type(error).__name__} "
              f"(also redis.ResponseError), code={error.code}: {error}")

    # 6. asyncio: the same methods as awaitables, on the same pool.
    async def async_part() -> None:
        ar = redpool.asyncio.Redis.from_url(url, decode_responses=True, max_connections=8)
        values = await asyncio.gather(*(ar.incr(PREFIX + "async") for _ in range(100)))
        print(f"== asyncio: 100 concurrent INCRs -> max {max(values)}")

    asyncio.run(async_part())

    # 7. Health, breaker, stats, events; then clean up.
    health = r.health()
    print(f"== health: {health['status']}, ping {health['ping_latency'] * 1000:.2f} ms, "
          f"breaker {r.breaker_state()}, server {health['server_info'].get('redis_version')}")
    deleted = sum(r.delete(*batch) for batch in _batches(r.scan_iter(PREFIX + "*"), 200))
    print(f"== cleanup: deleted {deleted} keys matching {PREFIX}*")
    stats = r.pool_stats()
    print(f"== pool stats: open={stats['open']} idle={stats['idle']} in_use={stats['in_use']} "
          f"created={stats['connections_created']} acquires={stats['acquires']} "
          f"commands={stats['commands']} wait_max={stats['wait_time_max'] * 1000:.2f} ms")
    print(f"== events seen: { {kind: events.count(kind) for kind in sorted(set(events))} }")
    return 0


def _batches(items, size):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


if __name__ == "__main__":
    sys.exit(main())
