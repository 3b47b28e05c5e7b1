"""The same calls through redis-py and through redpool must return the same values (types
included): each scenario runs on a flushed server once per client and the results are compared."""

from __future__ import annotations

from typing import Any, Callable, List

import pytest
import redis

import redpool


def strings(r) -> List[Any]:
    return [
        r.set("s", "v"), r.get("s"), r.set("s", "w", get=True), r.set("s", "x", nx=True),
        r.set("s", "y", xx=True, ex=100), r.ttl("s"), r.set("s", "z", keepttl=True), r.ttl("s"),
        r.set("p", 1, px=100000), r.pttl("p") > 0, r.get("missing"), r.getdel("p"),
        r.mset({"a": 1, "b": "two", "c": 3.5}), r.mget("a", "b", "c", "nope"),
        r.incr("n"), r.incrby("n", 5), r.decr("n"), r.incrbyfloat("f", 1.25),
        r.incrbyfloat("f", "0.5"), r.append("s", "!"), r.strlen("s"), r.getrange("s", 0, 1),
        r.setrange("s", 0, "Z"), r.set("e", "v", ex=50), r.set("e2", "v", px=50000),
        r.setnx("s", "no"), r.getex("e", persist=True), r.ttl("e"), r.exists("a", "b", "zz"),
        r.type("a"), r.delete("a", "zz"), r.rename("b", "b2"), r.renamenx("b2", "c"),
        r.expire("c", 100), r.expire("zz", 1), r.persist("c"), r.ttl("c"), r.object("encoding", "n"),
        r.setbit("bits", 7, 1), r.getbit("bits", 7), r.bitcount("bits"), r.bitpos("bits", 1),
        sorted(r.keys("*")), r.dbsize(), r.randomkey() is not None, r.lcs("s", "c"),
    ]


def hashes(r) -> List[Any]:
    return [
        r.hset("h", "f", "v"), r.hset("h", mapping={"a": 1, "b": 2.5, "c": "x"}),
        r.hset("h", items=["d", "4"]), r.hget("h", "f"), r.hmget("h", ["a", "zz", "b"]),
        r.hgetall("h"), r.hgetall("nohash"), sorted(r.hkeys("h")), sorted(r.hvals("h")),
        r.hlen("h"), r.hexists("h", "a"), r.hdel("h", "a", "zz"), r.hincrby("h", "n", 3),
        r.hincrbyfloat("h", "fl", 1.5), r.hsetnx("h", "f", "no"), r.hstrlen("h", "c"),
        sorted(r.hscan_iter("h")), r.hrandfield("h", 10).__len__(),
    ]


def lists(r) -> List[Any]:
    return [
        r.rpush("l", 1, 2, 3, "a"), r.lpush("l", 0), r.lrange("l", 0, -1), r.llen("l"),
        r.lindex("l", 1), r.lset("l", 0, "zero"), r.linsert("l", "before", "a", "b"),
        r.lpos("l", "a"), r.lpop("l"), r.rpop("l", 2), r.lrem("l", 0, "b"), r.ltrim("l", 0, 0),
        r.lrange("l", 0, -1), r.lmove("l", "l2", "LEFT", "RIGHT"), r.rpoplpush("l2", "l"),
        r.lpop("nolist"), r.blpop(["l"], timeout=1), r.blpop(["nolist"], timeout=0.1),
        r.rpush("l", "x"), r.brpop("l", timeout=1), r.lmpop(2, "l", "l2", direction="LEFT"),
        r.sort("nolist"), r.rpush("nums", 3, 1, 2), r.sort("nums"), r.sort("nums", desc=True),
    ]


