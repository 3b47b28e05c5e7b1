"""The pool surface: sharing, the default client, stats, health, breaker, events, logging, close,
and the translation of redis-py's arguments."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time

import pytest
import redis
from redis.backoff import ConstantBackoff, EqualJitterBackoff, ExponentialBackoff
from redis.retry import Retry

import redpool
import redpool.asyncio
from redpool import _options

from support import RELAXED_HEALTH, free_port


def test_clients_of_the_same_settings_share_one_pool(server, oracle):
    a = redpool.Redis(host="127.0.0.1", port=server.port)
    b = redpool.Redis.from_url(server.url)
    c = redpool.asyncio.Redis.from_url(server.url)
    assert a._pool.same_pool(b._pool) and a._pool.same_pool(c._pool)
    assert a.shared_pool
    dedicated = redpool.Redis.from_url(server.url, shared_pool=False)
    assert not dedicated._pool.same_pool(a._pool)
    other = redpool.Redis.from_url(server.url, max_connections=7)
    assert not other._pool.same_pool(a._pool)


def test_creating_a_client_never_connects():
    port = free_port()  # nothing listens there
    client = redpool.Redis(host="127.0.0.1", port=port)
    assert client.pool_stats()["open"] == 0
    code = "import redpool, redpool.asyncio; print(redpool.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_get_client_reads_the_environment(server, oracle, monkeypatch):
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("REDIS_MAX_CONNECTIONS", "9")
    redpool.client._default_clients.clear()
    client = redpool.get_client()
    assert client is redpool.get_client()
    assert client.pool_stats()["max_connections"] == 9
    assert client.set("env", "ok") and oracle.get("env") == b"ok"
    assert redpool.get_client(decode_responses=True).get("env") == "ok"
    redpool.client._default_clients.clear()


def test_stats_health_and_breaker(server, oracle):
    # Generous latency thresholds: a loaded machine can take over 100 ms (the default
    # "unhealthy") to answer the PING; this checks the report's plumbing, not latency.
    r = redpool.Redis.from_url(server.url + RELAXED_HEALTH, shared_pool=False)
    r.set("k", "v")
    stats = r.pool_stats()
    for key in ("open", "idle", "in_use", "waiting", "max_connections", "acquires", "commands",
                "connections_created", "errors", "connections_closed", "wait_time_max"):
        assert key in stats
    assert stats["in_use"] == 0 and stats["open"] >= 1
    report = r.health()
    assert report["status"] in ("healthy", "degraded")
    assert report["ping_latency"] > 0
    assert report["server_info"]["role"] == "master"
    assert report["breaker"] == r.breaker_state() == "closed"
    down = redpool.Redis(host="127.0.0.1", port=free_port(), shared_pool=False, retry=None,
                         socket_connect_timeout=0.5)
    assert down.health()["status"] == "unhealthy"
    r.close()


def test_events_reach_listeners_and_state_changes_reach_the_logger(caplog):
    client = redpool.Redis(host="127.0.0.1", port=free_port(), shared_pool=False, retry=None,
                           options={"breaker_failure_threshold": 1})
    seen = []
    listener = client.add_event_listener(seen.append)
    caplog.set_level(logging.INFO, logger="redpool")
    with pytest.raises(redpool.ConnectionError):
        client.ping()
    assert any(e["type"] == "breaker_state_changed" and e["to"] == "open" for e in seen)
    assert all("pool" in e for e in seen)
    assert client.remove_event_listener(listener)
    assert not client.remove_event_listener(listener)
    records = [r for r in caplog.records if r.name == "redpool"]
    assert any("circuit breaker closed -> open" in r.getMessage() and r.levelno == logging.WARNING
               for r in records)


def test_listener_exceptions_do_not_reach_the_pool(r, monkeypatch):
    def broken(event):
        raise RuntimeError("listener bug")

    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    dedicated = redpool.Redis.from_url(r._pool.url, shared_pool=False)
    listener = dedicated.add_event_listener(broken)
    try:
        assert dedicated.ping()  # opens a connection: a connection_created event
        assert reported and isinstance(reported[0].exc_value, RuntimeError)
    finally:
        # Else the pool outlives the test, and a later event of it (its background health
        # check's, 30 s on) raises in whichever test runs then.
        dedicated.remove_event_listener(listener)
        dedicated.close()


def test_close_pool_and_replacement(server, oracle):
    a = redpool.Redis.from_url(server.url, max_connections=5)
    assert a.ping()
    a.close()  # shared: stays open for the others
    assert a.ping()
    a.close_pool(grace=1)
    with pytest.raises(redpool.PoolClosedError):
        a.ping()
    b = redpool.Redis.from_url(server.url, max_connections=5)
    assert b.ping()  # a new shared pool replaced the closed one


def test_redis_py_arguments_become_knobs():
    with pytest.warns(_options.IgnoredArgumentWarning) as ignored:
        settings = _options.translate(
            host="h", port=7000, db=2, password="pw", username="u", socket_timeout=1.5,
            socket_connect_timeout=2, socket_keepalive=True,
            socket_keepalive_options={socket.TCP_KEEPIDLE: 30, socket.TCP_KEEPINTVL: 5,
                                      socket.TCP_KEEPCNT: 3},
            health_check_interval=0, max_connections=20, client_name="app",
            retry=Retry(ExponentialBackoff(cap=2, base=0.05), 4), min_idle=2, acquire_timeout=3,
            lib_name="ignored", retry_on_timeout=True, retry_on_error=None,
        )
    # Given a value of their own, the arguments redpool does not use are named, never silent.
    assert sorted(str(w.message) for w in ignored) == [
        "redpool ignores lib_name: CLIENT SETINFO is not sent",
        "redpool ignores retry_on_timeout: the core retries timeouts of idempotent commands by itself",
    ]
    knobs = {knob: value for knob, value, _ in settings.knobs}
    assert settings.shared is True
    assert knobs == {
        "host": "h", "port": "7000", "db": "2", "username": "u", "password": "pw", "client_name": "app",
        "socket_timeout": "1.5", "connect_timeout": "2",
        "health_check_interval": "0", "acquire_timeout": "3",
        "max_connections": "20", "min_idle": "2", "tcp_keepalive": "true",
        "tcp_keepalive_idle": "30", "tcp_keepalive_interval": "5", "tcp_keepalive_count": "3",
        "retries": "4", "retry_backoff_base": "0.05", "retry_backoff_cap": "2.0",
        "retry_jitter": "none",
    }
    # Each knob carries the argument's name, which the core's errors use.
    assert ("connect_timeout", "2", "socket_connect_timeout") in settings.knobs
    assert ("retry_jitter", "equal", "retry") in _options.translate(retry=Retry(EqualJitterBackoff(), 1)).knobs
    constant = {k: v for k, v, _ in _options.translate(retry=Retry(ConstantBackoff(0.2), 2)).knobs}
    assert constant["retry_backoff_base"] == constant["retry_backoff_cap"] == "0.2"
    tls = {k: v for k, v, _ in _options.translate(ssl=True, ssl_ca_certs="/ca.pem", ssl_certfile="/c.pem",
                                                  ssl_keyfile="/k.pem", ssl_cert_reqs="none").knobs}
    assert tls["tls_ca_file"] == "/ca.pem" and tls["tls_insecure"] == "true"
    with pytest.raises(redpool.ConfigError, match="ssl_check_hostname"):
        _options.translate(ssl=True, ssl_check_hostname=False)


def test_url_query_options_follow_redis_py(server, oracle):
    kwargs = {}
    url = _options.split_url(
        "redis://127.0.0.1:6379/3?socket_timeout=2&decode_responses=True&max_connections=4", kwargs
    )
    assert kwargs == {"socket_timeout": 2.0, "decode_responses": True}
    assert url == "redis://127.0.0.1:6379/3?max_connections=4"
    client = redpool.Redis.from_url(server.url + "?decode_responses=yes&socket_timeout=3")
    client.set("k", "v")
    assert client.get("k") == "v"
    assert client._pool.socket_timeout == 3.0
    with_db = redpool.Redis.from_url(f"redis://127.0.0.1:{server.port}", db=5)
    with_db.set("in5", 1)
    assert server.oracle(db=5).get("in5") == b"1"


def test_keepalive_and_client_name_reach_the_server(server, oracle):
    client = redpool.Redis.from_url(server.url, client_name="my-app", shared_pool=False,
                                    socket_keepalive_options={socket.TCP_KEEPIDLE: 33})
    client.ping()
    names = [c["name"] for c in oracle.client_list()]
    assert "my-app" in names


def test_connection_kwargs_and_encoder(r):
    assert r.get_connection_kwargs()["decode_responses"] is False
    assert r.get_encoder().encode(1.5) == b"1.5"
    with pytest.raises(NotImplementedError):
        r.connection_pool.get_connection()
    with pytest.raises(NotImplementedError, match="pub/sub"):
        r.pubsub()
    assert isinstance(r, redis.Redis)


def test_idle_connections_survive_a_server_restart_of_the_client_side(r, oracle):
    r.set("k", 1)
    oracle.client_kill_filter(_type="normal", skipme=True)
    time.sleep(0.05)
    assert r.get("k") == b"1"  # the killed idle connection was replaced transparently
