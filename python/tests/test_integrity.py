"""Reply integrity as Python sees it: the core refuses, on the shared pool, every command that
changes the connection (the Python package keeps no list of its own), with ``ConfigError``
naming the command; on a ``watch()`` session they run and that connection is closed when
returned; the server's whole ``COMMAND`` table sent from many threads and tasks never hands a
probe another caller's reply; a MULTI refused by an ACL says its commands ran outside a
transaction. redis-py, on its own sockets, is the oracle."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Tuple

import pytest
import redis

import redpool
import redpool.asyncio

from support import RedisServer

#: Session commands sent as ``execute_command`` arguments: (the name the refusal starts with,
#: the arguments after it).
SESSION_COMMANDS = [
    ("SELECT", (1,)),
    ("UNSUBSCRIBE", ("a", "b")),
    ("CLIENT SETNAME", ("x",)),
    ("CLIENT REPLY", ("OFF",)),
    ("CLIENT TRACKING", ("ON",)),
    ("HELLO", (3,)),
    ("RESET", ()),
    ("MONITOR", ()),
]

#: redis-py's methods that send a session command: (the refusal's name, method, arguments).
SESSION_METHODS = [
    ("SELECT", "select", (1,)),
    ("CLIENT SETNAME", "client_setname", ("x",)),
    ("CLIENT REPLY", "client_reply", ("OFF",)),
    ("CLIENT TRACKING", "client_tracking_on", ()),
    ("CLIENT TRACKING", "client_tracking", (True,)),
    ("CLIENT NO-EVICT", "client_no_evict", ("ON",)),
    ("CLIENT NO-TOUCH", "client_no_touch", ("ON",)),
    ("CLIENT SETINFO", "client_setinfo", ("LIB-NAME", "x")),
    ("AUTH", "auth", ("pw",)),
    ("READONLY", "readonly", ()),
    ("READWRITE", "readwrite", ()),
    ("RESET", "reset", ()),
    ("MONITOR", "monitor", ()),
    ("SYNC", "sync", ()),
    ("PSYNC", "psync", ("?", -1)),
]

FLAVOURS = ["sync", "asyncio"]
#: The client name of these tests' pool, so that its connections can be told from others'.
NAME = "integrity"


def client(flavour: str, url: str) -> Any:
    """A client of the shared pool of these tests, sync or asyncio."""
    cls = redpool.Redis if flavour == "sync" else redpool.asyncio.Redis
    return cls.from_url(url, client_name=NAME)


async def settled(result: Any) -> Any:
    """A call's result, awaited when the client is the asyncio one."""
    return await result if inspect.isawaitable(result) else result


async def raised(call: Callable[[], Any]) -> BaseException:
    """What ``call()`` raised (awaiting its result for the asyncio client); fails if nothing."""
    try:
        result = await settled(call())
    except Exception as error:  # the caller checks the class
        return error
    pytest.fail(f"no error; the call returned {result!r}")


def through_the_pool(c: Any, words: Tuple[Any, ...]) -> List[Callable[[], Any]]:
    """Every way a command reaches the shared pool: alone, in a pipeline, in a transaction."""
    def pipelined(transaction: bool) -> Callable[[], Any]:
        return lambda: c.pipeline(transaction=transaction).execute_command(*words).execute()

    return [lambda: c.execute_command(*words), pipelined(False), pipelined(True)]


def assert_refused(error: BaseException, name: str) -> None:
    """The core's InvalidArgument as Python raises it: ``ConfigError``, a redpool error and a
    redis-py one, its message naming the command."""
    assert isinstance(error, redpool.ConfigError), repr(error)
    assert isinstance(error, redpool.RedisPoolError)
    assert isinstance(error, redis.exceptions.DataError) and isinstance(error, ValueError)
    assert str(error).startswith(f"{name} "), str(error)


