"""redpool's exceptions.

Every class is both a redpool error and the redis-py error an application already catches, so
``except redis.ConnectionError:`` (or ``except redis.exceptions.ResponseError:``) keeps working
after switching to redpool, and ``except redpool.RedisPoolError:`` catches everything redpool
raises. The native module raises these classes; the mapping from the core's error kinds lives in
one place, ``bindings/python/src/errors.rs``::

    RedisPoolError(redis.RedisError)
    ├── ConnectionError(builtins.ConnectionError, redis.ConnectionError)
    │   ├── AuthenticationError(redis.AuthenticationError)
    │   ├── PoolTimeoutError(builtins.TimeoutError, redis.MaxConnectionsError)   pool exhausted
    │   ├── CircuitOpenError                 the circuit breaker is open: failed fast
    │   ├── PoolClosedError                  the pool was closed
    │   └── BusyLoadingError(redis.BusyLoadingError)
    ├── TimeoutError(builtins.TimeoutError, redis.TimeoutError)
    ├── ProtocolError(redis.InvalidResponse)
    ├── ResponseError(redis.ResponseError)   a server error reply; ``code`` is its first word
    │   └── NoScriptError, ExecAbortError, ReadOnlyError, OutOfMemoryError,
    │       NoPermissionError, ModuleError   (each also the redis-py class of that name)
    └── ConfigError(ValueError, redis.DataError)   an invalid setting or argument

Server error replies are classified exactly as redis-py's parser does it (``WRONGTYPE`` is a
``ResponseError``, ``NOSCRIPT`` a ``NoScriptError``, ...), by :func:`from_server_reply`.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any, Dict, Sequence, Tuple

import redis.exceptions as _redis

try:  # redis-py >= 5
    from redis._parsers import BaseParser as _Parser
except ImportError:  # pragma: no cover - older redis-py
    from redis.connection import BaseParser as _Parser  # type: ignore[attr-defined,no-redef]

__all__ = [
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
    "from_server_reply",
]

# Raised by redis-py's own code that redpool reuses (pipelines, the encoder, locks): re-exported
# so ``redpool.WatchError`` and friends exist under their usual names.
WatchError = _redis.WatchError
DataError = _redis.DataError
LockError = _redis.LockError


class RedisPoolError(_redis.RedisError):
    """Base class of every error redpool raises. ``transient`` is the core's classifier, the same
    in every language: True when the same call may succeed if made again later (connection,
    timeout, protocol, pool exhausted, circuit open)."""

    transient: bool = False


class ConnectionError(RedisPoolError, _redis.ConnectionError, builtins.ConnectionError):
    """The server could not be reached, or the connection broke."""


class AuthenticationError(ConnectionError, _redis.AuthenticationError):
    """The server refused the credentials (AUTH failed, NOAUTH, WRONGPASS)."""


# redis-py raises MaxConnectionsError (6.0+) when its pool is full.
_MaxConnectionsError = getattr(_redis, "MaxConnectionsError", _redis.ConnectionError)


class PoolTimeoutError(ConnectionError, _MaxConnectionsError, builtins.TimeoutError):
    """No connection became free within ``acquire_timeout``. The message tells the pool's state
    (in use, idle, waiting) and the last connect error."""


class CircuitOpenError(ConnectionError):
    """The circuit breaker is open: the call failed at once without touching the network. The
    message says when the next probe is allowed."""


class PoolClosedError(ConnectionError):
    """The pool was closed; no new work is accepted."""


class BusyLoadingError(ConnectionError, _redis.BusyLoadingError):
    """The server is loading its dataset (``LOADING``)."""


class TimeoutError(RedisPoolError, _redis.TimeoutError, builtins.TimeoutError):
    """Connecting, reading or writing took longer than the configured timeout."""


class ProtocolError(RedisPoolError, _redis.InvalidResponse):
    """The server's bytes were not valid RESP."""


class ResponseError(RedisPoolError, _redis.ResponseError):
    """The server answered with an error reply; ``code`` is its first word (``"WRONGTYPE"``)."""

    code: str = ""


class NoScriptError(ResponseError, _redis.NoScriptError):
    """``NOSCRIPT``: EVALSHA of a script the server does not know."""


class ExecAbortError(ResponseError, _redis.ExecAbortError):
    """``EXECABORT``: a transaction was discarded because a command was rejected.
    ``rejected_commands`` holds each command the server rejected while queueing, as its position
    among the commands sent and its own exception (empty when the server named none)."""

    rejected_commands: Sequence[Tuple[int, ResponseError]] = ()


class ReadOnlyError(ResponseError, _redis.ReadOnlyError):
    """``READONLY``: a write sent to a replica."""


class OutOfMemoryError(ResponseError, _redis.OutOfMemoryError):
    """``OOM``: the server is over ``maxmemory``."""


class NoPermissionError(ResponseError, _redis.NoPermissionError):
    """``NOPERM``: the ACL user may not run this command or touch this key."""


class ModuleError(ResponseError, _redis.ModuleError):
    """A module could not be loaded or unloaded."""


class ConfigError(RedisPoolError, ValueError, _redis.DataError):
    """An invalid setting or argument; the message names it, its value and the rule."""

    def __init__(self, *args: Any) -> None:
        # ValueError's __init__ comes first in the MRO; redis-py's sets what its repr() reads.
        _redis.DataError.__init__(self, *args)


#: redis-py's class → redpool's class of the same meaning.
_TWINS: Dict[type, type] = {
    _redis.ConnectionError: ConnectionError,
    _redis.AuthenticationError: AuthenticationError,
    _redis.BusyLoadingError: BusyLoadingError,
    _redis.ResponseError: ResponseError,
    _redis.NoScriptError: NoScriptError,
    _redis.ExecAbortError: ExecAbortError,
    _redis.ReadOnlyError: ReadOnlyError,
    _redis.OutOfMemoryError: OutOfMemoryError,
    _redis.NoPermissionError: NoPermissionError,
    _redis.ModuleError: ModuleError,
}


def _twin(redis_class: type) -> type:
    """redpool's class for a redis-py error class. Classes without a hand-written twin (cluster
    redirections, which a standalone server never sends) get one made on first use, registered
    in this module so it pickles."""
    twin = _TWINS.get(redis_class)
    if twin is None:
        base = next(_TWINS[c] for c in redis_class.__mro__ if c in _TWINS)
        twin = type(redis_class.__name__, (base, redis_class), {"__module__": __name__})
        setattr(sys.modules[__name__], redis_class.__name__, twin)
        _TWINS[redis_class] = twin
    return twin


def from_server_reply(message: str) -> BaseException:
    """The exception (not raised) for a server error reply such as ``"WRONGTYPE Operation
    against a key ..."``, classified by redis-py's own table."""
    parsed = _Parser.parse_error(message)
    error = _twin(type(parsed))(*parsed.args)
    error.__dict__.update(parsed.__dict__)
    error.code = message.split(" ", 1)[0]
    return error


class IgnoredArgumentWarning(UserWarning):
    """A redis-py argument that redpool accepts but does not use was given a value of its own
    (the warning names it and says why)."""
