"""A pytest plugin that runs redis-py's own test files against ``redpool.Redis``.

Loaded with ``-p plugin`` by ``run.sh`` in an unpacked redis-py source distribution, it starts
a throwaway redis-server on a free loopback port (``--redis-url`` points there) and swaps the
client class redis-py's tests build (``redis.Redis``, through their fixtures and directly) for
redpool's, before any test module is imported. The test files stay as redis-py ships them.

Tests that cannot pass on any drop-in, because they look inside redis-py's own objects or
fail with redis-py itself, are listed in ``exclusions.py`` with the reason; they are reported as
skipped with it. A listed test that no longer exists fails the run, so the list stays true.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import redis
import pytest

import redpool

from exclusions import EXCLUDED
from support import RedisServer

_server: Optional[RedisServer] = None


def pytest_configure(config: pytest.Config) -> None:
    global _server
    _server = RedisServer(Path(tempfile.mkdtemp(prefix="redis-py-suite-")))
    config.option.redis_url = _server.url
    redis.Redis = redpool.Redis
    redis.StrictRedis = redpool.Redis


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    seen = set()
    for item in items:
        reason = EXCLUDED.get(item.nodeid)
        if reason is not None:
            seen.add(item.nodeid)
            item.add_marker(pytest.mark.skip(reason=f"excluded for redpool: {reason}"))
    # Only a run of whole files can tell a stale entry (``-k`` and node ids select fewer).
    if config.getoption("keyword") or any("::" in arg for arg in config.args):
        return
    stale = sorted(set(EXCLUDED) - seen)
    if stale:
        raise pytest.UsageError(
            "exclusions.py lists tests that redis-py's files no longer have: " + ", ".join(stale)
        )
