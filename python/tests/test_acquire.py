"""``Redis.acquire()``: one connection checked out for one caller (sync and asyncio). A try
(``timeout=0``) fails at once when the only connection is held; a ``"high"`` waiter goes ahead of
a ``"normal"`` one that queued first; commands run on the checked-out connection with the client's
decoding; leaving the block returns it, even on an exception, and closes it after a connection
error. No check depends on how fast anything is."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable, List

import pytest

import redpool
import redpool.asyncio


def one_connection(server, **kwargs) -> redpool.Redis:
    """A client with a pool of its own and a single connection, whose waits last long enough
    that a try returning before them did not wait."""
    return redpool.Redis.from_url(server.url, shared_pool=False, max_connections=1,
                                  acquire_timeout=60, **kwargs)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after 20 s"
        time.sleep(0.005)


def test_a_try_fails_at_once_while_the_only_connection_is_held(server, oracle):
    r = one_connection(server)
    with r.acquire() as held:
        assert held.ping()
        started = time.monotonic()
        for priority in ("normal", "high"):
            with pytest.raises(redpool.PoolTimeoutError, match="max_connections=1"):
                r.acquire(timeout=0, priority=priority)
        # Bounds "did not wait for the 60 s acquire_timeout", not speed.
        assert time.monotonic() - started < 30
        stats = r.pool_stats()
        assert stats["in_use"] == 1 and stats["waiting"] == 0
    with r.acquire(timeout=0) as conn:
        assert conn.ping()
    r.close()


def test_a_high_priority_waiter_goes_ahead_of_a_normal_one_that_queued_first(server, oracle):
    r = one_connection(server)
    served: List[str] = []

    def wait(priority: str) -> None:
        with r.acquire(priority=priority) as conn:
            served.append(priority)  # before the release: the other waiter is served after
            conn.ping()

    held = r.acquire()
    normal = threading.Thread(target=wait, args=("normal",))
    normal.start()
    wait_until(lambda: r.pool_stats()["waiting"] == 1, "one waiter")
    high = threading.Thread(target=wait, args=("high",))
    high.start()
    wait_until(lambda: r.pool_stats()["waiting"] == 2, "two waiters")
    held.release()
    normal.join(30)
    high.join(30)
    assert served == ["high", "normal"]
    assert r.pool_stats()["in_use"] == 0
    r.close()


def test_commands_run_on_the_checked_out_connection(server, oracle):
    r = redpool.Redis.from_url(server.url, shared_pool=False, decode_responses=True)
    with r.acquire(priority="high") as conn:
        assert isinstance(conn, redpool.PooledConnection)
        assert "checked out" in repr(conn)
        assert conn.set("k", "v") is True
        assert conn.get("k") == "v"
        assert conn.hset("h", mapping={"a": "1", "b": "2"}) == 2
        assert conn.hgetall("h") == {"a": "1", "b": "2"}
        # A session command the shared pool refuses works on a connection of one's own (and the
        # connection is closed when returned, so its name never reaches another caller).
        assert conn.client_setname("mine") is True
        assert conn.client_getname() == "mine"
        # Pipelines and WATCH transactions run on it too, and it stays checked out.
        pipe = conn.pipeline()
        pipe.watch("k")
        assert pipe.get("k") == "v"
        pipe.multi()
        pipe.set("k", "w")
        pipe.incr("n")
        assert pipe.execute() == [True, 1]
        assert not conn.released
        assert conn.get("k") == "w"
        assert r.pool_stats()["in_use"] == 1
    assert conn.released and "released" in repr(conn)
    assert oracle.get("k") == b"w"
    with pytest.raises(redpool.PoolClosedError, match="already released"):
        conn.get("k")
    assert r.pool_stats()["in_use"] == 0
    r.close()


def test_leaving_the_block_returns_the_connection_even_on_an_exception(server, oracle):
    r = redpool.Redis.from_url(server.url, shared_pool=False)
    with pytest.raises(KeyError):
        with r.acquire() as conn:
            conn.set("k", "v")
            raise KeyError("boom")
    assert conn.released
    stats = r.pool_stats()
    assert stats["in_use"] == 0 and stats["idle"] == 1
    assert sum(stats["connections_closed"].values()) == 0

    # After a connection error the connection is closed, not pooled.
    with pytest.raises(redpool.ConnectionError):
        with r.acquire() as conn:
            raise redpool.ConnectionError("lost")
    stats = r.pool_stats()
    assert stats["in_use"] == 0 and stats["connections_closed"]["discarded"] == 1

    # Without `with`: release() (idempotent), as in C and Node.
    conn = r.acquire()
    assert r.pool_stats()["in_use"] == 1
    conn.release()
    conn.release()
    assert r.pool_stats()["in_use"] == 0
    r.close()


def test_bad_priority_and_timeout_are_refused_naming_them(server, oracle):
    r = one_connection(server)
    with r.acquire():
        # Refused before any wait: not a PoolTimeoutError although none is free.
        with pytest.raises(redpool.ConfigError, match=r'invalid priority = "urgent": must be normal or high'):
            r.acquire(timeout=0, priority="urgent")
        with pytest.raises(redpool.ConfigError, match="priority"):
            r.acquire(priority="HIGH")
        for bad in (-1, float("nan"), float("inf")):
            with pytest.raises(redpool.ConfigError, match="invalid timeout"):
                r.acquire(timeout=bad)
        with pytest.raises(redpool.ConfigError, match="acquire timeout"):
            r.acquire(timeout=366 * 86400)
        assert isinstance(redpool.ConfigError("x"), ValueError)
        assert r.pool_stats()["in_use"] == 1
    r.close()


# asyncio -------------------------------------------------------------------------------------


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_asyncio_acquire(server, oracle):
    async def main():
        r = redpool.asyncio.Redis.from_url(server.url, shared_pool=False, max_connections=1,
                                           acquire_timeout=60, decode_responses=True)
        async with r.acquire() as conn:
            assert isinstance(conn, redpool.asyncio.PooledConnection)
            assert await conn.set("k", "v") is True
            assert await conn.get("k") == "v"
            pipe = conn.pipeline()
            pipe.set("k", "w").get("k")
            assert await pipe.execute() == [True, "w"]
            with pytest.raises(redpool.PoolTimeoutError):
                await r.acquire(timeout=0, priority="high")
            assert r.pool_stats()["in_use"] == 1
        assert conn.released and r.pool_stats()["in_use"] == 0

        with pytest.raises(KeyError):
            async with r.acquire() as conn:
                raise KeyError("boom")
        assert r.pool_stats()["in_use"] == 0

        conn = await r.acquire(timeout=0)
        assert await conn.incr("n") == 1
        await conn.release()
        assert r.pool_stats()["in_use"] == 0

        with pytest.raises(redpool.ConfigError, match="priority"):
            await r.acquire(priority="low")

        # A high-priority waiter goes ahead of a normal one that queued first.
        served: List[str] = []

        async def wait(priority: str) -> None:
            async with r.acquire(priority=priority):
                served.append(priority)

        async def until_waiting(n: int) -> None:
            deadline = time.monotonic() + 20
            while r.pool_stats()["waiting"] < n:
                assert time.monotonic() < deadline, f"{n} waiters not queued after 20 s"
                await asyncio.sleep(0.005)

        held = await r.acquire()
        normal = asyncio.ensure_future(wait("normal"))
        await until_waiting(1)
        high = asyncio.ensure_future(wait("high"))
        await until_waiting(2)
        await held.release()
        await asyncio.gather(normal, high)
        assert served == ["high", "normal"]
        assert r.pool_stats()["in_use"] == 0
        await r.aclose()
        assert oracle.get("k") == b"w"

    run(main())
