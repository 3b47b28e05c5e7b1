"""redpool.asyncio: the same methods as awaitables, the event loop never blocked, and
cancellation that can never hand a caller another request's reply."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis

import redpool
import redpool.asyncio

from proxy import DelayProxy

KEYS = 500


def run(coro):
    return asyncio.run(coro)


def test_commands_and_return_types(server, oracle):
    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, decode_responses=True)
        assert await r.set("k", "v") is True
        assert await r.get("k") == "v"
        await r.hset("h", mapping={"a": 1})
        assert await r.hgetall("h") == {"a": "1"}
        await r.zadd("z", {"m": 1.5})
        assert await r.zrange("z", 0, -1, withscores=True) == [("m", 1.5)]
        assert sorted([k async for k in r.scan_iter("*")]) == ["h", "k", "z"]
        async with r.pipeline() as pipe:
            pipe.incr("n").incr("n").get("n")
            assert await pipe.execute() == [1, 2, "2"]
        with pytest.raises(redis.exceptions.ResponseError):
            await r.lpush("k", 1)
        assert (await r.health())["status"] in ("healthy", "degraded")
        assert r.pool_stats()["in_use"] == 0
        async with r.lock("res", timeout=2):
            assert await r.get("res") is not None
        await r.aclose()

    run(main())


def test_watch_conflict_and_transaction_helper(server, oracle):
    async def main():
        r = redpool.asyncio.Redis.from_url(server.url)
        await r.set("k", 1)
        async with r.pipeline() as pipe:
            await pipe.watch("k")
            assert int(await pipe.get("k")) == 1
            oracle.set("k", 5)
            pipe.multi()
            pipe.set("k", 2)
            with pytest.raises(redis.WatchError):
                await pipe.execute()

        async def bump(pipe):
            value = int(await pipe.get("k"))
            pipe.multi()
            pipe.set("k", value + 1)

        assert await r.transaction(bump, "k") == [True]
        assert await r.get("k") == b"6"

    run(main())


def test_event_loop_keeps_running_during_blocking_calls(server, oracle):
    async def main():
        r = redpool.asyncio.Redis.from_url(server.url)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        assert await r.blpop(["nothing"], timeout=0.5) is None
        task.cancel()
        return ticks

    assert run(main()) >= 30


def test_cancelled_commands_never_leave_a_reply_behind(server, oracle):
    """The CVE-2023-28858/28859 scenario: thousands of GETs behind a proxy that delays and splits
    replies, cancelled at random moments; every reply that arrives must be its own."""
    oracle.mset({f"key:{i}": f"val:{i}" for i in range(KEYS)})
    proxy = DelayProxy(server.port, max_delay=0.002)
    rng = random.Random(28858)

    async def get(r, i):
        assert await r.get(f"key:{i}") == f"val:{i}", f"reply mix-up on key:{i}"
        return i

    async def main():
        r = redpool.asyncio.Redis(host="127.0.0.1", port=proxy.port, max_connections=8,
                                  decode_responses=True, shared_pool=False, acquire_timeout=30)
        outcomes = {"done": 0, "cancelled": 0}
        for _ in range(8):
            tasks = [asyncio.create_task(get(r, rng.randrange(KEYS))) for _ in range(500)]
            loop = asyncio.get_running_loop()
            for task in tasks:
                if rng.random() < 0.5:
                    loop.call_later(rng.uniform(0, 0.05), task.cancel)
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, asyncio.CancelledError):
                    outcomes["cancelled"] += 1
                elif isinstance(result, BaseException):
                    raise result
                else:
                    outcomes["done"] += 1
        # After all that, every connection in the pool must still be in step.
        checks = [get(r, i) for i in range(KEYS)]
        assert sorted(await asyncio.gather(*checks)) == list(range(KEYS))
        stats = r.pool_stats()
        await r.aclose()
        return outcomes, stats

    try:
        outcomes, stats = run(main())
    finally:
        proxy.stop()
    assert outcomes["cancelled"] > 200 and outcomes["done"] > 200, outcomes
    # Commands that ran although their await was cancelled (cancelled in flight, not in queue):
    assert stats["commands"] - outcomes["done"] - KEYS > 20, (outcomes, stats)
    assert stats["in_use"] == 0 and stats["errors"]["protocol"] == 0
