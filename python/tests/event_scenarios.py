"""Event and fork scenarios that could deadlock, run by test_events.py in a child process with a
time limit (a deadlock may hold the GIL, and then nothing in the hung process can report it).

    python event_scenarios.py SCENARIO REDIS_URL [ARGS...]

prints ``ok`` and exits 0 when the scenario holds; an assertion or a hang (faulthandler dumps
every thread's stack after WATCHDOG seconds) exits non-zero.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

import redis

import redpool
import redpool.asyncio  # (its fork handler is part of what the fork test checks)

#: Any scenario taking longer than this is hung: every thread's stack goes to stderr, exit 1.
WATCHDOG = 40.0
#: The longest wait for an event or a thread inside a scenario.
WAIT = 10.0
#: How long event counts must stay unchanged to count as final: many maintenance periods
#: (12.5 ms with the 50 ms health_check_interval below) and several health-check PINGs.
QUIET = 0.3


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def wait_until_quiet(counts: Callable[[], Any], what: str, quiet: float = QUIET,
                     timeout: float = WAIT) -> None:
    """Waits until ``counts()`` stays unchanged for ``quiet`` seconds (at most ``timeout``)."""
    deadline = time.monotonic() + timeout
    last, since = counts(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} to stop changing")
        time.sleep(0.005)
        now = counts()
        if now != last:
            last, since = now, time.monotonic()


def thread_name(native_id: int) -> str:
    """The OS name of a thread of this process (the core names its threads)."""
    with open(f"/proc/self/task/{native_id}/comm") as comm:
        return comm.read().strip()


def kill_connections(oracle: redis.Redis, name: str) -> int:
    """Closes, from the server side, every connection of the pool whose client name is ``name``."""
    killed = 0
    for client in oracle.client_list():
        if client["name"] == name:
            killed += oracle.client_kill_filter(_id=client["id"])
    return killed


def run_in_thread(function: Callable[[], Any]) -> int:
    """Runs ``function`` on a new Python thread and returns that thread's native id."""
    errors: List[BaseException] = []

    def target() -> None:
        try:
            function()
        except BaseException as error:  # reported by the caller
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "a worker thread hung"
    if errors:
        raise errors[0]
    assert thread.native_id is not None
    return thread.native_id


class Source:
    """Makes a pool raise events on one kind of thread: ``worker`` (a Python thread's own calls)
    or ``maintenance`` (the pool's background thread, after the server closed its idle
    connections)."""

    def __init__(self, url: str, kind: str) -> None:
        self.kind = kind
        self.name = f"events-{kind}-{os.getpid()}-{random.randrange(1 << 30)}"
        self.oracle = redis.Redis.from_url(url, socket_timeout=WAIT)
        if kind == "worker":
            self.client = redpool.Redis.from_url(url, shared_pool=False, client_name=self.name,
                                                 min_idle=0)
        else:
            # Idle connections are PINGed every 50 ms, so the maintenance thread finds killed
            # ones, closes them (connection_closed) and opens new ones (connection_created).
            self.client = redpool.Redis.from_url(url, shared_pool=False, client_name=self.name,
                                                 min_idle=2, health_check_interval=0.05)
            wait_for(lambda: len(self.connections()) == 2, "the warm-up connections")
        self.threads: List[int] = []

    def connections(self) -> List[Dict[str, Any]]:
        return [c for c in self.oracle.client_list() if c["name"] == self.name]

    def fire(self) -> None:
        """Raises at least one event (and, for ``worker``, returns once it was delivered)."""
        if self.kind == "worker":
            kill_connections(self.oracle, self.name)
            # On a new pool: connection_created; then connection_closed + connection_created.
            self.threads.append(run_in_thread(self.client.ping))
        else:
            # After an earlier kill, once maintenance has opened the new connections.
            wait_for(lambda: len(self.connections()) == 2, "the pool's connections")
            assert kill_connections(self.oracle, self.name) >= 1

    def settle(self) -> None:
        """Returns once the last fire() is done with: for ``worker``, at once (fire() returned
        after the delivery); for ``maintenance``, once the pool has replaced the killed
        connections (its events may still be on their way: see wait_until_quiet)."""
        if self.kind == "maintenance":
            wait_for(lambda: len(self.connections()) == 2, "the pool's new connections")

    def check_thread(self, native_id: int) -> None:
        """``native_id`` is a thread that raises this source's events."""
        if self.kind == "worker":
            assert native_id in self.threads, "a worker's event was delivered on another thread"
        else:
            assert thread_name(native_id).startswith("redpool-maint"), thread_name(native_id)


