"""Fixtures: a redis-server per session (plus one with a password), an oracle client and
redpool clients, all on a flushed server."""

from __future__ import annotations

from typing import Iterator

import pytest
import redis

import redpool
from support import PASSWORD, RedisServer


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path_factory.mktemp("redis"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path_factory.mktemp("redis-auth"), ["--requirepass", PASSWORD])
    yield srv
    srv.stop()


@pytest.fixture
def oracle(server) -> Iterator[redis.Redis]:
    """redis-py on a flushed server."""
    client = server.oracle()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r(server, oracle) -> redpool.Redis:
    """A redpool client (the shared pool of the test server) on a flushed server."""
    return redpool.Redis.from_url(server.url)

