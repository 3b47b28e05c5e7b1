"""A deadline is a deadline (issue 14.1): through a proxy that forwards the server's bytes one at a
time, 0.2 s apart (a 100-byte reply takes over 20 s), a call ends by ``socket_timeout`` for the
whole reply, a blocking command by its own timeout (retries included), and the AUTH/SETNAME
handshake of a new connection by ``socket_connect_timeout``. The Python twin of
tests/deadlines.rs.

The bounds are generous (several times the deadline): they tell an answer by the deadline from
the 20 s a dribbled reply would take, not a speed."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

import redpool
from proxy import DelayProxy
from support import PASSWORD

#: One byte every 0.2 s.
DRIBBLE = 0.2
#: Far below the 20 s a dribbled reply takes, far above the deadlines used (0.5 to 1.5 s).
ANSWERED_BY = 4.0


@pytest.fixture
def proxy(server, oracle) -> Iterator[DelayProxy]:
    """A proxy to the test server, not dribbling yet; ``k`` and the list ``l`` hold 100 bytes."""
    oracle.set("k", "v" * 100)
    oracle.rpush("l", "v" * 100)
    front = DelayProxy(server.port)
    yield front
    front.stop()


def dribbling_client(proxy: DelayProxy, **kwargs) -> redpool.Redis:
    """A dedicated client through ``proxy``, connected before the proxy starts dribbling."""
    client = redpool.Redis(host="127.0.0.1", port=proxy.port, shared_pool=False,
                           max_connections=1, **kwargs)
    assert client.ping()
    proxy.dribble = DRIBBLE
    return client


def timed_out(call) -> float:
    """Runs ``call``, which must raise redpool's (and redis-py's) TimeoutError in time; returns
    how long it took."""
    started = time.monotonic()
    with pytest.raises(redpool.TimeoutError):
        call()
    took = time.monotonic() - started
    assert took < ANSWERED_BY, f"answered after {took:.1f} s"
    return took


def test_a_dribbled_reply_times_out_by_socket_timeout_for_the_whole_reply(proxy):
    client = dribbling_client(proxy, socket_timeout=0.5, retry=None)
    try:
        assert timed_out(lambda: client.get("k")) >= 0.45
        # A pipeline and a transaction are bounded the same way.
        timed_out(lambda: client.pipeline(transaction=False).get("k").execute())
        timed_out(lambda: client.pipeline(transaction=True).get("k").execute())
    finally:
        client.close()


def test_a_blocking_commands_timeout_is_the_calls_deadline(proxy):
    # BLPOP's reply may take its block time (1 s) plus socket_timeout (0.5 s); retried (it is
    # allowed to be here), every attempt would take that long again.
    client = dribbling_client(proxy, socket_timeout=0.5,
                              options={"retry_non_idempotent": True})
    try:
        assert timed_out(lambda: client.blpop(["l"], timeout=1)) >= 1.45
    finally:
        client.close()


def test_a_dribbled_handshake_times_out_by_the_connect_timeout(auth_server):
    # AUTH and CLIENT SETNAME are answered +OK each: 10 bytes, 2 s dribbled.
    front = DelayProxy(auth_server.port, dribble=DRIBBLE)
    client = redpool.Redis(host="127.0.0.1", port=front.port, password=PASSWORD,
                           socket_connect_timeout=0.5, retry=None, shared_pool=False)
    try:
        started = time.monotonic()
        with pytest.raises(redpool.TimeoutError, match="handshake") as caught:
            client.ping()
        took = time.monotonic() - started
        assert took < ANSWERED_BY, f"answered after {took:.1f} s"
        assert PASSWORD not in str(caught.value)
    finally:
        client.close()
        front.stop()
