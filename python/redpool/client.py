"""``redpool.Redis``: redis-py's client (every command method, argument name and return type is
redis-py's own) with the I/O going through redpool's Rust pool instead of redis-py's sockets.

Clients created with the same settings share one pool (the core's process-wide registry);
``shared_pool=False`` gives a client its own. Creating a client never connects: connections are
opened on first use (or ``min_idle`` of them at once).
"""

from __future__ import annotations

import threading
import traceback
import weakref
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple

import redis
import redis.asyncio
import redis.client
from redis.exceptions import ResponseError, WatchError
from redis.utils import safe_str

from . import _native, _options
from ._commands import FastCommands
from ._events import Event
from ._protocol import Codec, Command, Target
from .exceptions import ConfigError, ExecAbortError

__all__ = ["Redis", "StrictRedis", "Pipeline", "PooledConnection", "get_client"]

#: A native call a pipeline asks for: the name of a target's method and its arguments.
Request = Tuple[str, Tuple[Any, ...]]


class _PoolView:
    """Stands where redis-py keeps its ``ConnectionPool``: for the code of redis-py's that reads
    it (the encoder, ``connection_kwargs``), for ``disconnect()``, and to share the native pool
    with another client (``Redis(connection_pool=r.connection_pool)``, ``r.client()``). It hands
    out no connections: the pool is native."""

    def __init__(self, pool: _native.Pool, settings: _options.Settings, codec: Codec) -> None:
        self._pool = pool
        self._settings = settings
        self._codec = codec
        # The protocol the pool speaks, however it was set (argument, URL, REDIS_PROTOCOL).
        self.connection_kwargs: Dict[str, Any] = {**settings.connection_kwargs,
                                                  "protocol": pool.protocol}

    @property
    def max_connections(self) -> int:
        """The pool's current cap (it follows ``resize()``)."""
        return self._pool.max_connections

    def get_encoder(self) -> Any:
        return self._codec.encoder

    def get_protocol(self) -> int:
        """The protocol connections speak (2 or 3), however it was set."""
        return self._pool.protocol

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "redpool's connections are native: use the client's commands, pipeline(), "
            "pipeline().watch(), client() or acquire() instead of taking a connection from the pool"
        )

    def disconnect(self, inuse_connections: bool = True) -> None:
        """Closes the pool's connections, as redis-py's: idle ones now, the ones in use when
        they are returned (never under a caller, whatever ``inuse_connections`` says). The pool
        stays usable and opens new connections on demand."""
        self._pool.disconnect()

    def close(self) -> None:
        """Same as :meth:`disconnect`, as in redis-py."""
        self.disconnect()

    def reset(self) -> None:
        """Same as :meth:`disconnect`."""
        self.disconnect()

    def __repr__(self) -> str:
        return f"<redpool pool {self._pool.url} ({'shared' if self._pool.shared else 'dedicated'})>"


#: The native pool standing for each redis-py pool object given as ``connection_pool=`` (one
#: per object, as redis-py has one pool per object), alive as long as that object.
_ADOPTED: "weakref.WeakKeyDictionary[Any, Tuple[_native.Pool, _options.Settings]]" = (
    weakref.WeakKeyDictionary()
)


def _native_pool_of(connection_pool: Any) -> Tuple[_native.Pool, _options.Settings]:
    """The native pool and settings for ``connection_pool=``: a redpool client's
    ``connection_pool`` (the same pool), or a ``redis.ConnectionPool`` /
    ``BlockingConnectionPool`` (its settings mapped onto a dedicated native pool, one per
    object)."""
    if isinstance(connection_pool, _PoolView):
        return connection_pool._pool, connection_pool._settings
    if not isinstance(connection_pool, (redis.ConnectionPool, redis.asyncio.ConnectionPool)):
        raise ConfigError(
            "connection_pool must be a redis.ConnectionPool or BlockingConnectionPool (sync or "
            f"asyncio) or a redpool client's connection_pool, not {type(connection_pool).__name__}"
        )
    adopted = _ADOPTED.get(connection_pool)
    if adopted is None:
        settings = _options.translate_pool(connection_pool)
        adopted = _ADOPTED.setdefault(connection_pool,
                                      (_native.Pool(**settings.native_args()), settings))
    return adopted