class Recorder:
    """A listener that records what it receives, and where."""

    def __init__(self, client: redpool.Redis, action: Optional[Callable[["Recorder"], None]] = None):
        self.client = client
        self.action = action
        self.events: List[Dict[str, Any]] = []
        self.threads: List[int] = []
        self.id = client.add_event_listener(self)

    def __call__(self, event: Dict[str, Any]) -> None:
        self.events.append(event)
        self.threads.append(threading.get_native_id())
        if self.action is not None:
            action, self.action = self.action, None  # once
            action(self)

    def remove(self) -> bool:
        return self.client.remove_event_listener(self.id)


def key(event: Dict[str, Any]) -> Any:
    return event["type"], event.get("id")


def in_callback(url: str, kind: str, change: str) -> None:
    """A listener changes the listeners from inside its callback: ``remove_self``,
    ``add_other`` or ``remove_other``. Delivery works from a snapshot: a listener added during
    an event starts with the next one, one removed before its turn is skipped."""
    source = Source(url, kind)
    client = source.client
    removed: List[bool] = []
    added: List[Recorder] = []
    first_seen: List[Any] = []

    def remove_self(me: Recorder) -> None:
        removed.append(me.remove())
        removed.append(me.remove())  # already gone

    def add_other(me: Recorder) -> None:
        first_seen.append(key(me.events[-1]))
        added.append(Recorder(client))

    def remove_other(me: Recorder) -> None:
        removed.append(other.remove())

    action = {"remove_self": remove_self, "add_other": add_other,
              "remove_other": remove_other}[change]
    acting = Recorder(client, action)
    other = Recorder(client)  # registered after `acting`: its turn comes later in each event
    everything = Recorder(client)

    def counts() -> List[int]:
        return [len(listener.events) for listener in (acting, other, everything, *added)]

    source.fire()
    wait_for(lambda: acting.events and everything.events, "the first event")
    # All of the first fire's events (a maintenance kill raises several, over a few PINGs),
    # so that the wait below is for the second fire's.
    source.settle()
    wait_until_quiet(counts, "the first fire's events")
    after_first = len(everything.events)
    source.fire()
    wait_for(lambda: len(everything.events) > after_first, "the second fire's events")
    if change == "add_other":
        wait_for(lambda: added and added[0].events, "an event for the added listener")
    # Let the rest of the second fire's events land, so the counts below are final.
    source.settle()
    wait_until_quiet(counts, "the second fire's events")

    for event_thread in everything.threads + acting.threads:
        source.check_thread(event_thread)
    if change == "remove_self":
        assert removed == [True, False], removed
        assert len(acting.events) == 1, acting.events
        assert len(other.events) == len(everything.events)
    elif change == "add_other":
        assert len(acting.events) == len(everything.events)
        new = added[0]
        assert first_seen[0] not in [key(e) for e in new.events], "got the event it was added in"
        assert new.events and all(e in everything.events for e in new.events)
        for event_thread in new.threads:
            source.check_thread(event_thread)
    else:
        assert removed == [True], removed
        assert other.events == [], "a listener removed before its turn was called"
        assert len(acting.events) == len(everything.events)
    assert not client.remove_event_listener(10**9)
    for listener in [acting, other, everything, *added]:
        listener.remove()
    client.close_pool(grace=0)


def churn(url: str, seconds: str) -> None:
    """Threads add and remove listeners (some of which change the listeners from inside their
    calls) while worker threads make the pool raise events, for a bounded time."""
    client = redpool.Redis.from_url(url, shared_pool=False, max_connections=4, min_idle=1,
                                    health_check_interval=0.05)
    stop = threading.Event()
    errors: List[BaseException] = []
    delivered = [0]
    threads = churn_threads(client, stop, errors, delivered)
    time.sleep(float(seconds))
    stop.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), f"{thread.name} hung"
    assert not errors, errors
    assert delivered[0] > 100, f"only {delivered[0]} events were delivered"
    final = Recorder(client)
    client._pool.acquire().discard()  # connection_closed
    wait_for(lambda: final.events, "an event after the churn")
    client.close_pool(grace=0)


