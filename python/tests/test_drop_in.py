"""What redis-py code passes to the constructor, and what it expects back: a redis-py pool
object (``connection_pool=``, ``from_pool``), a single-connection client (``client()``,
``single_connection_client=True``), ``connection_pool.disconnect()``, no client name by default,
and pipeline errors with redis-py's classes and messages. redis-py's own test files run against
redpool.Redis too (``redis_py_suite/run.sh``, in ``tests/run.sh``)."""

from __future__ import annotations

import pytest
import redis

import redpool


def named(server, name: str) -> int:
    """How many connections of the server carry ``name``."""
    return sum(1 for c in server.oracle().client_list() if c["name"] == name)


def test_a_redis_py_pool_is_mapped_onto_a_native_pool_one_per_object(server, oracle):
    pool = redis.BlockingConnectionPool(host="127.0.0.1", port=server.port, db=3,
                                        max_connections=3, timeout=0.3, client_name="adopted")
    a = redpool.Redis(connection_pool=pool)
    b = redpool.Redis(connection_pool=pool)
    assert a._pool.same_pool(b._pool)  # one pool per redis-py pool object
    assert not a._pool.same_pool(redpool.Redis(connection_pool=redis.ConnectionPool(
        host="127.0.0.1", port=server.port))._pool)
    a.set("k", "v")
    assert oracle.execute_command("SELECT", 3) and oracle.get("k") == b"v"
    assert a.connection_pool.max_connections == 3
    held = [a.acquire() for _ in range(3)]
    with pytest.raises(redpool.PoolTimeoutError):  # the blocking pool's timeout
        b.get("k")
    for conn in held:
        conn.release()
    assert named(server, "adopted") == 3
    a.close()  # a pool given as connection_pool= stays open
    assert b.get("k") == b"v"


def test_from_pool_owns_the_pool_and_close_disconnects_it(server):
    pool = redis.ConnectionPool(host="127.0.0.1", port=server.port, client_name="owned")
    client = redpool.Redis.from_pool(pool)
    client.ping()
    assert named(server, "owned") == 1
    client.close()
    assert named(server, "owned") == 0
    assert redpool.Redis(connection_pool=pool).ping()  # disconnected, not closed


def test_connection_pool_disconnect_closes_the_connections(server):
    client = redpool.Redis.from_url(server.url, client_name="to-disconnect", shared_pool=False)
    client.ping()
    assert named(server, "to-disconnect") == 1
    client.connection_pool.disconnect()
    assert named(server, "to-disconnect") == 0
    assert client.ping()


def test_a_single_connection_client_keeps_its_session(server, oracle):
    base = redpool.Redis.from_url(server.url, shared_pool=False)
    single = base.client()
    assert single.select(2)  # a session command: allowed on its own connection
    single.set("k", "in-db-2")
    assert single.client_setname("mine") and single.client_getname() == "mine"
    assert single.get("k") == b"in-db-2"
    assert base.get("k") is None  # the pool's other connections are on db 0
    single.close()  # returned, and closed for its session changes
    assert named(server, "mine") == 0
    with redpool.Redis.from_url(server.url, single_connection_client=True) as other:
        assert other.client_getname() is None  # no name unless asked, as in redis-py


def test_single_connection_client_reconnects_after_its_connection_is_killed(server, oracle):
    single = redpool.Redis.from_url(server.url, single_connection_client=True,
                                    client_name="killed-single")
    assert single.ping()
    oracle.client_kill_filter(_type="normal", skipme=True)
    with pytest.raises(redis.ConnectionError):
        single.ping()
    assert single.ping()  # a new connection


