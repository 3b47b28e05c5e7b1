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

def _response_callbacks(protocol: int, legacy_responses: bool) -> Dict[str, Callable[..., Any]]:
    """redis-py's response callbacks for replies in ``protocol`` shaped as ``legacy_responses``
    says, taken from a client that never connects (redis-py creates connections lazily), so they
    match the installed redis-py version."""
    # redis-py before 8 has neither the argument nor unified shapes.
    shapes: Dict[str, Any] = {} if legacy_responses else {"legacy_responses": False}
    client = _REDIS_PY(protocol=protocol, **shapes)
    try:
        return dict(client.response_callbacks)
    finally:
        client.close()


#: redis-py's client class, as imported (code that swaps ``redis.Redis`` for redpool's, such as
#: the redis-py test suite's plugin, does not change where the callbacks come from).
_REDIS_PY = redis.Redis

#: The callbacks by (wire protocol, legacy shapes), made on first use.
_CALLBACKS: Dict[Tuple[int, bool], Dict[str, Callable[..., Any]]] = {}


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
                 protocol: int = 2, legacy_responses: bool = True) -> None:
        self.encoder = Encoder(encoding, encoding_errors, decode_responses)
        #: What the native module decodes replies with (None: keep bytes).
        self.decode: Optional[Tuple[str, str]] = (
            (encoding, encoding_errors) if decode_responses else None
        )
        key = (protocol, legacy_responses)
        if key not in _CALLBACKS:
            _CALLBACKS[key] = _response_callbacks(protocol, legacy_responses)
        self.callbacks: MutableMapping[str, Callable[..., Any]] = CaseInsensitiveDict(_CALLBACKS[key])
        #: Pipelines' encoding and reply shaping in native code, by the same rules as
        #: :meth:`pack` and :meth:`parse` (and through ``encoder`` and ``callbacks``).
        self.native = _native.Codec(
            self.encoder, self.callbacks, (NEVER_DECODE, EMPTY_RESPONSE),
            (redis.exceptions.ConnectionError, redis.exceptions.ResponseError),
        )

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

    def request(self, args: Sequence[Any],
                options: Dict[str, Any]) -> Tuple[List[bytes], Optional[Tuple[str, str]]]:
        """The packed command and how the native module decodes its reply (``NEVER_DECODE``
        taken out of ``options``): the arguments of a native ``execute``."""
        decode = None if NEVER_DECODE in options else self.decode
        options.pop(NEVER_DECODE, None)
        return self.pack(args), decode

    def run(self, target: Target, args: Sequence[Any], options: Dict[str, Any]) -> Any:
        """One command on ``target`` with redis-py's ``parse_response`` semantics."""
        packed, decode = self.request(args, options)
        try:
            # A blocking command's reply timeout is the core's (blocking_reply_timeout).
            response = target.execute(packed, decode)
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
