"""Observability from Python: Prometheus metrics (one pool and the process), the
prometheus_client collector, leak warnings naming the Python stack, run-time resize under load,
and the sizing advice of the health report."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest

import redpool
import redpool.asyncio
from support import PASSWORD, RELAXED_HEALTH

THIS_FILE = Path(__file__).name


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds passed; returns the last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def leak_records(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "redpool" and "possible leak" in r.getMessage()]


def series(text: str, name: str, **labels: str) -> List[float]:
    """The values of the series ``name`` whose labels include ``labels``."""
    values = []
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2)))
        if all(found.get(k) == v for k, v in labels.items()):
            values.append(float(match.group(3)))
    return values


# Metrics ----------------------------------------------------------------------------------------

def test_metrics_name_commands_by_outcome(server, oracle):
    client = redpool.Redis.from_url(server.url, pool_name="obs-commands")
    assert client.set("k", "v") and client.get("k") == b"v"
    with pytest.raises(redpool.ResponseError):
        client.lpush("k", "x")
    text = client.metrics()
    labels = {"pool": "obs-commands", "server": f"127.0.0.1:{server.port}"}
    assert series(text, "redpool_commands_total", command="set", outcome="ok", **labels) == [1]
    assert series(text, "redpool_commands_total", command="get", outcome="ok", **labels) == [1]
    assert series(text, "redpool_commands_total", command="lpush", outcome="error", **labels) == [1]
    assert '# TYPE redpool_command_duration_seconds histogram' in text
    assert series(text, "redpool_connection_max", **labels) == [50]
    # The process-wide text has this pool and the others, each family once.
    everything = redpool.metrics()
    assert series(everything, "redpool_commands_total", command="set", outcome="ok",
                  **labels) == [1]
    assert len(set(series(everything, "redpool_connection_max"))) >= 1
    assert everything.count("# TYPE redpool_commands_total counter") == 1
    assert client.pool_stats()["leaks_suspected"] == 0


def test_pool_name_defaults_to_the_client_name(server, oracle):
    client = redpool.Redis.from_url(server.url, client_name="obs-client", shared_pool=False)
    client.ping()
    assert series(client.metrics(), "redpool_commands_total", pool="obs-client", command="ping",
                  outcome="ok") == [1]
    assert client._pool.name == "obs-client"
    client.close()


def test_no_password_in_metrics_health_or_events(auth_server):
    client = redpool.Redis(host="127.0.0.1", port=auth_server.port, password=PASSWORD,
                           pool_name="obs-auth")
    events: List[dict] = []
    client.add_event_listener(events.append)
    assert client.set("k", "v")
    for text in (client.metrics(), redpool.metrics(), repr(client.health()), repr(events),
                 repr(client), repr(client.pool_stats())):
        assert PASSWORD not in text
    assert series(client.metrics(), "redpool_commands_total", pool="obs-auth", command="set")


def test_prometheus_client_collector(server, oracle):
    prometheus_client = pytest.importorskip("prometheus_client")
    import redpool.prometheus

    client = redpool.Redis.from_url(server.url, pool_name="obs-prom")
    client.set("k", "v")
    registry = prometheus_client.CollectorRegistry()
    collector = redpool.prometheus.register(registry)
    assert redpool.prometheus.register(registry) is collector  # not exported twice
    text = prometheus_client.generate_latest(registry).decode()
    for family, kind in (("redpool_commands_total", "counter"),
                         ("redpool_connections", "gauge"),
                         ("redpool_connection_connecting", "gauge"),
                         ("redpool_connection_errors_total", "counter"),
                         ("redpool_connection_wait_time_seconds", "histogram"),
                         ("redpool_command_duration_seconds", "histogram"),
                         ("redpool_connection_leaks_suspected_total", "counter")):
        assert f"# TYPE {family} {kind}" in text
    assert text.count("# TYPE redpool_commands_total counter") == 1
    assert series(text, "redpool_commands_total", pool="obs-prom", command="set",
                  outcome="ok") == [1]
    assert series(text, "redpool_connection_wait_time_seconds_count", pool="obs-prom") == [1]
    # One client's pool only.
    mine = prometheus_client.CollectorRegistry()
    mine.register(redpool.prometheus.RedpoolCollector(client))
    own = prometheus_client.generate_latest(mine).decode()
    assert set(re.findall(r'pool="([^"]*)"', own)) == {"obs-prom"}


def test_importing_redpool_does_not_need_prometheus_client():
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import redpool, redpool.asyncio\n"
        "assert isinstance(redpool.metrics(), str)\n"
        "try:\n"
        "    import redpool.prometheus\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "redpool[prometheus]" in out.stdout


# Leak detection ---------------------------------------------------------------------------------

def hold_a_watch_session(client: redpool.Redis, seconds: float) -> None:
    """Checks out a connection through WATCH and keeps it (as a forgotten pipeline would)."""
    pipe = client.pipeline()
    pipe.watch("leaky")
    time.sleep(seconds)
    pipe.reset()


def test_a_leaked_checkout_is_logged_with_the_python_stack(server, oracle, caplog):
    caplog.set_level(logging.WARNING, logger="redpool")
    client = redpool.Redis.from_url(server.url, shared_pool=False, leak_detection_threshold=0.2)
    events: List[dict] = []
    client.add_event_listener(events.append)
    pipe = client.pipeline()
    pipe.watch("leaky")
    try:
        time.sleep(1.0)
        assert wait_for(lambda: leak_records(caplog)), "no leak warning was logged"
    finally:
        pipe.reset()
    [record] = leak_records(caplog)
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "by thread MainThread" in message
    assert THIS_FILE in message and "test_a_leaked_checkout_is_logged_with_the_python_stack" in message
    assert "pipe.watch" in message  # the line that took the connection
    assert PASSWORD not in message
    [event] = [e for e in events if e["type"] == "leak_suspected"]
    assert event["thread"] == "MainThread" and THIS_FILE in event["stack"]
    assert event["held_for"] >= 0.2 and isinstance(event["connection_id"], int)
    assert client.pool_stats()["leaks_suspected"] == 1
    assert series(client.metrics(), "redpool_connection_leaks_suspected_total") == [1]
    client.close()


def test_a_leak_from_another_thread_names_that_thread(server, oracle, caplog):
    caplog.set_level(logging.WARNING, logger="redpool")
    client = redpool.Redis.from_url(server.url, shared_pool=False, leak_detection_threshold=0.2)
    worker = threading.Thread(target=hold_a_watch_session, args=(client, 1.0), name="obs-worker")
    worker.start()
    try:
        assert wait_for(lambda: leak_records(caplog)), "no leak warning was logged"
    finally:
        worker.join(timeout=30)
    message = leak_records(caplog)[0].getMessage()
    assert "by thread obs-worker" in message and "hold_a_watch_session" in message
    client.close()


def test_an_asyncio_leak_names_the_coroutine(server, oracle, caplog):
    caplog.set_level(logging.WARNING, logger="redpool")

    async def leaky_coroutine():
        client = redpool.asyncio.Redis.from_url(server.url, shared_pool=False,
                                                leak_detection_threshold=0.2)
        pipe = client.pipeline()
        await pipe.watch("leaky")
        try:
            for _ in range(500):
                if leak_records(caplog):
                    break
                await asyncio.sleep(0.02)
        finally:
            await pipe.reset()
            await client.aclose()

    asyncio.run(leaky_coroutine())
    [record] = leak_records(caplog)
    assert "leaky_coroutine" in record.getMessage() and THIS_FILE in record.getMessage()


def test_short_checkouts_are_not_reported(server, oracle, caplog):
    caplog.set_level(logging.WARNING, logger="redpool")
    # A 2 s threshold: a loaded machine can stall a short checkout for 100s of ms, which a
    # tighter one would (rightly) report.
    client = redpool.Redis.from_url(server.url, shared_pool=False, leak_detection_threshold=2)
    for _ in range(5):
        with client.pipeline() as pipe:
            pipe.watch("counter")
            value = int(pipe.get("counter") or 0)
            pipe.multi()
            pipe.set("counter", value + 1)
            pipe.execute()
        client.set("k", "v")
    assert oracle.get("counter") == b"5"
    time.sleep(2.5)  # past the threshold, with a maintenance pass (every 0.5 s) to spare
    assert leak_records(caplog) == []
    assert client.pool_stats()["leaks_suspected"] == 0
    client.close()


def test_leak_detection_threshold_is_validated():
    with pytest.raises(redpool.ConfigError, match="leak_detection_threshold"):
        redpool.Redis(leak_detection_threshold=-1)
    with pytest.raises(redpool.ConfigError, match="pool_name"):
        redpool.Redis(pool_name=3)
    # 0 turns it off.
    client = redpool.Redis(leak_detection_threshold=0, shared_pool=False)
    assert client._pool.leak_detection_threshold is None
    client.close()


# Resize and sizing ------------------------------------------------------------------------------

def test_resize_under_load_fails_no_call(server, oracle):
    client = redpool.Redis.from_url(server.url, shared_pool=False, max_connections=4,
                                    acquire_timeout=10)
    errors: List[BaseException] = []
    calls = [0] * 8
    stop = threading.Event()

    def work(n: int) -> None:
        try:
            while not stop.is_set():
                client.set(f"k{n}", n)
                assert client.get(f"k{n}") == str(n).encode()
                calls[n] += 1
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        # min_idle=None keeps the current one (lowered to the cap when above it).
        for size, min_idle in ((8, 2), (2, None), (6, 1), (3, None), (5, None)):
            client.resize(size, min_idle=min_idle)
            assert client.pool_stats()["max_connections"] == size
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert all(n > 0 for n in calls)
    stats = client.pool_stats()
    assert stats["max_connections"] == 5 and stats["min_idle"] == 1
    assert stats["open"] <= 5 and stats["in_use"] == 0
    assert client.connection_pool.max_connections == 5
    assert series(client.metrics(), "redpool_connection_max") == [5]
    client.close()


def test_resize_arguments_are_checked(r):
    with pytest.raises(redpool.ConfigError, match="max_connections"):
        r.resize(0)
    with pytest.raises(redpool.ConfigError, match="min_idle"):
        r.resize(4, min_idle=-1)
    with pytest.raises(redpool.ConfigError):
        r.resize(2, min_idle=3)


def test_health_has_sizing_advice(server, oracle):
    client = redpool.Redis.from_url(server.url, shared_pool=False, max_connections=10)
    client.health()  # starts a window
    for i in range(20):
        client.set(f"k{i}", i)
    sizing = client.health()["sizing"]
    for key in ("window", "utilization", "mean_in_use", "arrival_rate", "mean_hold_time",
                "mean_wait", "acquire_timeouts", "max_connections"):
        assert key in sizing
    assert sizing["max_connections"] == 10
    assert isinstance(sizing["suggested_max_connections"], int)
    assert sizing["suggested_max_connections"] >= 1
    assert sizing["arrival_rate"] > 0 and sizing["acquire_timeouts"] == 0
    client.close()


def test_asyncio_client_has_metrics_and_resize(server, oracle):
    async def main():
        client = redpool.asyncio.Redis.from_url(server.url, shared_pool=False,
                                                pool_name="obs-async")
        await client.set("k", "v")
        assert series(client.metrics(), "redpool_commands_total", pool="obs-async",
                      command="set", outcome="ok") == [1]
        client.resize(7)
        assert client.pool_stats()["max_connections"] == 7
        assert "suggested_max_connections" in (await client.health())["sizing"]
        await client.aclose()

    asyncio.run(main())


# The built-in endpoint ------------------------------------------------------------------------

def test_metrics_endpoint_from_the_environment_needs_no_code(server):
    """REDPOOL_METRICS_ADDR starts the core's loopback /metrics and /health endpoint with the
    first pool: a Python service gets it without a line of its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = (
        "import sys, urllib.request, redpool\n"
        # Generous latency thresholds: this checks the plumbing, and a loaded machine can take
        # over 100 ms (the default "unhealthy") to answer a PING.
        f"r = redpool.Redis.from_url({server.url + RELAXED_HEALTH!r}, pool_name='env-endpoint')\n"
        "r.ping()\n"
        f"base = 'http://127.0.0.1:{port}'\n"
        "body = urllib.request.urlopen(base + '/metrics', timeout=10).read().decode()\n"
        "assert 'redpool_connections{pool=\"env-endpoint\"' in body, body[:500]\n"
        "health = urllib.request.urlopen(base + '/health', timeout=30).read().decode()\n"
        "assert '\"status\":\"healthy\"' in health, health[:500]\n"
        "print('ok')\n"
    )
    env = dict(os.environ, REDPOOL_METRICS_ADDR=f"127.0.0.1:{port}")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