def checkout_holder(pool: _native.Pool) -> Optional[Tuple[str, str]]:
    """Who is checking a connection out of ``pool`` for a session (the Python thread's name and
    stack), named in leak reports; None when leak detection is off, so nothing is captured."""
    if pool.leak_detection_threshold is None:
        return None
    # Without this function's own frame.
    return threading.current_thread().name, "".join(traceback.format_stack()[:-1])


class PoolMethods:
    """The pool surface, common to the sync and asyncio clients."""

    _pool: _native.Pool

    @property
    def shared_pool(self) -> bool:
        """True when the client uses the process-wide pool of its settings."""
        return self._pool.shared

    def pool_stats(self) -> Dict[str, Any]:
        """Gauges (``open``, ``idle``, ``in_use``, ``waiting``, ...) and counters since the pool
        was created (``acquires``, ``commands``, ``errors`` by kind, ``wait_time_max``, ...)."""
        return self._pool.stats()

    def breaker_state(self) -> str:
        """The circuit breaker's state: ``"closed"``, ``"open"`` or ``"half_open"``."""
        return self._pool.breaker_state()

    def metrics(self) -> str:
        """This client's pool metrics in the Prometheus text format (``redpool.metrics()`` has
        every pool of the process). Metric names are listed in the README."""
        return self._pool.metrics_text()

    def resize(self, max_connections: int, min_idle: Optional[int] = None) -> None:
        """Changes the pool's ``max_connections`` and ``min_idle`` at run time (``min_idle=None``
        keeps the current one, lowered to ``max_connections`` if above it). Safe under load:
        growing serves waiting callers at once; shrinking closes idle connections above the new
        cap now and busy ones as they are returned. The pool is shared by every client of the
        same settings, so they are all resized."""
        _options.check_type("max_connections", max_connections, int)
        if min_idle is not None:
            _options.check_type("min_idle", min_idle, int)
        self._pool.resize(max_connections, min_idle)

    def add_event_listener(self, listener: Callable[[Event], Any]) -> int:
        """Calls ``listener(event)`` for every event of the pool (see :mod:`redpool._events`);
        returns an id for :meth:`remove_event_listener`. May be called from inside a listener."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__}")
        return self._pool.subscribe(listener)

    def remove_event_listener(self, listener_id: int) -> bool:
        """Removes a listener; False when the id is unknown. May be called from inside a
        listener, the one being removed included."""
        return self._pool.unsubscribe(listener_id)


class Redis(PoolMethods, FastCommands, redis.Redis):
    """A redis-py compatible client on redpool's pool.

    Takes redis-py's arguments (``host``, ``port``, ``db``, ``password``, ``username``,
    ``socket_timeout``, ``socket_connect_timeout``, ``socket_keepalive``,
    ``socket_keepalive_options``, ``health_check_interval``, ``max_connections``, ``retry``,
    ``decode_responses``, ``encoding``, ``client_name``, ``ssl``, ``ssl_ca_certs``,
    ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``, ``unix_socket_path``, ``protocol`` (3:
    RESP3), ``legacy_responses``, ``connection_pool`` (a redis-py pool object, see
    :meth:`from_pool`), ``single_connection_client``) and redpool's:
    ``shared_pool`` (default True), ``acquire_timeout``, ``min_idle`` and ``options`` (any core
    knob by name, e.g. ``{"breaker_failure_threshold": 3}``). Unset arguments take redpool's
    defaults, listed in the README.
    """

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None, db: Optional[int] = None,
                 password: Optional[str] = None, *, connection_pool: Any = None,
                 single_connection_client: bool = False, **kwargs: Any) -> None:
        if connection_pool is not None:
            # As in redis-py, the pool's settings are the client's: the other arguments are unused.
            pool, settings = _native_pool_of(connection_pool)
            owned = False
        else:
            settings = _options.translate(host=host, port=port, db=db, password=password, **kwargs)
            pool, owned = _native.Pool(**settings.native_args()), True
        self._attach(pool, settings, owned, single_connection_client)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "Redis":
        """A client for ``redis://[[user]:password@]host[:port][/db][?option=value...]``,
        ``rediss://...`` or ``unix:///path?db=N``. Query options are redis-py's
        (``socket_timeout``, ``decode_responses``, ...) or any core knob; they win over
        keyword arguments, as in redis-py."""
        single = kwargs.pop("single_connection_client", False)
        if "connection_pool" in kwargs:
            raise ConfigError("from_url() takes no connection_pool: use Redis(connection_pool=...)")
        url = _options.split_url(url, kwargs)
        settings = _options.translate(url=url, **kwargs)
        client = cls.__new__(cls)
        client._attach(_native.Pool(**settings.native_args()), settings, True, single)
        return client

    @classmethod
    def from_pool(cls, connection_pool: Any) -> "Redis":
        """A client that owns ``connection_pool`` (a ``redis.ConnectionPool``, a
        ``BlockingConnectionPool`` or a redpool client's ``connection_pool``), as in redis-py:
        :meth:`close` disconnects the pool's connections."""
        client = cls(connection_pool=connection_pool)
        client.auto_close_connection_pool = True
        return client

    @classmethod
    def from_env(cls, *, shared_pool: bool = True, decode_responses: bool = False,
                 encoding: str = "utf-8", encoding_errors: str = "strict") -> "Redis":
        """A client configured from the environment: ``REDIS_URL``, or ``REDIS_HOST``,
        ``REDIS_PORT``, ``REDIS_DB``, ``REDIS_USERNAME``, ``REDIS_PASSWORD``; then any knob as
        ``REDIS_<KNOB>`` (``REDIS_MAX_CONNECTIONS``, ``REDIS_SOCKET_TIMEOUT``, ...)."""
        settings = _options.translate(decode_responses=decode_responses, encoding=encoding,
                                      encoding_errors=encoding_errors, shared_pool=shared_pool)
        client = cls.__new__(cls)
        client._attach(_native.Pool.from_env(shared_pool), settings, True, False)
        return client

    def _attach(self, pool: _native.Pool, settings: _options.Settings, owned: bool,
                single_connection_client: Any) -> None:
        """Sets the client up on ``pool``; ``owned`` when the client made that pool itself."""
        self._pool = pool
        self._owns_pool = owned
        # The shapes follow the protocol the pool speaks, whether it came from the argument, the
        # URL or REDIS_PROTOCOL.
        self._codec = Codec(settings.encoding, settings.encoding_errors,
                            settings.decode_responses, pool.protocol, settings.legacy_responses)
        self.connection_pool = _PoolView(pool, settings, self._codec)
        self.response_callbacks = self._codec.callbacks
        self.connection = None
        # Closing the client closes a dedicated pool it made; a shared one, or one given as
        # connection_pool=, stays (from_pool() asks for the given one to be disconnected).
        self.auto_close_connection_pool = owned and not pool.shared
        self._single_connection = _options.flag("single_connection_client",
                                                single_connection_client)
        #: The single-connection client's connection, checked out on first use.
        self._single: Optional[_native.Connection] = None
        self._single_lock = threading.Lock()

    def __repr__(self) -> str:
        kind = "shared" if self._pool.shared else "dedicated"
        return f"<{type(self).__module__}.{type(self).__name__}({self._pool.url}, {kind} pool)>"

    def __del__(self) -> None:
        # A dedicated pool closes when its last handle is garbage collected, and a
        # single-connection client's connection goes back to the pool with its handle.
        pass

    # Commands ---------------------------------------------------------------------------------

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Runs one command through the pool (with its breaker and safe retries) and returns
        redis-py's value for it; on a single-connection client, on its connection."""
        if self._single_connection:
            return self._run_on_single(args, options)
        return self._codec.run(self._pool, args, options)

    def _run_on_single(self, args: Sequence[Any], options: Dict[str, Any]) -> Any:
        """One command on the single-connection client's connection (one caller at a time). A
        connection error, timeout or protocol error closes that connection: the next command
        checks out a new one, as redis-py's client reconnects (session state set on the old one
        is gone). An authentication error is the server's answer (a refused AUTH, NOAUTH) on a
        connection that still works, which is kept."""
        with self._single_lock:
            conn = self._single
            if conn is None:
                conn = self._single = self._pool.acquire(None, checkout_holder(self._pool))
            try:
                return self._codec.run(conn, args, options)
            except redis.exceptions.AuthenticationError:
                raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.InvalidResponse):
                self._single = None
                conn.discard()
                raise

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> "Pipeline":
        """A pipeline: commands are queued and sent in one round trip by ``execute()``; with
        ``transaction=True`` (the default) inside MULTI/EXEC."""
        return Pipeline(self, transaction, shard_hint)

    def acquire(self, timeout: Optional[float] = None, priority: str = "normal") -> "PooledConnection":
        """Checks out one connection of the pool for this caller alone, as a context manager::

            with r.acquire(timeout=0.5, priority="high") as conn:
                conn.set("k", "v")
                conn.get("k")

        It is returned to the pool when the block ends (closed instead when the block ended with
        a connection error or timeout), or by ``conn.release()``. ``timeout`` is how long to wait
        for a free connection in seconds (None: ``acquire_timeout``; ``0`` never waits for another
        caller's connection and raises ``PoolTimeoutError`` at once when none is free and the pool
        is at its cap); ``priority`` is ``"normal"`` or
        ``"high"`` (served before every normal waiter), anything else a ``ConfigError``."""
        conn = self._pool.acquire(timeout, checkout_holder(self._pool), priority)
        return PooledConnection(self, conn)

    def pubsub(self, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "redpool does not offer pub/sub yet (it needs a dedicated, unpooled connection); "
            "use a redis.Redis client for subscriptions"
        )

    def monitor(self) -> Any:
        """Not offered yet: redis-py's ``Monitor`` needs a dedicated connection read as a
        stream. Raises ``ConfigError`` (as MONITOR sent as a command on the shared pool does)."""
        raise ConfigError(
            "MONITOR is not offered by redpool yet (monitor() needs a connection read as a "
            "stream); use a redis.Redis client for it"
        )

    def client(self) -> "Redis":
        """A client of the same pool that runs every command on one connection of its own
        (checked out on first use, returned by :meth:`close`), as redis-py's: session commands
        (``SELECT``, ``CLIENT SETNAME``, ...) work there and last until it is closed. Its
        pipelines take their own connections from the pool, as in redis-py."""
        return type(self)(connection_pool=self.connection_pool, single_connection_client=True)

    def set_retry(self, retry: Any) -> None:
        raise ConfigError("retries are set when the client is created (retry=Retry(...))")

    # Pool -------------------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """PINGs the server (and reads INFO) and reports ``status`` (``"healthy"``,
        ``"degraded"``, ``"unhealthy"``), the ``reasons``, ``ping_latency`` (seconds),
        ``breaker``, selected ``server_info`` fields and the pool ``stats``. Never raises for a
        down server: that is part of the report."""
        return self._pool.health()

    def close(self) -> None:
        """Releases the client: a single-connection client returns its connection (closed
        instead if a session command changed it); a dedicated pool made by this client
        (``shared_pool=False``) is closed; a pool given to :meth:`from_pool` is disconnected; a
        shared pool, or one given as ``connection_pool=``, stays open for the other clients (use
        :meth:`close_pool` to close it anyway)."""
        with self._single_lock:
            conn, self._single = self._single, None
        if conn is not None:
            conn.release()
        if self.auto_close_connection_pool:
            if self._owns_pool:
                self._pool.close(0)
            else:
                self._pool.disconnect()

    def close_pool(self, grace: float = 5.0) -> None:
        """Closes the pool, shared or not: new calls fail with ``PoolClosedError``; waits up to
        ``grace`` seconds for connections in use, then shuts them down. A later client with the
        same settings gets a new shared pool."""
        self._pool.close(grace)


StrictRedis = Redis


class PooledConnection(FastCommands, redis.Redis):
    """One connection checked out of a client's pool (:meth:`Redis.acquire`): redis-py's command
    methods, with the client's decoding and response callbacks, all run on this one connection
    (no retries: its state matters). ``pipeline()`` runs on it too. Use it from one thread at a
    time. ``release()`` returns it to the pool, which keeps it only if it is clean; ``discard()``
    closes it; both are idempotent, and a command after them raises ``PoolClosedError``."""

    def __init__(self, client: Redis, conn: _native.Connection) -> None:
        self._client = client
        self._conn = conn
        self.connection_pool = client.connection_pool
        self.response_callbacks = client.response_callbacks
        self.connection = None
        self.auto_close_connection_pool = False

    def __repr__(self) -> str:
        state = "released" if self._conn.released else "checked out"
        return f"<{type(self).__module__}.{type(self).__name__}({self._client._pool.url}, {state})>"

    def __del__(self) -> None:
        # Garbage collection of the native connection returns it to the pool.
        pass

    def __enter__(self) -> "PooledConnection":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if isinstance(exc_value, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            self.discard()
        else:
            self.release()

    @property
    def released(self) -> bool:
        """True once released or discarded."""
        return self._conn.released

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Runs one command on this connection and returns redis-py's value for it."""
        return self._client._codec.run(self._conn, args, options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> "Pipeline":
        """A pipeline (``transaction=True``: MULTI/EXEC, ``watch()`` first for optimistic
        locking) sent on this connection; it stays checked out afterwards."""
        return Pipeline(self._client, transaction, shard_hint, self._conn)

    def release(self) -> None:
        """Returns the connection to the pool (an open WATCH or MULTI is ended first)."""
        self._conn.release()

    def discard(self) -> None:
        """Closes the connection instead of returning it."""
        self._conn.discard()

    def close(self) -> None:
        """Same as :meth:`release`."""
        self.release()


class Pipeline(FastCommands, redis.client.Pipeline):
    """redis-py's pipeline on redpool's pool.

    Queued commands are sent in one round trip: with ``transaction=True`` inside MULTI/EXEC (a
    WATCH conflict raises ``WatchError``), otherwise as a plain pipeline. After ``watch()`` the
    pipeline holds one checked-out connection and runs commands immediately until ``multi()``,
    as in redis-py. Not thread-safe (like redis-py's); use one per thread.

    That WATCH session and :meth:`Redis.acquire` are the package's only checkouts that outlive a
    call, so they are the only places a connection can leak: with ``leak_detection_threshold``
    set, one held longer is logged with the thread and Python stack that called ``watch()`` (or
    ``acquire()``). ``execute()``, ``reset()``, leaving a ``with`` block or garbage collection
    returns it; a pipeline of a :class:`PooledConnection` leaves its connection to it.
    """

    def __init__(self, client: Redis, transaction: bool, shard_hint: Any = None,
                 conn: Optional[_native.Connection] = None) -> None:
        self._client = client
        self._conn: Optional[_native.Connection] = conn
        #: The connection of a :class:`PooledConnection` this pipeline runs on: its owner
        #: releases it, the pipeline never does.
        self._borrowed = conn is not None
        self.connection_pool = client.connection_pool
        self.connection = None
        self.response_callbacks = client.response_callbacks
        self.transaction = transaction
        self.shard_hint = shard_hint
        self.watching = False
        self.command_stack: List[Command] = []
        self.scripts: set = set()
        self.explicit_transaction = False

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}({self._client._pool.url})>"

    def __del__(self) -> None:
        try:
            self.reset()
        except Exception:
            pass

    def reset(self) -> None:
        """Forgets queued commands and returns the watching connection (the pool UNWATCHes it);
        on a :class:`PooledConnection`'s connection, which stays checked out, sends UNWATCH."""
        watching = self.watching
        self.command_stack = []
        self.scripts = set()
        self.watching = False
        self.explicit_transaction = False
        conn = self._conn
        if self._borrowed:
            if watching and conn is not None and not conn.released:
                conn.execute([b"UNWATCH"])
            return
        self._conn = None
        if conn is not None:
            conn.release()

    def _target(self) -> Target:
        return self._conn if self._conn is not None else self._client._pool

    def _lost(self, error: Exception) -> None:
        """A connection error while holding a connection: drop it; while WATCHing, the watch is
        gone with it, which redis-py reports as a ``WatchError``."""
        conn = self._conn
        if not self._borrowed:
            self._conn = None
        if conn is not None:
            conn.discard()
        if self.watching:
            self.reset()
            raise WatchError(
                f"A {type(error).__name__} occurred while watching one or more keys"
            ) from error

    def _checkout(self, holder: Optional[Tuple[str, str]] = None) -> _native.Connection:
        """The connection of a WATCH session, checked out unless the pipeline has one.
        ``holder`` (thread, stack) names who took it in leak reports; by default the calling
        thread, when leak detection is on."""
        if self._conn is None:
            pool = self._client._pool
            self._conn = pool.acquire(holder=holder or checkout_holder(pool))
        return self._conn

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """redis-py's: runs the command now while WATCHing before ``multi()``, else queues it
        (``pipeline_execute_command`` inlined, one call less per queued command)."""
        if (self.watching or args[0] == "WATCH") and not self.explicit_transaction:
            return self.immediate_execute_command(*args, **options)
        self.command_stack.append((args, options))
        return self

    def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        """Runs a command now on the pipeline's connection (WATCH, and reads before MULTI)."""
        conn = self._checkout()
        try:
            result = self._client._codec.run(conn, args, options)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            self._lost(error)
            raise
        name = str(args[0]).upper()
        if name in self.UNWATCH_COMMANDS:
            self.watching = False
        elif name == "WATCH":
            self.watching = True
        return result

    def execute(self, raise_on_error: bool = True) -> List[Any]:
        """Sends the queued commands; returns one value per command (server errors raise the
        first one, or stay in place as exceptions with ``raise_on_error=False``)."""
        steps = self._execute_steps(raise_on_error)
        try:
            request = next(steps)
            while True:
                method, arguments = request
                try:
                    reply = getattr(self._target(), method)(*arguments)
                except BaseException as error:
                    request = steps.throw(error)
                else:
                    request = steps.send(reply)
        except StopIteration as stop:
            return stop.value

    def _execute_steps(self, raise_on_error: bool) -> Generator[Request, Any, List[Any]]:
        """What :meth:`execute` does, without its I/O: yields the native call to make (the name
        of a ``pipeline`` or ``transaction`` method of the target, and its arguments) and takes
        its reply, or its exception, back; returns the results. The sync pipeline makes the call
        itself, the asyncio one submits it (``redpool.asyncio``)."""
        stack = self.command_stack
        if not stack and not self.watching:
            return []
        try:
            if self.scripts:
                self.load_scripts()
            if self.transaction or self.explicit_transaction:
                return (yield from self._run_transaction(stack, raise_on_error))
            return (yield from self._run_pipeline(stack, raise_on_error))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            self._lost(error)
            raise
        finally:
            self.reset()

    def _run_pipeline(self, stack: Sequence[Command],
                      raise_on_error: bool) -> Generator[Request, Any, List[Any]]:
        codec = self._client._codec
        replies = yield ("pipeline", (codec.native.pack(stack), codec.decode))
        # redis-py's values, in native code: callbacks applied, a ConnectionError raised, an
        # error reply replaced by the command's EMPTY_RESPONSE (mget([]) gets its default).
        results, first_error = codec.native.shape(stack, replies, False, raise_on_error)
        if raise_on_error and first_error is not None:
            self.raise_first_error(stack, results)
        return results

    def annotate_exception(self, exception: BaseException, number: int, command: Any) -> None:
        """redis-py's annotation (``Command # 2 (ZREM b) of pipeline caused error: ...``), with
        the command's secrets (passwords of AUTH, HELLO, MIGRATE, ACL SETUSER, CONFIG SET) shown
        as ``<redacted>``: errors never carry a secret."""
        super().annotate_exception(exception, number, redacted(command))

    def raise_first_error(self, commands: Sequence[Command], response: Sequence[Any]) -> None:
        """Raises the first error among the replies, annotated as redis-py annotates it
        (``Command # 2 (ZREM b) of pipeline caused error: ...``): any error, not only a
        ``ResponseError`` (``LOADING`` or ``BUSY`` in an EXEC reply too), so that
        ``raise_on_error=True`` never returns one as a value."""
        for i, reply in enumerate(response):
            if isinstance(reply, Exception):
                self.annotate_exception(reply, i + 1, commands[i][0])
                raise reply

    def _rejected_command(self, error: ExecAbortError, stack: Sequence[Command],
                          sent: Sequence[Command]) -> BaseException:
        """The core's EXECABORT for a transaction whose command the server rejected while
        queueing, as redis-py raises it: that command's own error (its class from its code),
        annotated with its number and arguments. Any other EXECABORT is returned as it is."""
        if not error.rejected_commands:
            return error
        index, rejected = error.rejected_commands[0]  # a position among `sent`, by the core
        # Numbered among all the queued commands, as redis-py numbers them.
        number = next(i for i, command in enumerate(stack) if command is sent[index]) + 1
        self.annotate_exception(rejected, number, sent[index][0])
        return rejected

    def _run_transaction(self, stack: Sequence[Command],
                         raise_on_error: bool) -> Generator[Request, Any, List[Any]]:
        codec = self._client._codec
        sent = [command for command in stack if redis.client.EMPTY_RESPONSE not in command[1]]
        try:
            replies = yield ("transaction", (codec.native.pack(sent), codec.decode))
        except ExecAbortError as error:
            raise self._rejected_command(error, stack, sent) from None
        self.watching = False
        if replies is None:
            raise WatchError("Watched variable changed.")
        if len(sent) != len(stack):
            for i, (_, options) in enumerate(stack):
                if redis.client.EMPTY_RESPONSE in options:
                    replies.insert(i, options[redis.client.EMPTY_RESPONSE])
        if len(replies) != len(stack):
            raise ResponseError("Wrong number of response items from pipeline execution")
        # With raise_on_error, the first error is raised before any callback runs.
        results, first_error = codec.native.shape(stack, replies, True, raise_on_error)
        if raise_on_error and first_error is not None:
            self.raise_first_error(stack, results)
        return results


def redacted(command: Sequence[Any]) -> List[Any]:
    """``command``'s words with every password replaced by ``<redacted>``, for messages. Which
    words are passwords is the core's rule (``_native.secret_arguments``), as in Node. A name of
    several words (redis-py's ``config_set`` sends ``"CONFIG SET"``) is split first, as
    redis-py's ``pack_command`` splits it for the server."""
    words = list(command)
    if words and isinstance(words[0], (str, bytes)):
        words[:1] = words[0].split()
    shown: List[Any] = [safe_str(word) for word in words]
    for i in _native.secret_arguments([word.encode("utf-8", "surrogatepass") for word in shown]):
        shown[i] = "<redacted>"
    return shown


_default_clients: Dict[bool, Redis] = {}


def get_client(decode_responses: bool = False) -> Redis:
    """The process's default client, configured from the environment (see
    :meth:`Redis.from_env`) and created on first use: every caller shares it and its pool."""
    client = _default_clients.get(decode_responses)
    if client is None:
        # Two threads racing here create two clients of the one shared pool; one is kept.
        client = _default_clients.setdefault(
            decode_responses, Redis.from_env(decode_responses=decode_responses)
        )
    return client
