"""Fast paths for redis-py command methods whose own argument handling costs more than sending
the command (mixed into every redpool client and pipeline class, ahead of redis-py's)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from redis.commands.core import BasicKeyCommands

_REDIS_PY_SET = BasicKeyCommands.set


def _set(client: Any, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
    """``client.set(name, value, ...)``. redis-py 8's ``set()`` checks its option combinations
    and binds its arguments on every call (5-7 µs, more than a pipelined SET's whole native
    cost); for a plain ``set(name, value)`` it sends ``SET name value`` with no options, which
    is what this sends. Any option goes through redis-py's own method."""
    if args or kwargs:
        return _REDIS_PY_SET(client, name, value, *args, **kwargs)
    return client.execute_command("SET", name, value)


class FastCommands:
    """redis-py's command methods, with a shortcut for their most common plain call."""

    if TYPE_CHECKING:  # the type checker sees redis-py's signature, which this one takes
        set = _REDIS_PY_SET
    else:
        set = functools.wraps(_REDIS_PY_SET)(_set)
