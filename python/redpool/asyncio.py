"""``redpool.asyncio.Redis``: redis-py's asyncio client (``redis.asyncio.Redis``) on redpool's
pool, with the same methods as awaitables.

Commands, pipelines and transactions never block the event loop and make no thread hop of
Python code: the loop's thread packs the command, hands it to the native pool without waiting
(``Pool.submit_*``) and awaits a future. The call runs on the core's worker threads without the
GIL; its result goes to a native completion queue of the event loop (one per loop), whose
descriptor the loop watches (``add_reader``); one reader callback turns every finished call into
Python values and settles the futures, and redis-py's response callbacks then run on the loop's
thread, as in redis.asyncio.

Commands are auto-pipelined: the ordinary commands that the tasks of one loop iteration send
through one pool go out together (the core's ``Pool::execute_batch``: one pipeline, one
connection, one round trip, one worker wake-up, at most 512 commands), and each settles from its
own reply; a server error fails its own command only. A blocking command (BLPOP, XREAD BLOCK,
...), a command with its own timeout and one that affects the connection (QUIT) go alone.

That also makes it cancellation-safe by construction: cancelling an await abandons the future,
while the call itself finishes on its thread and the pool takes its connection back only after
the reply was read completely (its result is dropped when the queue is drained). A cancelled
command can therefore never leave an unread reply for the next caller (the redis-py
CVE-2023-28858/28859 scenario); it may still have been applied by the server, as with any client.

Checked-out connections (``acquire()``, a WATCHing pipeline, a single-connection client),
pipelines with scripts and the rare calls (health, close) run the sync code on a worker thread of
an executor (a shared pool of up to :data:`MAX_WORKERS` threads), as do all calls on an event loop
without ``add_reader`` (Windows' proactor loop).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Generator, List, Optional, TypeVar, Union

import redis.asyncio
import redis.asyncio.client
from redis.client import EMPTY_RESPONSE

from . import _native
from . import client as _sync
from ._commands import FastCommands
from .client import PoolMethods

__all__ = ["Redis", "StrictRedis", "Pipeline", "PooledConnection", "get_client", "MAX_WORKERS"]

#: Threads that run the sync calls of asyncio clients (checkouts, health, close; shared by all of
#: them). A call waiting for a connection or a reply occupies one; further calls queue.
MAX_WORKERS = 64

_T = TypeVar("_T")
_executor: Optional[ThreadPoolExecutor] = None
#: Creates the executor once however many threads ask at the same time (reset in a forked child).
_executor_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    global _executor
    executor = _executor
    if executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="redpool-asyncio")
            executor = _executor
    return executor


class _LoopCalls:
    """The native completion queue of one event loop and the futures of its calls in flight.
    Used only on the loop's thread. Only the loop holds it (through its reader), so it goes
    away, with its descriptor, when the loop closes: it holds no reference to the loop itself,
    and :data:`_per_loop` only a weak one."""

    __slots__ = ("native", "waiting", "tokens", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.native = _native.Completions()
        #: Futures by token, until their call's result is drained or their await cancelled.
        self.waiting: Dict[int, "asyncio.Future[Any]"] = {}
        self.tokens = itertools.count()
        loop.add_reader(self.native.fileno(), self.drain)

    def drain(self) -> None:
        """The loop's reader: settles the future of every finished call. A call whose await
        was cancelled has no future any more: its result is dropped. Never raises."""
        waiting = self.waiting
        try:
            for token, ok, value in self.native.drain():
                future = waiting.pop(token, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except Exception as error:  # pragma: no cover - a bug; the loop must keep running
            try:
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "redpool: draining completed calls failed", "exception": error})
            except Exception:
                pass


#: The completion queue of each event loop, both weakly held (the loop's reader holds the queue):
#: a closed loop takes its queue and descriptor with it. None: the loop has no ``add_reader``.
_per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Optional[weakref.ref[_LoopCalls]]]" = (
    weakref.WeakKeyDictionary()
)
#: Creates one queue per loop however many threads ask (reset in a forked child).
_per_loop_lock = threading.Lock()


def _calls(loop: asyncio.AbstractEventLoop) -> Optional[_LoopCalls]:
    """The completion queue of ``loop``, made and registered on first use; None when calls on
    this loop go through the executor instead."""
    try:
        ref = _per_loop.get(loop, _per_loop)
    except TypeError:  # a loop that takes no weak reference: no queue to tie to it
        return None
    if ref is None:
        return None
    calls = ref() if ref is not _per_loop else None
    if calls is not None:
        return calls
    with _per_loop_lock:
        ref = _per_loop.get(loop)
        calls = ref() if ref is not None else None
        if calls is None:
            try:
                calls = _LoopCalls(loop)
            except NotImplementedError:  # no add_reader (Windows' proactor loop)
                _per_loop[loop] = None
                return None
            _per_loop[loop] = weakref.ref(calls)
    return calls


def _forget_workers() -> None:
    """In a forked child the parent's worker threads do not exist, and the parent's completion
    queues (and their descriptors) are not the child's: start afresh, with new locks (another
    parent thread may have held the old ones at the time of the fork). The child's loops get
    queues of their own on first use."""
    global _executor, _executor_lock, _per_loop, _per_loop_lock
    _executor = None
    _executor_lock = threading.Lock()
    _per_loop = weakref.WeakKeyDictionary()
    _per_loop_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


async def _off_loop(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Runs ``function`` on a worker thread; the await can be cancelled, the call cannot."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_workers(), functools.partial(function, *args, **kwargs))


#: The non-waiting twin of each native call (same arguments after the queue and token).
_SUBMIT = {"execute": "submit_execute", "pipeline": "submit_pipeline",
           "transaction": "submit_transaction"}


async def _native_call(pool: _native.Pool, method: str, *args: Any) -> Any:
    """``pool.<method>(*args)`` (``execute``, ``pipeline`` or ``transaction``) without blocking
    the loop: submitted to the worker threads, settled by the loop's completion queue."""
    loop = asyncio.get_running_loop()
    calls = _calls(loop)
    if calls is None:
        return await loop.run_in_executor(_workers(), functools.partial(getattr(pool, method), *args))
    token = next(calls.tokens)
    future = loop.create_future()
    # Argument errors raise here. True: the first command of a new batch, sent when the tasks
    # ready in this loop iteration have queued theirs (auto-pipelining).
    if getattr(pool, _SUBMIT[method])(calls.native, token, *args):
        loop.call_soon(calls.native.flush)
    waiting = calls.waiting
    waiting[token] = future
    try:
        return await future
    except asyncio.CancelledError:
        # The call runs to completion; its result is dropped when the queue is drained.
        waiting.pop(token, None)
        raise


