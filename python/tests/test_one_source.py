"""One behaviour in every language (issue 15.1): defaults and rules come from the core, so the
Python package agrees with the Rust, C and Node ones."""

from __future__ import annotations

import warnings

import pytest
import redis

import redpool


def test_the_default_host_is_the_cores(server):
    # 127.0.0.1 in every language (redis-py's "localhost" may resolve to ::1 first).
    client = redpool.Redis(port=server.port, shared_pool=False)
    try:
        assert "127.0.0.1:" in client._pool.url
        assert client.ping() is True
    finally:
        client.close()


@pytest.mark.parametrize("port", [0, 65536, -1, "http", 1.5, True])
def test_the_port_is_checked_by_the_core(port):
    with pytest.raises(redpool.ConfigError, match=r"invalid port = .*: must be a number between 1 and 65535"):
        redpool.Redis(port=port, shared_pool=False)


def test_noperm_is_a_response_error(server, oracle):
    # redis-py's NoPermissionError, a ResponseError: the credentials were accepted.
    oracle.execute_command("ACL", "SETUSER", "reader", "on", ">reader-pass", "~*", "&*", "+@all", "-set")
    client = redpool.Redis(port=server.port, username="reader", password="reader-pass",
                           retry=None, shared_pool=False)
    try:
        with pytest.raises(redpool.NoPermissionError) as raised:
            client.set("k", "v")
        assert isinstance(raised.value, redpool.ResponseError)
        assert isinstance(raised.value, redis.exceptions.NoPermissionError)
        assert not isinstance(raised.value, redis.exceptions.AuthenticationError)
        assert client.get("k") is None
    finally:
        client.close()


def test_transient_is_the_cores_classifier(server):
    from support import free_port

    refused = redpool.Redis(port=free_port(), retry=None, shared_pool=False)
    try:
        with pytest.raises(redpool.ConnectionError) as raised:
            refused.ping()
        assert raised.value.transient is True
    finally:
        refused.close()
    client = redpool.Redis(port=server.port, shared_pool=False)
    try:
        with pytest.raises(redpool.ResponseError) as raised:
            client.execute_command("INCR", "k", "x")
        assert raised.value.transient is False
        with pytest.raises(redpool.ConfigError) as raised:
            redpool.Redis(port=0)
        assert raised.value.transient is False
    finally:
        client.close()


def test_a_blocking_commands_reply_timeout_is_the_cores(server):
    # BLPOP of 1.5 s with a 1 s socket timeout: the reply wait is block time + socket timeout,
    # so the server's nil arrives (a timed-out BLPOP is answered up to ~100 ms late, more on a
    # loaded machine: the 1 s covers it); a negative block time is the server's to refuse; over
    # 365 days is refused.
    client = redpool.Redis(port=server.port, socket_timeout=1, retry=None, shared_pool=False)
    try:
        assert client.blpop(["py:blocking:empty"], timeout=1.5) is None
        with pytest.raises(redpool.ResponseError):
            client.execute_command("BLPOP", "py:blocking:empty", "-1")
        with pytest.raises(redpool.ConfigError, match="BLPOP timeout = 1e20: must be at most 365 days"):
            client.execute_command("BLPOP", "py:blocking:empty", "1e20")
    finally:
        client.close()


def test_a_released_connection_is_closed(server):
    # Closed, as in Node (it was InvalidArgument there): the handle is closed, like a pool after
    # close(); redis-py users catch it as a ConnectionError. The message is the core's.
    client = redpool.Redis(port=server.port, shared_pool=False)
    try:
        conn = client._pool.acquire()
        conn.release()
        with pytest.raises(redpool.PoolClosedError, match="already released to the pool") as raised:
            conn.execute([b"PING"])
        assert isinstance(raised.value, redis.ConnectionError)
        assert raised.value.transient is False
    finally:
        client.close()


def test_from_env_refuses_a_variable_that_contradicts_redis_url(server, monkeypatch):
    # With REDIS_URL set, REDIS_PASSWORD is not read: the core refuses it (naming both variables,
    # never the value) instead of a NOAUTH later. Variables that agree with the URL are fine.
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
    monkeypatch.setenv("REDIS_PORT", str(server.port))
    client = redpool.Redis.from_env(shared_pool=False)
    try:
        assert client.ping() is True
    finally:
        client.close()
    monkeypatch.setenv("REDIS_PASSWORD", "env-secret-value")
    with pytest.raises(redpool.ConfigError, match="REDIS_PASSWORD conflicts with REDIS_URL") as raised:
        redpool.Redis.from_env(shared_pool=False)
    assert "env-secret-value" not in str(raised.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # The core's rule and wording, with the argument's name as the caller wrote it.
        ({"socket_connect_timeout": 0}, "invalid socket_connect_timeout = 0: must be greater than zero"),
        ({"timeout": -1}, "invalid timeout = \"-1\": must be a finite duration >= 0"),
        ({"max_connections": 0}, "invalid max_connections = 0: must be between 1 and"),
        ({"socket_timeout": float("nan")}, "invalid socket_timeout = \"nan\": must be a duration"),
        ({"options": {"breaker_window": "soon"}}, "invalid breaker_window = \"soon\": must be a duration"),
    ],
)
def test_settings_are_checked_by_the_core_naming_the_argument(kwargs, message):
    with pytest.raises(redpool.ConfigError) as caught:
        redpool.Redis(**kwargs)
    assert str(caught.value).startswith(message), caught.value


def test_numbers_reach_the_core_as_python_wrote_them(server):
    # 1e-05 is what repr() prints for 0.00001: a number of seconds, not a unit.
    client = redpool.Redis(port=server.port, socket_timeout=0.5, options={"max_lifetime": 1e-05 * 1e6})
    assert client.ping()
    assert client._pool.socket_timeout == 0.5


def test_resize_is_checked_by_the_core(server):
    client = redpool.Redis(port=server.port, shared_pool=False, max_connections=4, min_idle=2)
    with pytest.raises(redpool.ConfigError, match="invalid max_connections = -1"):
        client.resize(-1)
    with pytest.raises(redpool.ConfigError, match="invalid max_connections = 0"):
        client.resize(0)
    with pytest.raises(redpool.ConfigError, match="invalid min_idle = 5"):
        client.resize(4, 5)
    client.resize(1)  # min_idle lowered to the new cap by the core
    stats = client.pool_stats()
    assert (stats["max_connections"], stats["min_idle"]) == (1, 1)


def test_an_ignored_argument_is_named_in_a_warning_never_silent(server):
    with pytest.warns(redpool.IgnoredArgumentWarning, match="ignores retry_on_timeout") as caught:
        redpool.Redis(port=server.port, retry_on_timeout=True, shared_pool=False)
    assert caught[0].filename == __file__  # points at the caller's line
    with pytest.warns(redpool.IgnoredArgumentWarning, match="ignores socket_read_size"):
        redpool.Redis.from_url(server.url + "?socket_read_size=1024", shared_pool=False)
    # redis-py's defaults ask for what redpool does anyway: nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        redpool.Redis(port=server.port, retry_on_timeout=False, socket_read_size=65536,
                      lib_name=None, shared_pool=False)
