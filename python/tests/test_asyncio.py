"""redpool.asyncio: the same methods as awaitables, the event loop never blocked, and
cancellation that can never hand a caller another request's reply."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import threading
import time

import pytest
import redis

import redpool
import redpool.asyncio

from proxy import DelayProxy
from support import RELAXED_HEALTH

KEYS = 500


def run(coro):
    return asyncio.run(coro)


def test_commands_and_return_types(server, oracle):
    async def main():
        # Generous health latency thresholds: health() below checks plumbing, not latency.
        r = redpool.asyncio.Redis.from_url(server.url + RELAXED_HEALTH, decode_responses=True)
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
    # While the BLPOP awaits its reply, a task on the same loop sees it blocked on the server
    # and pushes the element that ends it. A blocked loop would run no task: the BLPOP would
    # wait out its 10 s and return None.
    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, client_name="py:loop", shared_pool=False)
        key = "py:loop:list"
        seen = False

        async def waker():
            nonlocal seen
            for _ in range(1000):  # 10 ms apart: about 10 s at most
                clients = await r.client_list()
                if any(c["name"] == "py:loop" and "b" in c["flags"] for c in clients):
                    seen = True
                    await r.lpush(key, "woke")
                    return
                await asyncio.sleep(0.01)

        task = asyncio.create_task(waker())
        try:
            result = await r.blpop([key], timeout=10)
        finally:
            task.cancel()
            await r.aclose()
        return seen, result

    assert run(main()) == (True, (b"py:loop:list", b"woke"))


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


# The native completion path (Pool.submit_*, one completion queue per event loop) ---------------


def test_a_thousand_concurrent_tasks_each_get_their_own_reply(server, oracle):
    """1000 tasks at once, each SETting and GETting its own key, among pipelines and
    transactions: every reply belongs to its own call."""

    async def one(r, i):
        assert await r.set(f"own:{i}", f"v{i}") is True
        assert await r.get(f"own:{i}") == f"v{i}", f"reply mix-up on own:{i}"
        if i % 10 == 0:
            pipe = r.pipeline(transaction=i % 20 == 0)
            pipe.get(f"own:{i}").incr(f"n:{i}").hgetall(f"none:{i}")
            assert await pipe.execute() == [f"v{i}", 1, {}]
        return i

    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, decode_responses=True, shared_pool=False,
                                           max_connections=16)
        done = await asyncio.gather(*(one(r, i) for i in range(1000)))
        assert sorted(done) == list(range(1000))
        calls = redpool.asyncio._calls(asyncio.get_running_loop())
        assert calls is not None and calls.waiting == {}
        assert r.pool_stats()["in_use"] == 0
        await r.aclose()

    run(main())


def test_one_loop_iteration_goes_out_as_one_pipeline(server, oracle):
    """Auto-pipelining: the commands the tasks of one loop iteration send share one checkout
    and one round trip, and each still gets its own outcome: a server error, a refused command
    and a blocking command (sent alone) fail or wait only for themselves, as with the sync
    client."""
    oracle.set("text", "not a number")
    sync = redpool.Redis.from_url(server.url, decode_responses=True)
    with pytest.raises(redis.exceptions.ResponseError) as incr_error:
        sync.incr("text")
    with pytest.raises(redis.exceptions.RedisError) as select_error:
        sync.execute_command("SELECT", 1)

    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, decode_responses=True, shared_pool=False)
        odd_ones = {100: lambda: r.incr("text"), 200: lambda: r.execute_command("SELECT", 1),
                    250: lambda: r.blpop(["empty"], timeout=0.1)}
        calls = [odd_ones.get(i, lambda i=i: r.echo(f"own:{i}"))() for i in range(300)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        stats = r.pool_stats()
        await r.aclose()
        return results, stats

    results, stats = run(main())
    for i, result in enumerate(results):
        if i == 100:
            assert type(result) is type(incr_error.value) and str(result) == str(incr_error.value)
        elif i == 200:
            assert type(result) is type(select_error.value)
            assert str(result) == str(select_error.value)
        elif i == 250:
            assert result is None
        else:
            assert result == f"own:{i}", f"reply mix-up at {i}: {result!r}"
    # One checkout for the 298 commands of the batch, one for the BLPOP sent alone.
    assert stats["acquires"] == 2, stats
    assert stats["commands"] >= 299 and stats["in_use"] == 0, stats


def test_a_long_iteration_is_split_into_batches(server, oracle):
    """1100 commands of one iteration go out as 3 batches (at most 512 commands each), on as
    many checkouts, and each caller gets its own reply."""

    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, decode_responses=True, shared_pool=False)
        results = await asyncio.gather(*(r.echo(f"e{i}") for i in range(1100)))
        assert results == [f"e{i}" for i in range(1100)]
        stats = r.pool_stats()
        await r.aclose()
        return stats

    assert run(main())["acquires"] == 3


def test_a_batch_whose_flush_was_lost_goes_out_with_a_later_one(server, oracle):
    """A command queued for a flush that was never scheduled (a KeyboardInterrupt between the
    submit and ``call_soon``) is sent by the flush a later command asks for once the batch is
    stale, instead of wedging every later command of the loop."""

    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, shared_pool=False)
        loop = asyncio.get_running_loop()
        calls = redpool.asyncio._calls(loop)
        token = next(calls.tokens)
        lost = loop.create_future()
        calls.waiting[token] = lost
        assert r._pool.submit_execute(calls.native, token, [b"ECHO", b"lost"], None) is True
        await asyncio.sleep(0.2)  # no flush: as if interrupted before call_soon
        assert await asyncio.wait_for(r.echo("next"), 30) == b"next"
        assert await asyncio.wait_for(lost, 30) == b"lost"
        await r.aclose()

    run(main())


def test_cancelled_in_flight_under_load_then_nothing_misrouted(server, oracle):
    """Commands, pipelines and transactions cancelled right after they were submitted, or by a
    timeout while in flight, with no proxy slowing anything down: afterwards every reply is its
    own, and the results of the cancelled calls were dropped when their queue was drained."""
    oracle.mset({f"key:{i}": f"val:{i}" for i in range(KEYS)})
    rng = random.Random(17)

    async def call(r, i):
        kind = i % 3
        if kind == 0:
            assert await r.get(f"key:{i % KEYS}") == f"val:{i % KEYS}"
        else:
            pipe = r.pipeline(transaction=kind == 2)
            pipe.get(f"key:{i % KEYS}").get(f"key:{(i + 1) % KEYS}")
            assert await pipe.execute() == [f"val:{i % KEYS}", f"val:{(i + 1) % KEYS}"]

    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, decode_responses=True, shared_pool=False,
                                           max_connections=4, acquire_timeout=30)
        loop = asyncio.get_running_loop()
        cancelled = done = 0
        for round_ in range(6):
            tasks = [asyncio.create_task(call(r, rng.randrange(10 * KEYS))) for _ in range(600)]
            for task in tasks:
                if rng.random() < 0.5:
                    if round_ % 2:
                        loop.call_soon(task.cancel)
                    else:
                        loop.call_later(rng.uniform(0, 0.005), task.cancel)
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, asyncio.CancelledError):
                    cancelled += 1
                elif isinstance(result, BaseException):
                    raise result
                else:
                    done += 1
            # Timeouts cancel awaits in flight too.
            for i in range(50):
                try:
                    await asyncio.wait_for(call(r, i), timeout=rng.uniform(0, 0.0005))
                except asyncio.TimeoutError:
                    cancelled += 1
        # Every reply after that is its own.
        checks = [call(r, i) for i in range(3 * KEYS)]
        await asyncio.gather(*checks)
        # The cancelled calls ran to completion; their results were dropped at drain.
        calls = redpool.asyncio._calls(loop)
        for _ in range(500):
            if not calls.waiting:
                break
            await asyncio.sleep(0.01)
        assert calls.waiting == {}
        stats = r.pool_stats()
        await r.aclose()
        return cancelled, done, stats

    cancelled, done, stats = run(main())
    assert cancelled > 500 and done > 500, (cancelled, done)
    assert stats["in_use"] == 0 and stats["errors"]["protocol"] == 0


def test_errors_keep_their_classes_and_messages(server, oracle):
    """Errors through the completion queue are the sync client's, class and message; an
    exception raised by a redis-py response callback surfaces as it does there."""
    sync = redpool.Redis.from_url(server.url)
    oracle.set("s", "text")

    async def main():
        r = redpool.asyncio.Redis.from_url(server.url)
        with pytest.raises(redis.exceptions.ResponseError) as raised:
            await r.hset("s", "f", "v")
        with pytest.raises(redis.exceptions.ResponseError) as sync_raised:
            sync.hset("s", "f", "v")
        assert type(raised.value) is type(sync_raised.value)
        assert str(raised.value) == str(sync_raised.value)
        with pytest.raises(redis.exceptions.NoScriptError):
            await r.evalsha("0" * 40, 0)
        # mget([]) gets redis-py's default for the server's error.
        assert await r.mget([]) == []
        pipe = r.pipeline(transaction=False)
        pipe.set("p", 1).hset("s", "f", "v").get("p")
        replies = await pipe.execute(raise_on_error=False)
        assert replies[0] is True and isinstance(replies[1], redis.exceptions.ResponseError)
        assert replies[2] == b"1"
        # A callback that raises: INCRBYFLOAT's float() on a reply that is not a number.
        r.response_callbacks["GET"] = lambda response, **options: float(response)
        with pytest.raises(ValueError):
            await r.get("s")
        closed = redpool.asyncio.Redis(port=server.port, shared_pool=False)
        await closed.close_pool(0)
        with pytest.raises(redpool.PoolClosedError) as closed_raised:
            await closed.get("k")
        assert "closed" in str(closed_raised.value)
        unreachable = redpool.asyncio.Redis(port=support_free_port(), shared_pool=False,
                                            socket_connect_timeout=0.5, acquire_timeout=1)
        with pytest.raises(redis.exceptions.ConnectionError) as refused:
            await unreachable.get("k")
        assert isinstance(refused.value, redpool.ConnectionError)

    run(main())


def support_free_port():
    from support import free_port

    return free_port()


def test_fork_child_uses_asyncio_after_the_parent_did(server, oracle):
    """The parent's worker threads and completion queues do not exist in a forked child: it
    gets its own, on its own connections, and the parent goes on with its loop untouched."""
    client = redpool.asyncio.Redis.from_url(server.url, shared_pool=False)

    async def work(tag, n=200):
        await asyncio.gather(*(client.set(f"{tag}:{i}", i) for i in range(n)))
        values = await asyncio.gather(*(client.get(f"{tag}:{i}") for i in range(n)))
        assert values == [str(i).encode() for i in range(n)]
        pipe = client.pipeline()
        pipe.incr(f"{tag}:n").incr(f"{tag}:n")
        assert await pipe.execute() == [1, 2]
        return True

    async def parent_before_and_after_fork():
        assert await work("parent")
        loop = asyncio.get_running_loop()
        assert redpool.asyncio._calls(loop) is not None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a loop of its own (the parent's is not the child's)
            status = 1
            try:
                ok = asyncio.run(work("child"))
                os.write(write, b"ok" if ok else b"bad")
                status = 0
            finally:
                os._exit(status)
        os.close(write)

        def read_report():
            with os.fdopen(read, "rb") as pipe:
                return pipe.read()

        report = await loop.run_in_executor(None, read_report)
        _, status = os.waitpid(pid, 0)
        assert await work("parent-after")
        return report, status

    report, status = run(parent_before_and_after_fork())
    assert report == b"ok" and status == 0
    assert oracle.get("child:7") == b"7" and oracle.get("child:n") == b"2"


def test_two_event_loops_in_two_threads_share_one_client(server, oracle):
    """One client used by two event loops at once, each in its own thread, each with its own
    completion queue: every reply goes to its own loop and call."""
    client = redpool.asyncio.Redis.from_url(server.url, decode_responses=True, shared_pool=False,
                                            max_connections=4)
    errors = []
    queues = []

    def thread(tag):
        async def main():
            queues.append(redpool.asyncio._calls(asyncio.get_running_loop()))
            for round_ in range(5):
                await asyncio.gather(*(client.set(f"{tag}:{i}", f"{tag}{i}") for i in range(200)))
                got = await asyncio.gather(*(client.get(f"{tag}:{i}") for i in range(200)))
                assert got == [f"{tag}{i}" for i in range(200)], f"{tag}: replies of another loop"

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=thread, args=(tag,)) for tag in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(queues) == 2 and queues[0] is not queues[1]


def test_closed_loops_leak_no_descriptor(server, oracle):
    """Each loop's queue (and its eventfd) goes with its loop, calls in flight when the loop
    closed included: their completion finds nobody, and nothing raises."""
    client = redpool.asyncio.Redis.from_url(server.url, shared_pool=False)

    def eventfds():
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += "eventfd" in os.readlink(f"/proc/self/fd/{fd}")
            except OSError:  # the listing's own descriptor, closed already
                pass
        return count

    async def leave_calls_in_flight():
        await client.set("k", "v")
        # Submitted, never awaited to the end: the loop closes with them in flight.
        for _ in range(5):
            asyncio.ensure_future(client.blpop(["nothing"], timeout=0.2))
        await asyncio.sleep(0)

    run(client.ping())
    gc.collect()
    before = eventfds()
    for _ in range(20):
        run(leave_calls_in_flight())
    # The 100 BLPOPs (0.2 s each, 50 connections) end, their completions find closed loops and
    # release the last hold on the queues; waited for, not timed: a loaded machine is slow.
    deadline = time.monotonic() + 60
    while True:
        gc.collect()
        if eventfds() <= before or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert eventfds() <= before
    assert run(client.get("k")) == b"v"