class _AsyncPoolView(_sync._PoolView):
    """The asyncio client's ``connection_pool``: as the sync one, with redis.asyncio's
    coroutines (``await r.connection_pool.disconnect()``)."""

    @classmethod
    def of(cls, view: _sync._PoolView) -> "_AsyncPoolView":
        """The same pool, seen by an asyncio client."""
        return cls(view._pool, view._settings, view._codec)

    async def disconnect(self, inuse_connections: bool = True) -> None:  # type: ignore[override]
        """See :meth:`redpool.client._PoolView.disconnect`."""
        await _off_loop(self._pool.disconnect)

    async def aclose(self) -> None:
        """Same as :meth:`disconnect`, as in redis.asyncio."""
        await self.disconnect()

    async def close(self) -> None:  # type: ignore[override]
        """Same as :meth:`disconnect`."""
        await self.disconnect()

    async def reset(self) -> None:  # type: ignore[override]
        """Same as :meth:`disconnect`."""
        await self.disconnect()


class Redis(PoolMethods, FastCommands, redis.asyncio.Redis):
    """An asyncio, redis-py compatible client on redpool's pool. Takes the same arguments as
    :class:`redpool.Redis`; clients with the same settings share one pool with sync clients."""

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None, db: Optional[int] = None,
                 password: Optional[str] = None, **kwargs: Any) -> None:
        self._bind(_sync.Redis(host, port, db, password, **kwargs))

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "Redis":
        """See :meth:`redpool.Redis.from_url`."""
        client = cls.__new__(cls)
        client._bind(_sync.Redis.from_url(url, **kwargs))
        return client

    @classmethod
    def from_pool(cls, connection_pool: Any) -> "Redis":
        """See :meth:`redpool.Redis.from_pool`."""
        client = cls.__new__(cls)
        client._bind(_sync.Redis.from_pool(connection_pool))
        return client

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Redis":
        """See :meth:`redpool.Redis.from_env`."""
        client = cls.__new__(cls)
        client._bind(_sync.Redis.from_env(**kwargs))
        return client

    def _bind(self, sync: _sync.Redis) -> None:
        self._sync = sync
        self._pool = sync._pool
        self.connection_pool = _AsyncPoolView.of(sync.connection_pool)  # type: ignore[arg-type,assignment]
        self.response_callbacks = sync.response_callbacks
        self.connection = None
        self.auto_close_connection_pool = sync.auto_close_connection_pool

    def __repr__(self) -> str:
        kind = "shared" if self._pool.shared else "dedicated"
        return f"<{type(self).__module__}.{type(self).__name__}({self._pool.url}, {kind} pool)>"

    def __del__(self, *args: Any) -> None:
        pass

    def __await__(self) -> Any:
        return self.initialize().__await__()

    async def initialize(self) -> "Redis":
        """Nothing to do: connections are opened on first use."""
        return self

    async def __aenter__(self) -> "Redis":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        sync = self._sync
        if sync._single_connection:  # one checked-out connection, under a lock
            result = await _off_loop(sync.execute_command, *args, **options)
        else:
            codec = sync._codec
            packed, decode = codec.request(args, options)
            try:
                response = await _native_call(self._pool, "execute", packed, decode)
            except redis.exceptions.ResponseError:
                if EMPTY_RESPONSE in options:
                    return options[EMPTY_RESPONSE]
                raise
            result = codec.parse(args[0], response, options)
        return await result if inspect.isawaitable(result) else result

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> "Pipeline":
        return Pipeline(self, transaction, shard_hint)

    def acquire(self, timeout: Optional[float] = None, priority: str = "normal") -> "Acquiring":
        """Checks out one connection for this caller alone (see :meth:`redpool.Redis.acquire`):
        ``async with r.acquire(timeout=0.5, priority="high") as conn:`` releases it when the
        block ends, ``conn = await r.acquire()`` leaves that to ``await conn.release()``."""
        # The holder is captured here, in the caller's task, not on the worker thread.
        holder = _sync.checkout_holder(self._pool)
        return Acquiring(self, lambda: self._sync._pool.acquire(timeout, holder, priority))

    def pubsub(self, **kwargs: Any) -> Any:
        return self._sync.pubsub(**kwargs)

    def monitor(self) -> Any:
        return self._sync.monitor()

    def client(self) -> "Redis":
        """See :meth:`redpool.Redis.client`."""
        client = type(self).__new__(type(self))
        client._bind(self._sync.client())
        return client

    def set_retry(self, retry: Any) -> None:
        self._sync.set_retry(retry)

    async def health(self) -> Dict[str, Any]:
        """See :meth:`redpool.Redis.health`."""
        return await _off_loop(self._sync.health)

    async def aclose(self, close_connection_pool: Optional[bool] = None) -> None:
        """See :meth:`redpool.Redis.close`."""
        await _off_loop(self._sync.close)

    async def close(self, close_connection_pool: Optional[bool] = None) -> None:
        await self.aclose()

    async def close_pool(self, grace: float = 5.0) -> None:
        """See :meth:`redpool.Redis.close_pool`."""
        await _off_loop(self._sync.close_pool, grace)


