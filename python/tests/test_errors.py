"""Errors: every failure has redpool's class, which is also redis-py's (and a builtin where one
fits); bad arguments give clear exceptions naming the argument; secrets never show."""

from __future__ import annotations

import builtins
import pickle
import threading

import pytest
import redis
import redis.exceptions as rx

import redpool
from redpool.exceptions import from_server_reply

from support import PASSWORD, free_port


def test_server_error_replies_are_classified_like_redis_py(r):
    r.set("str", "v")
    with pytest.raises(redpool.ResponseError) as caught:
        r.lpush("str", 1)
    assert isinstance(caught.value, rx.ResponseError)
    assert caught.value.code == "WRONGTYPE"
    assert str(caught.value).startswith("WRONGTYPE Operation against a key")
    with pytest.raises(rx.NoScriptError) as caught:
        r.evalsha("0" * 40, 0)
    assert isinstance(caught.value, redpool.NoScriptError)
    with pytest.raises(rx.ResponseError, match="unknown command"):
        r.execute_command("NOSUCHCOMMAND")


@pytest.mark.parametrize("code", ["NOSCRIPT", "EXECABORT", "READONLY", "OOM", "NOPERM",
                                  "LOADING", "WRONGPASS", "NOAUTH", "MOVED", "ASK", "ERR"])
def test_every_redis_py_class_has_a_redpool_twin(code):
    detail = "3999 127.0.0.1:6381" if code in ("MOVED", "ASK") else "some detail"
    message = f"{code} {detail}"
    expected = rx.ResponseError if code == "ERR" else None
    parsed = redis._parsers.BaseParser.parse_error(message)
    error = from_server_reply(message)
    assert isinstance(error, type(parsed)), (code, type(error).__mro__)
    assert isinstance(error, redpool.RedisPoolError)
    assert error.code == code
    if expected is not None:
        assert isinstance(error, expected)
    assert pickle.loads(pickle.dumps(error)).args == error.args


def test_connection_refused_is_a_connection_error():
    port = free_port()
    client = redpool.Redis(host="127.0.0.1", port=port, shared_pool=False, retry=None,
                           socket_connect_timeout=1, acquire_timeout=1)
    with pytest.raises(redis.ConnectionError) as caught:
        client.get("k")
    error = caught.value
    assert isinstance(error, redpool.ConnectionError)
    assert isinstance(error, builtins.ConnectionError)
    assert f"127.0.0.1:{port}" in str(error)


def test_read_timeout_is_a_timeout_error(server, oracle):
    client = redpool.Redis.from_url(server.url, socket_timeout=0.2, retry=None,
                                    shared_pool=False)
    with pytest.raises(redis.TimeoutError) as caught:
        client.execute_command("DEBUG", "SLEEP", "0.6")
    assert isinstance(caught.value, redpool.TimeoutError)
    assert isinstance(caught.value, builtins.TimeoutError)
    oracle.ping()  # returns once the server is done sleeping
    assert client.ping()  # the timed-out connection was closed, a new one works


def test_pool_exhausted_is_a_pool_timeout_error(server, oracle):
    client = redpool.Redis.from_url(server.url, max_connections=1, acquire_timeout=0.2,
                                    shared_pool=False)
    with client.pipeline() as holder:
        holder.watch("k")  # checks out the only connection
        with pytest.raises(redpool.PoolTimeoutError) as caught:
            client.get("k")
    error = caught.value
    assert isinstance(error, redis.ConnectionError)  # as redis-py's full pool
    assert isinstance(error, builtins.TimeoutError)
    assert "max_connections=1" in str(error)
    assert client.get("k") is None  # returned by reset()


def test_circuit_open_fails_fast():
    client = redpool.Redis(host="127.0.0.1", port=free_port(), shared_pool=False, retry=None,
                           options={"breaker_failure_threshold": 2,
                                    "breaker_recovery_timeout": 60.0})
    for _ in range(2):
        with pytest.raises(redpool.ConnectionError):
            client.ping()
    with pytest.raises(redpool.CircuitOpenError) as caught:
        client.ping()
    assert isinstance(caught.value, redis.ConnectionError)
    assert client.breaker_state() == "open"


