"""The breaker judges calls, and errors name the cause (issue 14.7): against a port with nothing
listening, the first calls each raise the connection error naming the refusal (one failed call
counts once toward the breaker, however many attempts its retries made), and the open circuit
then names the failure that opened it; after a wrong password every error is an authentication
error, never "unreachable". The Python twin of tests/first_errors.rs."""

from __future__ import annotations

import builtins

import pytest
import redis

import redpool
from support import PASSWORD, free_port


def test_the_first_calls_against_a_closed_port_report_the_refusal():
    # Default retries (3) and breaker threshold (5); short backoffs keep the test quick.
    client = redpool.Redis(host="127.0.0.1", port=free_port(), shared_pool=False,
                           options={"retry_backoff_base": "5ms", "retry_backoff_cap": "20ms",
                                    "reconnect_backoff_base": "5ms",
                                    "reconnect_backoff_cap": "20ms"})
    try:
        for call in range(1, 6):
            with pytest.raises(redpool.ConnectionError) as caught:
                client.get("k")
            error = caught.value
            assert isinstance(error, redis.ConnectionError), (call, error)
            assert isinstance(error, builtins.ConnectionError), (call, error)
            assert not isinstance(error, redpool.CircuitOpenError), (call, error)
            assert "refused" in str(error), (call, error)
            assert client.pool_stats()["retries"] >= 3 * call, f"call {call} was not retried"
        with pytest.raises(redpool.CircuitOpenError) as caught:
            client.get("k")
        assert "last:" in str(caught.value)
        assert "refused" in str(caught.value)
    finally:
        client.close()


def test_after_a_wrong_password_every_error_says_authentication(auth_server):
    wrong = "wrong-" + PASSWORD
    client = redpool.Redis(host="127.0.0.1", port=auth_server.port, password=wrong,
                           shared_pool=False,
                           options={"reconnect_backoff_base": 2.0, "reconnect_backoff_cap": 2.0})
    try:
        for call in range(3):
            with pytest.raises(redpool.AuthenticationError) as caught:
                client.ping()
            message = str(caught.value)
            assert isinstance(caught.value, redis.AuthenticationError), (call, message)
            assert "authentication" in message, (call, message)
            assert "unreachable" not in message, (call, message)
            assert PASSWORD not in message, (call, message)
    finally:
        client.close()