def churn_threads(client: redpool.Redis, stop: threading.Event, errors: List[BaseException],
                  delivered: List[int], held: Optional[List[Any]] = None) -> List[threading.Thread]:
    """Starts the churn: 4 threads raising events (connections discarded and opened), 6 threads
    adding and removing listeners. With ``held``, one more thread keeps a checked-out connection
    busy (``held[0]``), for fork tests."""

    def guarded(function: Callable[[], None]) -> Callable[[], None]:
        def loop() -> None:
            try:
                while not stop.is_set():
                    function()
            except BaseException as error:
                errors.append(error)
                stop.set()
        return loop

    def fire() -> None:
        conn = client._pool.acquire(timeout=WAIT)
        conn.discard()  # connection_closed, then a connection_created at the next acquire

    rng = random.Random()

    def listeners() -> None:
        ids: List[int] = []

        def counting(event: Dict[str, Any]) -> None:
            delivered[0] += 1

        def remove_self(event: Dict[str, Any]) -> None:
            client.remove_event_listener(my_id[0])

        def add_and_remove(event: Dict[str, Any]) -> None:
            client.remove_event_listener(client.add_event_listener(counting))
            if ids:
                client.remove_event_listener(rng.choice(ids))

        my_id = [client.add_event_listener(remove_self)]
        for listener in (counting, add_and_remove, counting):
            ids.append(client.add_event_listener(listener))
        time.sleep(rng.random() * 0.002)
        for listener_id in ids:
            client.remove_event_listener(listener_id)
        client.remove_event_listener(my_id[0])

    def hold() -> None:
        assert held is not None
        with client._pool.acquire(timeout=WAIT) as conn:
            held[0] = conn
            # A blocking command: the connection is busy (its lock held) for 20 ms at a time.
            conn.execute([b"BLPOP", b"events:nothing", b"0.02"], timeout=WAIT)

    targets = [fire] * 4 + [listeners] * 6 + ([hold] if held is not None else [])
    threads = [threading.Thread(target=guarded(t), name=f"churn-{i}", daemon=True)
               for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    return threads


def fork_while_churning(url: str, forks: str) -> None:
    """The main thread forks while other threads churn events, listeners and a checked-out
    connection; each child must run commands within 5 s, and exit cleanly."""
    client = redpool.Redis.from_url(url, shared_pool=False, max_connections=4, min_idle=1,
                                    health_check_interval=0.05)
    shared = redpool.Redis.from_url(url)
    shared.ping()
    # Listeners that hand work off and log, as the documentation advises, while forks happen
    # (the executor and logging take locks of their own across fork()).
    executor = ThreadPoolExecutor(2)
    log = logging.getLogger("redpool.tests.events")
    parent = os.getpid()

    def hand_off(event: Dict[str, Any]) -> None:
        if os.getpid() == parent:  # the executor's threads are the parent's
            executor.submit(log.debug, "event %s", event["type"])

    client.add_event_listener(hand_off)
    client.add_event_listener(lambda event: log.debug("event %s", event["type"]))
    stop = threading.Event()
    errors: List[BaseException] = []
    delivered = [0]
    held: List[Any] = [None]
    threads = churn_threads(client, stop, errors, delivered, held)
    wait_for(lambda: held[0] is not None and delivered[0] > 0, "the churn to start")
    failures = []
    for i in range(int(forks)):
        time.sleep(random.random() * 0.01)
        pid = os.fork()
        if pid == 0:
            child(url, client, shared, held[0])  # never returns
        status = wait_child(pid, 5.0)
        if status != 0:
            failures.append((i, "hung" if status is None else status))
    stop.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), f"{thread.name} hung"
    assert not errors, errors
    assert not failures, f"children that failed or hung (fork #, status): {failures}"
    assert client.ping() and shared.ping()
    client.close_pool(grace=0)
    executor.shutdown()


def wait_child(pid: int, timeout: float) -> Optional[int]:
    """The child's exit status; None for a child still running after ``timeout`` (killed)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.002)


def child(url: str, client: redpool.Redis, shared: redpool.Redis, held: Any) -> None:
    """In a forked child: commands on the inherited pools and a new one, events and listeners,
    the connection a parent thread had checked out (refused, without waiting for its lock)."""
    status = 1
    try:
        # Dumps the stacks if the child hangs (the parent kills it at 5 s).
        faulthandler.dump_traceback_later(4.5, exit=True)
        token = str(os.getpid()).encode()
        assert client.set("events:fork", token) and client.get("events:fork") == token
        assert shared.ping()
        seen: List[Dict[str, Any]] = []
        listener = client.add_event_listener(seen.append)
        client._pool.acquire(timeout=2).discard()
        assert any(e["type"] == "connection_closed" for e in seen), seen
        assert client.remove_event_listener(listener)
        assert redpool.Redis.from_url(url, client_name="events-fork-child").ping()
        assert asyncio.run(redpool.asyncio.Redis.from_url(url).ping())
        try:
            held.execute([b"PING"])
            raise AssertionError("a connection checked out in the parent was used in the child")
        except (redpool.ConnectionError, redpool.PoolClosedError):
            pass
        held.release()
        status = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


def main() -> None:
    scenario, url, *args = sys.argv[1:]
    if scenario != "fork":
        # (A forked child could not arm its own: cancelling the parent's watchdog, whose thread
        # does not exist in the child, hangs. The fork scenario is bounded by the caller.)
        faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    {"in_callback": in_callback, "churn": churn, "fork": fork_while_churning}[scenario](url, *args)
    if scenario != "fork":
        faulthandler.cancel_dump_traceback_later()
    print("ok")
    sys.stdout.flush()
    os._exit(0)  # daemon threads and native threads need no orderly shutdown


if __name__ == "__main__":
    main()
