"""Type stubs of ``redpool._native``, the PyO3 extension module (``bindings/python``).

Use the ``redpool`` package instead: it builds on these classes."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, final

__all__ = ["Codec", "Commands", "Completions", "Connection", "Pool", "metrics_text", "secret_arguments", "__version__"]

__version__: str

#: ``(encoding, errors)``: decode bulk and status replies to ``str``; None keeps ``bytes``.
_Decode = Optional[Tuple[str, str]]
_Args = Sequence[bytes]

@final
class Commands:
    """A pipeline's commands encoded by ``Codec.pack``, ready to send (any number of times)."""

    def __len__(self) -> int: ...

@final
class Codec:
    """A client's encoding and response callbacks, for pipelines: redis-py's rules in native
    code (other argument types go through ``encoder``)."""

    def __new__(
        cls,
        encoder: Any,
        callbacks: Any,
        markers: Tuple[str, str],
        errors: Tuple[type, type],
    ) -> "Codec":
        """``markers``: redis-py's ``(NEVER_DECODE, EMPTY_RESPONSE)``; ``errors``: its
        ``(ConnectionError, ResponseError)``."""
    def pack(self, stack: Sequence[Tuple[Sequence[Any], Dict[str, Any]]]) -> Commands:
        """Encodes queued ``(args, options)`` pairs as redis-py's ``pack_command`` would."""
    def shape(
        self,
        stack: List[Tuple[Sequence[Any], Dict[str, Any]]],
        replies: List[Any],
        transaction: bool,
        raise_on_error: bool,
    ) -> Tuple[List[Any], Optional[int]]:
        """redis-py's values for the replies, and the index of the first error (or None)."""

@final
class Pool:
    """A pool of connections to one Redis server, safe to share between threads."""

    def __new__(
        cls,
        url: Optional[str] = None,
        *,
        unix_socket_path: Optional[str] = None,
        tls: bool = False,
        settings: List[Tuple[str, str, str]] = ...,
        shared: bool = True,
    ) -> "Pool": ...
    @staticmethod
    def from_env(shared: bool = True) -> "Pool": ...
    def execute(self, args: _Args, decode: _Decode = None, timeout: Optional[float] = None) -> Any: ...
    def pipeline(self, commands: Commands, decode: _Decode = None) -> List[Any]: ...
    def transaction(self, commands: Commands, decode: _Decode = None) -> Optional[List[Any]]: ...
    def submit_execute(
        self, completions: "Completions", token: int, args: _Args, decode: _Decode = None,
        timeout: Optional[float] = None,
    ) -> bool:
        """``execute`` without waiting: the result goes to ``completions`` under ``token``.
        Without ``timeout`` an ordinary command joins the queue's next batch; True when it is
        the first since the last ``flush()``, which the caller then arranges."""
    def submit_pipeline(
        self, completions: "Completions", token: int, commands: Commands, decode: _Decode = None,
    ) -> None: ...
    def submit_transaction(
        self, completions: "Completions", token: int, commands: Commands, decode: _Decode = None,
    ) -> None: ...
    def acquire(
        self,
        timeout: Optional[float] = None,
        holder: Optional[Tuple[str, str]] = None,
        priority: str = "normal",
    ) -> "Connection":
        """``timeout`` in seconds (None: ``acquire_timeout``; 0: never wait for another caller's connection); ``priority``
        ``"normal"`` or ``"high"``; ``holder``: ``(thread, stack)`` named in leak reports (used
        only with leak detection)."""
    def stats(self) -> Dict[str, Any]: ...
    def health(self) -> Dict[str, Any]:
        """``status``, ``reasons``, ..., ``stats`` and ``sizing`` (``utilization``,
        ``arrival_rate``, ``mean_hold_time``, ``suggested_max_connections``, ...)."""
    def metrics_text(self) -> str:
        """This pool's metrics in the Prometheus text format."""
    def resize(self, max_connections: int, min_idle: Optional[int] = None) -> None:
        """Changes ``max_connections`` and ``min_idle`` at run time (None: keep ``min_idle``)."""
    def disconnect(self) -> None:
        """Closes every connection (idle now, checked-out when returned); the pool stays open."""
    def breaker_state(self) -> str: ...
    def subscribe(self, callback: Callable[[Dict[str, Any]], Any]) -> int: ...
    def unsubscribe(self, id: int) -> bool: ...
    def close(self, grace: float = 5.0) -> None: ...
    def same_pool(self, other: "Pool") -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def shared(self) -> bool: ...
    @property
    def url(self) -> str: ...
    @property
    def protocol(self) -> int:
        """2 or 3, however it was set (argument, URL, environment)."""
    @property
    def max_connections(self) -> int: ...
    @property
    def leak_detection_threshold(self) -> Optional[float]: ...
    @property
    def name(self) -> str: ...
    @property
    def socket_timeout(self) -> float: ...

def metrics_text() -> str:
    """The metrics of every open pool of the process in the Prometheus text format."""

def secret_arguments(words: Sequence[bytes]) -> List[int]:
    """The positions (0 is the name) of a command's words that are passwords (the core's rule)."""

@final
class Connection:
    """A checked-out connection; ``release()`` returns it, ``discard()`` closes it."""

    def execute(self, args: _Args, decode: _Decode = None, timeout: Optional[float] = None) -> Any: ...
    def pipeline(self, commands: Commands, decode: _Decode = None) -> List[Any]: ...
    def transaction(self, commands: Commands, decode: _Decode = None) -> Optional[List[Any]]: ...
    def release(self) -> None: ...
    def discard(self) -> None: ...
    @property
    def released(self) -> bool: ...
    def __enter__(self) -> "Connection": ...
    def __exit__(self, *exc: Any) -> None: ...


@final
class Completions:
    """The completion queue of one event loop: ``fileno()`` becomes readable when submitted
    calls have finished; ``drain()`` returns them all as ``(token, ok, value)``, ``value`` the
    reply, or the exception instance when ``ok`` is false."""

    def __new__(cls) -> "Completions": ...
    def fileno(self) -> int: ...
    def drain(self) -> List[Tuple[int, bool, Any]]: ...
    def flush(self) -> None:
        """Sends every pending batch, each as one pipeline on a worker thread."""