def test_pipeline_errors_are_redis_py_s(r):
    r.set("s", "v")
    with r.pipeline() as pipe:  # a command rejected while queueing: redis-py's message
        pipe.set("a", 1).zrem("b").set("b", 2)
        with pytest.raises(redis.ResponseError) as caught:
            pipe.execute()
    assert str(caught.value).startswith("Command # 2 (ZREM b) of pipeline caused error: ")
    assert r.get("a") is None  # the transaction was discarded
    for transaction in (True, False):
        with r.pipeline(transaction=transaction) as pipe:
            assert pipe.set("a", 1).mget([]).set("c", 3).execute() == [True, [], True]
        with r.pipeline(transaction=transaction) as pipe:
            pipe.set("x", 1).lpush("s", "e")
            with pytest.raises(redis.ResponseError, match=r"^Command # 2 \(LPUSH s e\)"):
                pipe.execute()


def test_redis_py_pool_internals_are_accepted_and_unknown_pool_classes_refused(server):
    from redis.maint_notifications import MaintNotificationsConfig
    assert redpool.Redis(port=server.port, maint_notifications_config=MaintNotificationsConfig(
        enabled=False)).ping()
    with pytest.raises(redpool.ConfigError, match="maint_notifications_config"):
        redpool.Redis(port=server.port,
                      maint_notifications_config=MaintNotificationsConfig(enabled=True))
    with pytest.raises(redpool.ConfigError, match="connection_pool must be"):
        redpool.Redis(connection_pool=object())
    with pytest.raises(redpool.ConfigError, match="MONITOR"):
        redpool.Redis(port=server.port).monitor()


def test_asyncio_clients_take_pools_and_give_single_connection_clients(server):
    import asyncio
    import redis.asyncio
    import redpool.asyncio

    async def scenario() -> None:
        base = redpool.asyncio.Redis(port=server.port, shared_pool=False)
        single = base.client()
        assert isinstance(single, redpool.asyncio.Redis)
        assert await single.select(2) and await single.set("k", "v")
        assert await single.get("k") == b"v" and await base.get("k") is None
        await single.aclose()
        pool = redis.asyncio.BlockingConnectionPool(host="127.0.0.1", port=server.port, db=1)
        adopted = redpool.asyncio.Redis(connection_pool=pool)
        assert await adopted.set("a", 1) and await adopted.get("a") == b"1"
        await redpool.asyncio.Redis.from_pool(pool).aclose()  # disconnects, does not close
        assert await adopted.ping()
        await adopted.connection_pool.disconnect()  # a coroutine, as redis.asyncio's
        assert await adopted.ping()

    asyncio.run(scenario())


@pytest.mark.parametrize("error", [redpool.ConfigError("invalid x"), redpool.ResponseError("e"),
                                   redpool.ConnectionError("c"), redpool.TimeoutError("t")])
def test_errors_print_as_redis_py_s(error):
    assert repr(error).endswith(type(error).__name__)
    assert str(error)


@pytest.mark.parametrize("protocol", [None, 2, 3])
@pytest.mark.parametrize("legacy", [True, False])
def test_reply_shapes_follow_protocol_and_legacy_responses_as_redis_py(server, protocol, legacy):
    kwargs = {"legacy_responses": legacy, **({} if protocol is None else {"protocol": protocol})}
    ours = redpool.Redis(port=server.port, shared_pool=False, decode_responses=True, **kwargs)
    theirs = redis.Redis(port=server.port, decode_responses=True, **kwargs)
    ours.flushall()
    ours.hset("h", mapping={"f": 1}), ours.zadd("z", {"m": 1.5}), ours.sadd("s", "x")
    ours.xadd("x", {"f": "v"}, id="1-0")
    for call in (lambda r: r.hgetall("h"), lambda r: r.zrange("z", 0, -1, withscores=True),
                 lambda r: r.zscore("z", "m"), lambda r: r.smembers("s"),
                 lambda r: r.xrange("x"), lambda r: r.config_get("maxmemory"),
                 lambda r: r.zrangebyscore("z", 0, 9, withscores=True),
                 lambda r: r.execute_command("DEBUG", "PROTOCOL", "true")):
        assert call(ours) == call(theirs)
    wire = 3 if protocol == 3 else 2
    assert f"resp={wire}" in ours.execute_command("CLIENT", "INFO")
    assert ours.connection_pool.get_protocol() == wire
    theirs.close()


