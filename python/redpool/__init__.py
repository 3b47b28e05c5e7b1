"""redpool: production Redis connection management in Rust, as a drop-in for redis-py's client.

Switch an application by changing its import::

    import redpool as redis          # was: import redis
    r = redis.Redis(host="localhost", port=6379, decode_responses=True)
    r.set("greeting", "hello")

Every client created with the same settings shares one pool (circuit breaker, safe retries,
keepalive, health checks, fork safety), the exceptions are also redis-py's classes, and
``redpool.asyncio.Redis`` is the asyncio client. ``redpool.metrics()`` is the Prometheus text of
every pool (``redpool.prometheus`` plugs it into ``prometheus_client``). See the README's Python
section.
"""

from . import _native
from .client import Pipeline, PooledConnection, Redis, StrictRedis, get_client
from .exceptions import (
    IgnoredArgumentWarning,
    AuthenticationError,
    BusyLoadingError,
    CircuitOpenError,
    ConfigError,
    ConnectionError,
    DataError,
    ExecAbortError,
    LockError,
    ModuleError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    PoolClosedError,
    PoolTimeoutError,
    ProtocolError,
    ReadOnlyError,
    RedisPoolError,
    ResponseError,
    TimeoutError,
    WatchError,
)
from redis.exceptions import InvalidResponse, RedisError

#: The library version (the same as the Rust core's).
__version__: str = _native.__version__

#: ``from_url`` at module level, as in redis-py.
from_url = Redis.from_url


def metrics() -> str:
    """The metrics of every open pool of the process in the Prometheus text format, each series
    labelled with its ``pool`` (``pool_name``, default the client name) and ``server``
    (``host:port``, never credentials). For one client's pool: ``client.metrics()``; for
    ``prometheus_client``: :func:`redpool.prometheus.register`."""
    return _native.metrics_text()


__all__ = [
    "Redis",
    "StrictRedis",
    "Pipeline",
    "PooledConnection",
    "IgnoredArgumentWarning",
    "from_url",
    "get_client",
    "metrics",
    "RedisError",
    "InvalidResponse",
    "RedisPoolError",
    "ConnectionError",
    "AuthenticationError",
    "PoolTimeoutError",
    "CircuitOpenError",
    "PoolClosedError",
    "BusyLoadingError",
    "TimeoutError",
    "ProtocolError",
    "ResponseError",
    "NoScriptError",
    "ExecAbortError",
    "ReadOnlyError",
    "OutOfMemoryError",
    "NoPermissionError",
    "ModuleError",
    "ConfigError",
    "WatchError",
    "DataError",
    "LockError",
    "__version__",
]