StrictRedis = Redis


class Acquiring:
    """What :meth:`Redis.acquire` returns: await it for the :class:`PooledConnection`, or use it
    in ``async with`` (released on exit, closed instead after a connection error or timeout)."""

    def __init__(self, client: Redis, acquire: Callable[[], Any]) -> None:
        self._client = client
        self._acquire = acquire
        self._conn: Optional[PooledConnection] = None

    def __await__(self) -> Generator[Any, None, "PooledConnection"]:
        return self._checkout().__await__()

    async def _checkout(self) -> "PooledConnection":
        conn = await _off_loop(self._acquire)
        return PooledConnection(self._client, _sync.PooledConnection(self._client._sync, conn))

    async def __aenter__(self) -> "PooledConnection":
        self._conn = await self._checkout()
        return self._conn

    async def __aexit__(self, *exc: Any) -> None:
        if self._conn is not None:
            await self._conn.__aexit__(*exc)


class PooledConnection(FastCommands, redis.asyncio.Redis):
    """One connection checked out of an asyncio client's pool (:meth:`Redis.acquire`): a
    :class:`redpool.client.PooledConnection` whose commands are awaitables run off the event
    loop."""

    def __init__(self, client: Redis, sync: _sync.PooledConnection) -> None:
        self._sync = sync
        self.connection_pool = client.connection_pool
        self.response_callbacks = client.response_callbacks
        self.connection = None
        self.auto_close_connection_pool = False

    def __repr__(self) -> str:
        state = "released" if self._sync.released else "checked out"
        return f"<{type(self).__module__}.{type(self).__name__}({self._sync._client._pool.url}, {state})>"

    def __del__(self, *args: Any) -> None:
        pass

    async def __aenter__(self) -> "PooledConnection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await _off_loop(self._sync.__exit__, *exc)

    @property
    def released(self) -> bool:
        """True once released or discarded."""
        return self._sync.released

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        result = await _off_loop(self._sync.execute_command, *args, **options)
        return await result if inspect.isawaitable(result) else result

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> "Pipeline":
        """A pipeline sent on this connection (see :meth:`redpool.PooledConnection.pipeline`)."""
        return Pipeline(self, transaction, shard_hint)

    async def release(self) -> None:
        """Returns the connection to the pool."""
        await _off_loop(self._sync.release)

    async def discard(self) -> None:
        """Closes the connection instead of returning it."""
        await _off_loop(self._sync.discard)

    async def aclose(self, close_connection_pool: Optional[bool] = None) -> None:
        """Same as :meth:`release`."""
        await self.release()

    async def close(self, close_connection_pool: Optional[bool] = None) -> None:
        await self.release()