def test_the_protocol_from_the_url_or_environment_shapes_the_replies(server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"{server.url}?protocol=3")
    for client in (redpool.Redis.from_url(f"{server.url}?protocol=3", shared_pool=False),
                   redpool.Redis.from_env(shared_pool=False)):
        client.hset("h", "f", "v")
        assert client.hgetall("h") == {b"f": b"v"}
        assert client.connection_pool.get_protocol() == 3


def test_legacy_responses_from_a_url_is_a_flag(server):
    client = redpool.Redis.from_url(f"{server.url}?legacy_responses=false", shared_pool=False)
    assert client.connection_pool.connection_kwargs["legacy_responses"] is False


def test_a_single_connection_client_recovers_from_a_protocol_error(server):
    single = redpool.Redis.from_url(server.url, single_connection_client=True,
                                    options={"max_reply_bytes": 1024})
    single.set("big", "x" * 4096)
    with pytest.raises(redpool.ProtocolError):
        single.get("big")
    assert single.set("small", "v") and single.get("small") == b"v"


def test_pipeline_errors_never_show_a_password(r):
    secret = "s3cr3t-Pa55"
    r.set("k", "v")  # MIGRATE of a key to a closed port: an IOERR error
    with r.pipeline(transaction=False) as pipe:
        pipe.execute_command("MIGRATE", "127.0.0.1", 1, "k", 0, 100, "AUTH", secret)
        pipe.execute_command("CONFIG", "SET", "masterauth", secret, "nosuch-parameter", "x")
        pipe.execute_command("ACL", "SETUSER", "u", "on", f">{secret}", "nosuch-rule")
        results = pipe.execute(raise_on_error=False)
    assert all(isinstance(result, redis.ResponseError) for result in results), results
    # By hand, and through redis-py's helpers, which send the name as one word ("CONFIG SET").
    failing = [
        lambda pipe: pipe.execute_command("MIGRATE", "127.0.0.1", 1, "k", 0, 100, "AUTH", secret),
        lambda pipe: pipe.execute_command("CONFIG", "SET", "masterauth", secret, "nosuch", "x"),
        lambda pipe: pipe.execute_command("ACL", "SETUSER", "u", "on", f">{secret}", "nosuch"),
        lambda pipe: pipe.config_set("requirepass", secret, "nosuch-parameter", "x"),
        lambda pipe: pipe.acl_setuser("u", enabled=True, passwords=[f"+{secret}"],
                                      commands=["+nosuch"]),
    ]
    for transaction in (False, True):
        for queue in failing:
            with r.pipeline(transaction=transaction) as pipe:
                pipe.set("k", "v")
                queue(pipe)
                with pytest.raises(redis.ResponseError) as caught:
                    pipe.execute()
            assert "Command # 2 (" in str(caught.value) and "<redacted>" in str(caught.value)
            assert secret not in str(caught.value), str(caught.value)
    from redpool.client import redacted
    assert redacted(["AUTH", "user", secret]) == ["AUTH", "<redacted>", "<redacted>"]
    assert redacted(["HELLO", 3, "AUTH", "u", secret]) == ["HELLO", "3", "AUTH", "<redacted>",
                                                          "<redacted>"]
    assert redacted(["ZREM", "b"]) == ["ZREM", "b"]
    # The core's rule, as Node applies it: bytes words, other password parameters, SENTINEL.
    assert redacted([b"CONFIG", b"SET", b"tls-key-file-pass", secret.encode()]) == [
        "CONFIG", "SET", "tls-key-file-pass", "<redacted>"]
    assert redacted(["SENTINEL", "SET", "m", "auth-pass", secret]) == [
        "SENTINEL", "SET", "m", "auth-pass", "<redacted>"]
    # A hidden word that is itself a keyword still hides what follows it.
    assert redacted(["CONFIG", "SET", "dir", "auth", "masterauth", secret])[-1] == "<redacted>"
