"""Pipelines and transactions: one round trip, MULTI/EXEC, WATCH conflicts, immediate mode."""

from __future__ import annotations

import pytest
import redis

import redpool


def calls(oracle, *names):
    stats = oracle.info("commandstats")
    return [stats.get(f"cmdstat_{n}", {}).get("calls", 0) for n in names]


def test_transaction_sends_each_command_once(r, oracle):
    names = ("multi", "exec", "set", "incrby", "get")  # redis-py's incr() sends INCRBY
    before = calls(oracle, *names)
    with r.pipeline() as pipe:
        pipe.set("a", 1).incr("a").incrby("a", 5).get("a")
        assert len(pipe) == 4
        assert pipe.execute() == [True, 2, 7, b"7"]
    after = calls(oracle, *names)
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 2, 1]


def test_watch_conflict_raises_watch_error(r, oracle):
    r.set("k", 1)
    with r.pipeline() as pipe:
        pipe.watch("k")
        assert pipe.watching
        assert pipe.get("k") == b"1"  # immediate mode: runs now
        oracle.set("k", 99)  # another client changes the watched key
        pipe.multi()
        pipe.set("k", 2)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("k") == b"99"
    assert r.pool_stats()["in_use"] == 0


def test_transaction_helper_retries_after_a_conflict(r, oracle):
    r.set("k", 1)
    attempts = []

    def bump(pipe):
        value = int(pipe.get("k"))
        if not attempts:
            oracle.set("k", 10)  # the first attempt loses the race
        attempts.append(value)
        pipe.multi()
        pipe.set("k", value + 1)

    assert r.transaction(bump, "k") == [True]
    assert attempts == [1, 10]
    assert r.get("k") == b"11"


def test_unwatched_connection_goes_back_clean(r, oracle):
    with r.pipeline() as pipe:
        pipe.watch("k")
    # Reset returned the connection; the pool UNWATCHed it: a later transaction is unaffected.
    oracle.set("k", "changed")
    with r.pipeline() as pipe:
        pipe.set("k", "mine")
        assert pipe.execute() == [True]


def test_queueing_error_aborts_the_transaction(r):
    with r.pipeline() as pipe:
        pipe.set("a", 1)
        pipe.execute_command("NOSUCHCOMMAND")
        with pytest.raises(redis.exceptions.ResponseError):
            pipe.execute()
    assert r.get("a") is None


def test_runtime_error_in_transaction_stays_in_place(r):
    r.set("s", "v")
    with r.pipeline() as pipe:
        pipe.incr("n").lpush("s", 1).incr("n")
        replies = pipe.execute(raise_on_error=False)
    assert replies[0] == 1 and replies[2] == 2
    assert isinstance(replies[1], redpool.ResponseError)
    with r.pipeline() as pipe:
        pipe.incr("n").lpush("s", 1)
        with pytest.raises(redis.exceptions.ResponseError, match="Command # 2"):
            pipe.execute()


def test_scripts_in_a_pipeline_are_loaded_first(r):
    script = r.register_script("return tonumber(ARGV[1]) * 2")
    r.script_flush()
    with r.pipeline() as pipe:
        script(args=[21], client=pipe)
        pipe.get("nothing")
        assert pipe.execute() == [42, None]


def test_empty_and_reused_pipelines(r):
    pipe = r.pipeline(transaction=False)
    assert pipe.execute() == []
    pipe.set("x", 1)
    assert pipe.execute() == [True]
    pipe.get("x")
    assert pipe.execute() == [b"1"]  # the stack was reset by execute()