def assert_no_session_reached_the_server(oracle: redis.Redis) -> None:
    """The pool's connections, as the server lists them, have the pool's name and db."""
    ours = [c for c in oracle.client_list() if c["name"] in (NAME, "x")]
    assert ours and all(c["name"] == NAME and c["db"] == "0" for c in ours), ours


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name, args", SESSION_COMMANDS, ids=[n for n, _ in SESSION_COMMANDS])
def test_session_commands_are_refused_by_name_and_the_client_stays_usable(server, oracle,
                                                                          flavour, name, args):
    async def main():
        c = client(flavour, server.url)
        for call in through_the_pool(c, (*name.split(), *args)):
            assert_refused(await raised(call), name)
        assert await settled(c.echo("still usable")) == b"still usable"
        assert await settled(c.client_getname()) == NAME

    asyncio.run(main())
    assert_no_session_reached_the_server(oracle)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name, method, args", [
    pytest.param(*case, marks=pytest.mark.skipif(not hasattr(redis.Redis, case[1]),
                                                 reason="not in this redis-py"))
    for case in SESSION_METHODS
], ids=[m for _, m, _ in SESSION_METHODS])
def test_redis_py_methods_sending_session_commands_get_the_same_refusal(server, oracle, flavour,
                                                                        name, method, args):
    async def main():
        c = client(flavour, server.url)
        assert_refused(await raised(lambda: getattr(c, method)(*args)), name)
        assert await settled(c.ping()) is True

    asyncio.run(main())
    assert_no_session_reached_the_server(oracle)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_hello_is_refused_by_redis_py_itself_as_with_redis_py(server, oracle, flavour):
    """redis-py's ``hello()`` refuses before sending anything; redpool keeps redis-py's method
    (``execute_command("HELLO", 3)`` reaches the core, see above)."""
    with pytest.raises(NotImplementedError) as expected:
        oracle.hello()

    async def main():
        c = client(flavour, server.url)
        error = await raised(c.hello)
        assert type(error) is NotImplementedError and str(error) == str(expected.value)

    asyncio.run(main())


