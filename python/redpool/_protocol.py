"""How a redis-py command call becomes a native call and back, shared by the sync client, its
pipelines and (through them) the asyncio client.

Arguments are encoded with redis-py's own encoder, so every command method keeps redis-py's
argument handling (``DataError`` for a ``dict`` value, floats as ``repr``, ...). Replies come
back from the native module in the shapes redis-py's RESP2 parser produces, and redis-py's own
response callbacks turn them into the values its command methods return (``hgetall`` → dict,
``zrange(..., withscores=True)`` → list of tuples, ``set`` → bool, ...).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, MutableMapping, Optional, Sequence, Tuple, Union

import redis
from redis.client import EMPTY_RESPONSE, NEVER_DECODE, CaseInsensitiveDict

try:  # redis-py >= 5
    from redis._parsers import Encoder
except ImportError:  # pragma: no cover - older redis-py
    from redis.connection import Encoder  # type: ignore[attr-defined,no-redef]

from . import _native

#: A native target: the pool, or a checked-out connection (same call signatures).
Target = Union[_native.Pool, _native.Connection]
#: A queued command: redis-py's ``(args, options)`` pair.
Command = Tuple[Sequence[Any], Dict[str, Any]]

#: Blocking commands: where their timeout is (an argument index, negative from the end, or the
#: name of the option it follows) and its unit in seconds.
_BLOCKING: Dict[bytes, Tuple[Union[int, bytes], float]] = {
    b"BLPOP": (-1, 1.0),
    b"BRPOP": (-1, 1.0),
    b"BRPOPLPUSH": (-1, 1.0),
    b"BLMOVE": (-1, 1.0),
    b"BZPOPMIN": (-1, 1.0),
    b"BZPOPMAX": (-1, 1.0),
    b"BLMPOP": (1, 1.0),
    b"BZMPOP": (1, 1.0),
    b"XREAD": (b"BLOCK", 0.001),
    b"XREADGROUP": (b"BLOCK", 0.001),
    b"WAIT": (-1, 0.001),
    b"WAITAOF": (-1, 0.001),
}
#: Waiting "forever" (a blocking timeout of 0): a year.
_FOREVER = 365 * 24 * 3600.0


def _response_callbacks() -> MutableMapping[str, Callable[..., Any]]:
    """redis-py's RESP2 response callbacks, taken from a client that never connects (redis-py
    creates connections lazily), so they match the installed redis-py version."""
    client = redis.Redis(protocol=2)
    try:
        return CaseInsensitiveDict(dict(client.response_callbacks))
    finally:
        client.close()


_CALLBACKS = _response_callbacks()


#: Command names as sent, by the ``str`` redis-py's methods pass (``"GET"``, ``"CONFIG GET"``),
#: filled as they are first used: names come from redis-py's command table, so it stays small.
_COMMAND_NAMES: Dict[str, List[bytes]] = {}
#: Past this many names (callers passing names of their own), no more are remembered.
_MAX_COMMAND_NAMES = 4096


def _split_name(name: Any, encode: Callable[[Any], Any]) -> List[bytes]:
    """A command name as its packed words (``"CONFIG GET"`` is two); names that are neither
    ``str`` nor ``bytes`` go through the encoder."""
    if isinstance(name, str):
        words = name.encode().split()
        if type(name) is str and len(_COMMAND_NAMES) < _MAX_COMMAND_NAMES:
            _COMMAND_NAMES[name] = words
        return words
    if type(name) is bytes:
        return name.split() if b" " in name else [name]
    value = encode(name)
    return [value if type(value) is bytes else bytes(value)]


class Codec:
    """Encoding, decoding and response callbacks of one client (shared with its pipelines)."""

    def __init__(self, encoding: str, encoding_errors: str, decode_responses: bool,
                 socket_timeout: float) -> None:
        self.encoder = Encoder(encoding, encoding_errors, decode_responses)
        #: What the native module decodes replies with (None: keep bytes).
        self.decode: Optional[Tuple[str, str]] = (
            (encoding, encoding_errors) if decode_responses else None
        )
        self.callbacks: MutableMapping[str, Callable[..., Any]] = CaseInsensitiveDict(_CALLBACKS)
        self.socket_timeout = socket_timeout

    def pack(self, args: Sequence[Any]) -> List[bytes]:
        """The command's arguments as bytes, as redis-py's ``Connection.pack_command`` does it
        (a multi-word command name such as ``"CONFIG GET"`` is split). ``bytes``, ``str`` and
        ``int`` arguments take a fast path with the encoder's exact results; anything else goes
        through redis-py's encoder (``DataError`` for a ``bool`` or a ``dict``, floats as
        ``repr``, ...)."""
        name = args[0]
        encode = self.encoder.encode
        head = _COMMAND_NAMES.get(name) if type(name) is str else None
        if head is None:
            head = _split_name(name, encode)
        packed = list(head)
        encoding, errors = self.encoder.encoding, self.encoder.encoding_errors
        for arg in args[1:]:
            kind = type(arg)
            if kind is bytes:
                packed.append(arg)
            elif kind is str:
                packed.append(arg.encode(encoding, errors))
            elif kind is int:
                packed.append(repr(arg).encode())
            else:
                value = encode(arg)
                packed.append(value if type(value) is bytes else bytes(value))
        return packed

    def reply_timeout(self, packed: Sequence[bytes]) -> Optional[float]:
        """For blocking commands, how long to wait for the reply: the command's own timeout plus
        ``socket_timeout`` (so the server's "timed out" reply arrives first). None otherwise."""
        spec = _BLOCKING.get(packed[0].upper())
        if spec is None:
            return None
        where, unit = spec
        try:
            if isinstance(where, bytes):
                upper = [a.upper() for a in packed]
                if where not in upper:
                    return None
                where = upper.index(where) + 1
            wait = float(packed[where]) * unit
        except (IndexError, ValueError):
            return None  # malformed: the server will say so
        if wait < 0:
            return None
        return (wait or _FOREVER) + self.socket_timeout

    def run(self, target: Target, args: Sequence[Any], options: Dict[str, Any]) -> Any:
        """One command on ``target`` with redis-py's ``parse_response`` semantics."""
        packed = self.pack(args)
        decode = None if NEVER_DECODE in options else self.decode
        options.pop(NEVER_DECODE, None)
        try:
            response = target.execute(packed, decode, self.reply_timeout(packed))
        except redis.exceptions.ResponseError:
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise
        return self.parse(args[0], response, options)

    def parse(self, command_name: Any, response: Any, options: Dict[str, Any]) -> Any:
        """Applies the command's response callback, as redis-py's ``parse_response`` does."""
        options.pop(EMPTY_RESPONSE, None)
        options.pop("keys", None)
        callback = self.callbacks.get(command_name)  # one case-insensitive look-up, not two
        if callback is not None:
            return callback(response, **options)
        return response