def sets(r) -> List[Any]:
    return [
        r.sadd("s1", "a", "b", "c"), r.sadd("s2", "b", "c", "d"), r.smembers("s1"),
        r.sismember("s1", "a"), r.smismember("s1", ["a", "z"]), r.scard("s1"),
        r.sinter("s1", "s2"), r.sunion("s1", "s2"), r.sdiff("s1", "s2"),
        r.sinterstore("s3", ["s1", "s2"]), r.srem("s1", "a", "zz"), r.smove("s1", "s2", "b"),
        r.smembers("nosuchset"), sorted(r.sscan_iter("s2")), len(r.srandmember("s2", 2)),
        r.spop("s3") in (b"b", b"c", "b", "c"), r.sintercard(2, ["s1", "s2"]),
    ]


def sorted_sets(r) -> List[Any]:
    return [
        r.zadd("z", {"a": 1, "b": 2.5, "c": -1}), r.zadd("z", {"a": 5}, xx=True, ch=True),
        r.zadd("z", {"d": 1}, nx=True), r.zadd("z", {"a": 1}, incr=True),
        r.zrange("z", 0, -1), r.zrange("z", 0, -1, withscores=True),
        r.zrange("z", 0, -1, desc=True, withscores=True, score_cast_func=lambda s: round(float(s))),
        r.zrevrange("z", 0, 1, withscores=True), r.zrangebyscore("z", 0, 10, withscores=True),
        r.zrangebyscore("z", "-inf", "+inf", start=1, num=2), r.zscore("z", "b"),
        r.zscore("z", "nope"), r.zmscore("z", ["a", "nope"]), r.zrank("z", "b"),
        r.zrevrank("z", "b"), r.zcard("z"), r.zcount("z", 0, 3), r.zincrby("z", 2, "c"),
        r.zpopmin("z"), r.zpopmax("z", 2), r.bzpopmin("z", timeout=1),
        r.bzpopmin("nozset", timeout=0.1), r.zadd("z2", {"x": 1, "y": 2}),
        r.zunionstore("z3", ["z", "z2"]), r.zrange("z3", 0, -1, withscores=True),
        r.zinter(["z3", "z2"], withscores=True), r.zrem("z3", "x"),
        sorted(r.zscan_iter("z2")), r.zrangebylex("z2", "-", "+"),
    ]


def keyspace(r) -> List[Any]:
    r.mset({f"k:{i}": i for i in range(50)})
    return [
        sorted(r.scan_iter("k:*", count=7)), sorted(r.scan_iter(match="k:1*")),
        r.scan(0, match="nomatch*", count=1000), r.expire("k:1", 100), r.ttl("k:1"),
        r.expireat("k:2", 4102444800), r.pexpire("k:3", 100000), r.expiretime("k:2"),
        r.ttl("nokey"), r.touch("k:1", "k:2", "nokey"), r.unlink("k:4"), r.copy("k:5", "k:5c"),
        r.get("k:5c"), r.dump("nokey"), r.restore("k:r", 0, r.dump("k:6")), r.get("k:r"),
    ]


def server_commands(r) -> List[Any]:
    info = r.info()
    return [
        sorted(k for k in info if k in ("redis_version", "connected_clients", "used_memory")),
        type(info["used_memory"]), type(info["redis_version"]), r.info("keyspace"),
        r.ping(), r.echo("hi"), r.config_get("maxmemory-policy"), type(r.time()),
        r.execute_command("PING"), r.execute_command("SET", "ec", "1"),
        r.execute_command("GET ec"), sorted(r.command_count() for _ in range(1))[0] > 100,
        r.lastsave() is not None, r.memory_usage("nokey"),
    ]


def scripts_and_streams(r) -> List[Any]:
    sha = r.script_load("return {KEYS[1], ARGV[1], 3}")
    script = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    return [
        r.eval("return ARGV[1]", 0, "x"), r.evalsha(sha, 1, "k", "v"),
        r.script_exists(sha, "0" * 40), script(keys=["cnt"], args=[5]), script(keys=["cnt"], args=[1]),
        r.xadd("st", {"f": "v"}, id="1-1"), r.xadd("st", {"g": "w"}, id="2-1"),
        r.xrange("st"), r.xrevrange("st", count=1), r.xlen("st"),
        r.xread({"st": "0-0"}, count=1), r.xread({"st": "$"}, block=50),
        r.xgroup_create("st", "grp", id="0"), r.xreadgroup("grp", "c1", {"st": ">"}, count=1),
        r.xpending("st", "grp"), r.xack("st", "grp", "1-1"), r.xtrim("st", maxlen=1),
        r.geoadd("geo", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]),
        r.geodist("geo", "Palermo", "Catania", unit="km"), r.geopos("geo", "Palermo", "nope"),
        r.geosearch("geo", longitude=15, latitude=37, radius=200, unit="km", withdist=True),
        r.pfadd("hll", "a", "b", "c"), r.pfcount("hll"),
    ]