def test_on_a_watch_session_they_run_and_that_connection_is_closed(server, oracle):
    r = client("sync", server.url)
    with r.pipeline() as pipe:
        pipe.watch("k")
        assert pipe.client_setname("x") is True
        assert pipe.select(1) is True
        # One value per command: the two confirmations of UNSUBSCRIBE a b as one array; none
        # for a command CLIENT REPLY SKIP silenced; the next command gets its own reply.
        assert pipe.execute_command("UNSUBSCRIBE", "a", "b") == [
            [b"unsubscribe", b"a", 0], [b"unsubscribe", b"b", 0]]
        assert pipe.execute_command("CLIENT", "REPLY", "SKIP") is None
        assert pipe.execute_command("ECHO", "skipped") is None
        assert pipe.execute_command("ECHO", "answered") == b"answered"
        assert pipe.client_getname() == "x"
        assert any(c["name"] == "x" and c["db"] == "1" for c in oracle.client_list())
    assert r.client_getname() == NAME
    deadline = time.monotonic() + 5
    while any(c["name"] == "x" for c in oracle.client_list()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert_no_session_reached_the_server(oracle)


# Generated commands --------------------------------------------------------------------------

#: Commands never generated: they stop the server, wipe or swap the probes' keys, or make the
#: server reach another address.
NOT_SENT = {"shutdown", "flushall", "flushdb", "swapdb", "replicaof", "slaveof", "failover",
            "migrate"}
THREADS = 8
TIME_LIMIT = 60.0


class Spec(NamedTuple):
    """A command of the server's table: its words (name, subcommand), arity and whether it
    blocks."""

    words: Tuple[str, ...]
    arity: int
    blocking: bool


class Call(NamedTuple):
    """One call of a case: a client method, its arguments and what it must return (``ANY``
    for a generated command, which may return anything or raise)."""

    method: str
    args: Tuple[Any, ...]
    want: Any


ANY = object()


def choose_seed() -> int:
    """REDPOOL_SEED, or one from the clock; printed so that a failure can be replayed."""
    seed = int(os.environ.get("REDPOOL_SEED") or time.time_ns() % 2**32)
    print(f"integrity: seed {seed} (replay with REDPOOL_SEED={seed})")
    return seed


def command_table(oracle: redis.Redis) -> List[Spec]:
    """Every command and subcommand of the server's ``COMMAND`` reply (as redis-py parses it),
    but those of NOT_SENT."""
    specs = []
    for entry in oracle.command().values():
        rows = entry.get("subcommands") or [
            [entry["name"], entry["arity"], entry["flags"]]]
        for name, arity, flags, *_ in rows:
            words = tuple(name.lower().split("|"))
            if words[0] not in NOT_SENT:
                specs.append(Spec(words, int(arity), "blocking" in flags))
    assert len(specs) > 200, f"only {len(specs)} commands in the table"
    return sorted(specs)


def generate(spec: Spec, rng: random.Random, seed: int) -> Tuple[Any, ...]:
    """Arguments satisfying the spec's arity: keys ``gen:<seed>:<n>``, small numbers (``0.01``
    for blocking commands, so none waits long) and words."""
    count = max(abs(spec.arity), len(spec.words)) + (rng.randrange(3) if spec.arity < 0 else 0)
    args: List[Any] = list(spec.words)
    while len(args) < count:
        kind = rng.randrange(10)
        if kind < 5:
            args.append(f"gen:{seed}:{rng.randrange(40)}")
        elif kind < 8:
            args.append("0.01" if spec.blocking else rng.randint(1, 3))
        else:
            args.append(f"w{rng.randrange(1000)}")
    return tuple(args)


def probes(rng: random.Random, seed: int, tag: str) -> List[Call]:
    """Calls whose replies are known: an ECHO of a unique token and a SET/GET of a key nothing
    else touches (values as redis-py returns them, decoded)."""
    token, value = f"probe-{tag}-{rng.getrandbits(48)}", f"v{rng.getrandbits(48)}"
    key = f"probe:{seed}:{tag}"
    return [Call("echo", (token,), token), Call("set", (key, value), True),
            Call("get", (key,), value)]


def case(spec: Spec, rng: random.Random, seed: int, tag: str) -> List[Call]:
    """A generated command of ``spec``, then probes."""
    return [Call("execute_command", generate(spec, rng, seed), ANY), *probes(rng, seed, tag)]


class Tally:
    """What the callers saw, from any thread."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.lock = threading.Lock()
        self.probes = 0
        self.errors: Counter = Counter()
        self.wrong: List[str] = []

    def record(self, call: Call, got: Any, error: Optional[BaseException]) -> None:
        with self.lock:
            if call.want is not ANY:
                self.probes += 1
                if error is not None or got != call.want:
                    self.wrong.append(f"{call}: got {error!r} / {got!r}")
                return
            if error is None:
                return
            self.errors[type(error).__name__] += 1
            if isinstance(error, redpool.ProtocolError):
                self.wrong.append(f"{call}: a protocol error: {error}")
            elif isinstance(error, redpool.ConfigError) and not str(error).startswith(
                    str(call.args[0]).upper()):
                self.wrong.append(f"{call}: the refusal does not name the command: {error}")

    def out_of_time(self, deadline: float, where: str) -> bool:
        if time.monotonic() < deadline:
            return False
        with self.lock:
            self.wrong.append(f"{where}: out of time")
        return True

    def check(self, cases: int) -> None:
        print(f"integrity: seed {self.seed}: {cases} cases, {self.probes} probes checked, "
              f"errors by class {dict(self.errors)}")
        assert not self.wrong, (f"seed {self.seed}: {len(self.wrong)} wrong, first ones:\n"
                                + "\n".join(self.wrong[:20]))
        assert self.probes == 3 * cases > 0


@pytest.fixture
def scratch(tmp_path) -> Iterator[Tuple[RedisServer, List[Spec], int]]:
    """A server of its own (generated commands may change it), its command table and a seed.
    The probes' expected values are checked to be what redis-py's own client returns."""
    srv = RedisServer(tmp_path)
    oracle = srv.oracle(decode_responses=True)
    try:
        for call in probes(random.Random(0), 0, "oracle"):
            assert getattr(oracle, call.method)(*call.args) == call.want, call
        yield srv, command_table(oracle), choose_seed()
    finally:
        oracle.close()
        srv.stop()


def pool_options() -> dict:
    return dict(max_connections=2, decode_responses=True, shared_pool=False, retry=None,
                acquire_timeout=30, socket_timeout=5)


def test_every_command_from_8_threads_leaves_every_reply_with_its_caller(scratch):
    srv, specs, seed = scratch
    r = redpool.Redis.from_url(srv.url, **pool_options())
    tally = Tally(seed)
    deadline = time.monotonic() + TIME_LIMIT

    def drive(thread: int) -> None:
        rng = random.Random(seed * THREADS + thread)
        share = specs[thread % (THREADS // 2)::THREADS // 2]  # each command to two threads
        rng.shuffle(share)
        for i, spec in enumerate(share):
            if tally.out_of_time(deadline, f"thread {thread}"):
                return
            for call in case(spec, rng, seed, f"{thread}-{i}"):
                try:
                    tally.record(call, getattr(r, call.method)(*call.args), None)
                except Exception as error:
                    tally.record(call, None, error)

    threads = [threading.Thread(target=drive, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0) + 10)
        assert not t.is_alive(), f"seed {seed}: a driver thread hangs"
    r.close()
    tally.check(2 * len(specs))


def test_commands_from_many_asyncio_tasks_leave_every_reply_with_its_caller(scratch):
    srv, specs, seed = scratch
    rng = random.Random(seed)
    cases = [case(spec, rng, seed, f"task-{i}") for i, spec in enumerate(rng.sample(specs, 80))]
    tally = Tally(seed)

    async def task(ar: redpool.asyncio.Redis, calls: List[Call]) -> None:
        for call in calls:
            try:
                tally.record(call, await getattr(ar, call.method)(*call.args), None)
            except Exception as error:
                tally.record(call, None, error)

    async def main() -> None:
        ar = redpool.asyncio.Redis.from_url(srv.url, **pool_options())
        await asyncio.wait_for(asyncio.gather(*(task(ar, calls) for calls in cases)),
                               TIME_LIMIT)
        await ar.aclose()

    asyncio.run(main())
    tally.check(len(cases))


# A MULTI the server refuses ----------------------------------------------------------------------

@pytest.fixture
def nomulti(server, oracle) -> Iterator[redpool.Redis]:
    """A client of an ACL user that may not run MULTI."""
    oracle.execute_command("ACL", "SETUSER", "nomulti", "on", ">pw", "~*", "&*", "+@all",
                           "-multi")
    client = redpool.Redis(host="127.0.0.1", port=server.port, username="nomulti",
                           password="pw", shared_pool=False, retry=None)
    yield client
    client.close()
    oracle.acl_deluser("nomulti")


def test_a_refused_multi_says_its_commands_ran_outside_a_transaction(nomulti, oracle):
    pipe = nomulti.pipeline(transaction=True)
    pipe.incr("a").incr("b")
    with pytest.raises(redpool.RedisPoolError) as caught:
        pipe.execute()
    message = str(caught.value)
    assert "MULTI was refused" in message and "outside a transaction" in message, message
    assert "2 of them answered without error" in message, message
    assert oracle.mget("a", "b") == [b"1", b"1"]  # both applied, one by one
    assert nomulti.echo("in step") == b"in step"


def test_a_refused_multi_in_a_watch_session_is_not_taken_for_a_lost_watch(nomulti, oracle):
    with nomulti.pipeline() as pipe:
        pipe.watch("w")
        pipe.multi()
        pipe.incr("a")
        with pytest.raises(redpool.RedisPoolError) as caught:
            pipe.execute()
    assert not isinstance(caught.value, redis.ConnectionError), repr(caught.value)
    assert "outside a transaction" in str(caught.value)