def test_closed_pool(server, oracle):
    client = redpool.Redis.from_url(server.url, shared_pool=False)
    assert client.ping()
    client.close()
    with pytest.raises(redpool.PoolClosedError):
        client.ping()


def test_authentication(auth_server):
    good = redpool.Redis(host="127.0.0.1", port=auth_server.port, password=PASSWORD)
    assert good.ping()
    bad = redpool.Redis(host="127.0.0.1", port=auth_server.port, password="wrong-" + PASSWORD)
    with pytest.raises(redis.AuthenticationError) as caught:
        bad.ping()
    assert isinstance(caught.value, redpool.AuthenticationError)
    none = redpool.Redis(host="127.0.0.1", port=auth_server.port, retry=None)
    with pytest.raises(redis.AuthenticationError):
        none.ping()
    for text in (str(caught.value), repr(caught.value), repr(bad), repr(bad.connection_pool),
                 repr(bad.pool_stats()), repr(bad.health())):
        assert PASSWORD not in text


def test_secrets_absent_from_repr_and_messages(auth_server):
    url = f"redis://user:{PASSWORD}@127.0.0.1:{auth_server.port}/0"
    client = redpool.Redis.from_url(url)
    assert PASSWORD not in repr(client)
    assert "<redacted>" in repr(client)
    assert PASSWORD not in repr(client.pipeline())
    with pytest.raises(redpool.RedisPoolError) as caught:
        client.ping()  # no such ACL user
    assert PASSWORD not in str(caught.value)
    with pytest.raises(redpool.ConfigError) as caught:
        redpool.Redis.from_url(f"redis://user:{PASSWORD}@127.0.0.1:99999/0")
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"socket_timeout": -1}, "socket_timeout"),
        ({"socket_timeout": 0}, "socket_timeout"),
        ({"socket_connect_timeout": -0.5}, "socket_connect_timeout"),
        ({"socket_timeout": float("nan")}, "socket_timeout"),
        ({"socket_timeout": "5"}, "socket_timeout"),
        ({"health_check_interval": -1}, "health_check_interval"),
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": "10"}, "max_connections"),
        ({"port": 70000}, "port"),
        ({"port": "http"}, "port"),
        ({"db": -1}, "db"),
        ({"retry": 3}, "retry"),
        ({"protocol": 4}, "protocol"),
        ({"socket_keepalive_options": {999: 1}}, "socket_keepalive_options"),
        ({"options": {"no_such_knob": 1}}, "no_such_knob"),
        ({"options": {"breaker_failure_threshold": 0}}, "breaker_failure_threshold"),
        ({"connection_pool": object()}, "connection_pool"),
        ({"ssl": True, "ssl_cert_reqs": "bogus"}, "ssl_cert_reqs"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(redpool.ConfigError) as caught:
        redpool.Redis(**kwargs)
    assert name in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_bad_arguments_of_other_kinds(r):
    with pytest.raises(TypeError, match="no_such_argument"):
        redpool.Redis(no_such_argument=1)
    with pytest.raises(redpool.ConfigError, match="scheme|URL|url"):
        redpool.Redis.from_url("http://127.0.0.1:6379")
    with pytest.raises(redpool.ConfigError):
        redpool.Redis.from_url(42)
    with pytest.raises(redis.DataError, match="Invalid input of type: 'dict'"):
        r.set("k", {"a": 1})
    with pytest.raises(redis.DataError):
        r.set("k", True)
    with pytest.raises(TypeError):
        r.add_event_listener("not callable")


def test_blocking_command_waits_past_socket_timeout(server, oracle):
    client = redpool.Redis.from_url(server.url, socket_timeout=0.2, shared_pool=False)
    threading.Timer(0.5, lambda: server.oracle().rpush("jobs", "j1")).start()
    assert client.blpop(["jobs"], timeout=2) == (b"jobs", b"j1")