def pipelines(r) -> List[Any]:
    out = []
    with r.pipeline(transaction=False) as pipe:
        pipe.set("a", 1).incr("a").get("a").hset("h", mapping={"x": 1}).hgetall("h")
        pipe.zadd("z", {"m": 2}).zrange("z", 0, -1, withscores=True).lpush("a", 1)
        out.append(pipe.execute(raise_on_error=False))
    with r.pipeline() as pipe:
        pipe.incr("cnt").incr("cnt").get("cnt").mget("cnt", "none").exists("cnt")
        out.append(pipe.execute())
    with r.pipeline() as pipe:
        out.append(pipe.execute())
        pipe.set("w", 1).lpush("w", 2).get("w")
        out.append(pipe.execute(raise_on_error=False))
    return [[repr(x) if isinstance(x, Exception) else x for x in batch] for batch in out]


class _Name(str):
    """A str subclass, as some applications pass keys."""


class _Count(int):
    """An int subclass (an IntEnum-like value)."""


def argument_types(r) -> List[Any]:
    """Every argument type redis-py's encoder takes, single and in a pipeline (redpool encodes
    bytes, str and int on a fast path; the results must not differ)."""
    keys = [b"b\x00k", "ünï", "int", "big", "float", "ba", "mv", "sub", "isub"]
    values = [b"\x00\x01", "välue", -7, 12345678901234567890, 3.25, bytearray(b"ba"),
              memoryview(b"mv"), _Name("str-subclass"), _Count(7)]
    pipe = r.pipeline(transaction=False)
    for key, value in zip(keys, values):
        pipe.set(key, value)
    pipe.mget(keys)
    return [
        *[r.set(key, value) for key, value in zip(keys, values)],
        r.mget(keys), pipe.execute(),
        r.execute_command("SET", _Name("named"), 1), r.execute_command(b"GET", "named"),
        r.execute_command("CONFIG GET", "maxmemory"),
    ]


def _outcome(run: Callable[[], Any]) -> Any:
    """``run()``'s value, or its exception as class name and text (annotation included)."""
    try:
        value = run()
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return f"raised {type(error).__name__}: {error}"
    if isinstance(value, list):
        return [repr(x) if isinstance(x, Exception) else x for x in value]
    return value