class Pipeline(FastCommands, redis.asyncio.client.Pipeline):
    """redis-py's asyncio pipeline on redpool's pool: a :class:`redpool.client.Pipeline` whose
    blocking steps run off the event loop. Queue commands, then ``await pipe.execute()``."""

    def __init__(self, client: Union[Redis, PooledConnection], transaction: bool,
                 shard_hint: Any = None) -> None:
        self._sync = client._sync.pipeline(transaction, shard_hint)
        self.connection_pool = client.connection_pool
        self.connection = None
        self.response_callbacks = client.response_callbacks
        self.is_transaction = transaction
        self.shard_hint = shard_hint

    # The queue and the WATCH state live in the sync pipeline (redis-py's own methods, such as
    # multi() and pipeline_execute_command(), read and write them through these properties).
    command_stack = property(lambda self: self._sync.command_stack,
                             lambda self, v: setattr(self._sync, "command_stack", v))
    scripts = property(lambda self: self._sync.scripts,
                       lambda self, v: setattr(self._sync, "scripts", v))
    watching = property(lambda self: self._sync.watching,
                        lambda self, v: setattr(self._sync, "watching", v))
    explicit_transaction = property(lambda self: self._sync.explicit_transaction,
                                    lambda self, v: setattr(self._sync, "explicit_transaction", v))

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}({self._sync._client._pool.url})>"

    def __del__(self, *args: Any) -> None:
        pass

    async def reset(self) -> None:
        await _off_loop(self._sync.reset)

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        if self._sync._conn is None:
            # The holder is captured here, in the caller's task, not on the worker thread.
            holder = _sync.checkout_holder(self._sync._client._pool)
            await _off_loop(self._sync._checkout, holder)
        return await _off_loop(self._sync.immediate_execute_command, *args, **options)

    async def execute(self, raise_on_error: bool = True) -> List[Any]:
        sync = self._sync
        if sync._conn is not None or sync.scripts:
            # On a checked-out connection, or with scripts to load first: the sync pipeline.
            return await _off_loop(sync.execute, raise_on_error)
        # The sync pipeline's steps, with its one native call submitted to the pool.
        pool = sync._client._pool
        steps = sync._execute_steps(raise_on_error)
        try:
            request = next(steps)
            while True:
                method, arguments = request
                try:
                    reply = await _native_call(pool, method, *arguments)
                except BaseException as error:  # cancellation included: the steps reset
                    request = steps.throw(error)
                else:
                    request = steps.send(reply)
        except StopIteration as stop:
            return stop.value


_default_clients: Dict[bool, Redis] = {}


async def get_client(decode_responses: bool = False) -> Redis:
    """The process's default asyncio client, configured from the environment (see
    :func:`redpool.get_client`); it shares the default pool with the sync default client."""
    client = _default_clients.get(decode_responses)
    if client is None:
        client = Redis.__new__(Redis)
        client._bind(await _off_loop(_sync.get_client, decode_responses))
        client = _default_clients.setdefault(decode_responses, client)
    return client