def pipeline_shapes(r) -> List[Any]:
    """What redpool shapes natively in pipelines and transactions: multi-word command names,
    NEVER_DECODE (DUMP), EMPTY_RESPONSE (MGET of nothing), callbacks with options (SET ... GET,
    ZRANGE WITHSCORES), encoder errors (a bool, a dict), floats, errors raised with their
    annotation or left in place, a command the server rejects inside MULTI (EXECABORT)."""
    r.set("s", "välue")

    def pipe(transaction: bool, fill: Callable[[Any], Any], raise_on_error: bool = True) -> Any:
        with r.pipeline(transaction=transaction) as p:
            fill(p)
            return _outcome(lambda: p.execute(raise_on_error=raise_on_error))

    out = []
    for transaction in (False, True):
        out.append(pipe(transaction, lambda p: (
            p.config_get("maxmemory"), p.execute_command("CONFIG GET", "maxclients"),
            p.dump("s"), p.mget([]), p.set("s", 1.5, get=True), p.set("n", 2 ** 70),
            p.zadd("z", {"m": 0.25}), p.zrange("z", 0, -1, withscores=True), p.get("s"),
            p.execute_command(b"GET", "s"), p.hgetall("none"))))
        out.append(pipe(transaction, lambda p: (p.set("b", True), p.get("s"))))
        out.append(pipe(transaction, lambda p: (p.set("d", {"x": 1}),)))
        out.append(pipe(transaction, lambda p: (p.set("l", 1), p.lpush("l", 2), p.get("l"))))
        out.append(pipe(transaction, lambda p: (p.set("l", 1), p.lpush("l", 2), p.get("l")),
                        raise_on_error=False))
        out.append(pipe(transaction, lambda p: (p.get("s"), p.execute_command("NOSUCHCMD"),
                                                p.get("s")), raise_on_error=False))
        # Several rejected while queueing, the first not first; an error repeating binary bytes.
        out.append(pipe(transaction, lambda p: (p.set("q", 1), p.execute_command("NOSUCHCMD"),
                                                p.execute_command("INCR"))))
        out.append(pipe(transaction, lambda p: (p.execute_command("NOSUCHCMD", b"\xff\xfe"),
                                                p.get("s")), raise_on_error=False))
    out.append(_outcome(lambda: r.execute_command("NOSUCHCMD", b"\xff\xfe")))
    out.append(r.get("s"))
    return out


SCENARIOS: List[Callable[[Any], List[Any]]] = [
    strings, hashes, lists, sets, sorted_sets, keyspace, server_commands, scripts_and_streams,
    pipelines, argument_types, pipeline_shapes,
]


def normalise(value: Any) -> Any:
    """Exceptions compare by class name and text (redpool's are subclasses of redis-py's)."""
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and value.startswith(("<redis", "server:", "<redpool")):
        return value.split("(")[0]
    return value


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "decoded"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_same_results_as_redis_py(server, oracle, scenario, decode):
    expected = scenario(server.oracle(decode_responses=decode))
    oracle.flushall()
    oracle.script_flush()
    actual = scenario(redpool.Redis.from_url(server.url, decode_responses=decode))
    assert len(actual) == len(expected)
    for i, (got, want) in enumerate(zip(actual, expected)):
        assert normalise(got) == normalise(want), f"{scenario.__name__} call #{i}"
        assert type(got) is type(want), f"{scenario.__name__} call #{i}: type"


def test_pipeline_errors_have_redis_py_classes(r):
    with r.pipeline(transaction=False) as pipe:
        pipe.set("k", "v").lpush("k", 1).get("k")
        replies = pipe.execute(raise_on_error=False)
    assert replies[0] is True and replies[2] == b"v"
    assert isinstance(replies[1], redis.exceptions.ResponseError)
    assert isinstance(replies[1], redpool.ResponseError)
    with r.pipeline(transaction=False) as pipe:
        pipe.set("k", "v").lpush("k", 1)
        with pytest.raises(redis.exceptions.ResponseError, match=r"Command # 2 \(LPUSH k 1\)"):
            pipe.execute()


def test_lock_and_transaction_helpers(r):
    lock = r.lock("res", timeout=5, blocking_timeout=0.2)
    assert lock.acquire()
    assert not r.lock("res", blocking_timeout=0.1).acquire()
    assert lock.owned() and lock.extend(5)
    lock.release()
    with r.lock("res", timeout=1):
        assert r.get("res") is not None
    assert r.get("res") is None

    r.set("balance", 10)

    def spend(pipe):
        balance = int(pipe.get("balance"))
        pipe.multi()
        pipe.set("balance", balance - 3)

    assert r.transaction(spend, "balance") == [True]
    assert r.get("balance") == b"7"


def test_drop_in_module_namespace():
    for name in ("Redis", "StrictRedis", "from_url", "ConnectionError", "TimeoutError",
                 "ResponseError", "WatchError", "RedisError", "DataError", "AuthenticationError"):
        assert hasattr(redpool, name), name
    assert issubclass(redpool.Redis, redis.Redis)
