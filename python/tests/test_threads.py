"""Concurrency: the GIL is released around blocking calls, 32 threads share a pool without a
reply ever reaching the wrong caller, and Ctrl-C interrupts long waits on the main thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import redpool

THREADS = 32
OPS = 150


# The block time of the calls below: long, because each ends as soon as another thread, which
# must run Python to do so, wakes it; were the GIL held, the call would wait this out and fail.
BLOCK = 10.0


def wait_until(condition, while_alive=None) -> bool:
    """Polls ``condition`` (every 1 ms, for at most BLOCK seconds, or while ``while_alive`` is
    alive) until it holds; returns whether it did."""
    deadline = time.monotonic() + BLOCK
    while time.monotonic() < deadline and (while_alive is None or while_alive.is_alive()):
        if condition():
            return True
        time.sleep(0.001)
    return False


def woken_by_another_thread(blocking_call, waiting, wake):
    """Runs ``blocking_call`` while another thread polls ``waiting()`` and, once it sees the call
    waiting, calls ``wake()`` to end it. Both are Python, so they only run while the call has
    released the GIL. Returns the call's result and whether the other thread saw it waiting."""
    seen = threading.Event()
    done = threading.Event()

    def watch():
        if wait_until(lambda: done.is_set() or waiting()) and not done.is_set():
            seen.set()
            wake()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        result = blocking_call()
    finally:
        done.set()
        thread.join(BLOCK + 5)
    return result, seen.is_set()


def blocked_on_server(oracle, name: str) -> bool:
    """Whether the server holds the connection named ``name`` blocked (in BLPOP)."""
    return any(c["name"] == name and "b" in c["flags"] for c in oracle.client_list())


def test_gil_released_while_waiting_for_a_reply(server, oracle):
    # On the main thread (helper-thread path) and on another thread (detached path): while the
    # BLPOP waits for its reply, the other thread runs Python (redis-py) that sees it blocked on
    # the server and pushes the element that ends it.
    client = redpool.Redis.from_url(server.url, client_name="py:gil", shared_pool=False)
    key = "py:gil:list"
    blocked = lambda: blocked_on_server(oracle, "py:gil")  # noqa: E731
    try:
        result, seen = woken_by_another_thread(lambda: client.blpop([key], timeout=BLOCK),
                                               blocked, lambda: oracle.lpush(key, "main"))
        assert seen and result == (key.encode(), b"main")

        result = {}
        worker = threading.Thread(target=lambda: result.update(v=client.blpop([key],
                                                                              timeout=BLOCK)))
        worker.start()
        seen = wait_until(blocked, while_alive=worker)
        if seen:
            oracle.lpush(key, "worker")
        worker.join(BLOCK + 5)
        assert seen and result == {"v": (key.encode(), b"worker")}
    finally:
        client.close()


def test_gil_released_while_waiting_for_a_connection(server, oracle):
    # The only connection is held by a WATCHing pipeline; while GET waits for it, another thread
    # sees the waiter in the pool's stats and returns the connection.
    client = redpool.Redis.from_url(server.url, max_connections=1, acquire_timeout=BLOCK,
                                    shared_pool=False)
    holder = client.pipeline()
    try:
        holder.watch("k")
        value, seen = woken_by_another_thread(lambda: client.get("k"),
                                              lambda: client.pool_stats()["waiting"] > 0,
                                              holder.reset)
        assert seen and value is None
    finally:
        holder.reset()
        client.close()


def test_thirty_two_threads_share_a_pool(server, oracle):
    oracle.mset({f"key:{i}": f"val:{i}" for i in range(THREADS * OPS)})
    client = redpool.Redis.from_url(server.url, max_connections=8, shared_pool=False)
    errors = []

    def work(t: int) -> None:
        try:
            for i in range(t * OPS, (t + 1) * OPS):
                assert client.get(f"key:{i}") == f"val:{i}".encode(), i
                client.incr("total")
                if i % 10 == 0:
                    with client.pipeline() as pipe:
                        pipe.get(f"key:{i}").incr("total")
                        assert pipe.execute()[0] == f"val:{i}".encode()
        except Exception as e:  # reported below with the thread number
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert int(oracle.get("total")) == THREADS * OPS + THREADS * OPS // 10
    stats = client.pool_stats()
    assert stats["open"] <= 8 and stats["in_use"] == 0


def run_and_interrupt(server, body: str) -> float:
    """Runs ``body`` in a child Python, sends SIGINT once it printed "waiting", and returns how
    long the child took to die of KeyboardInterrupt."""
    code = textwrap.dedent(f"""
        import signal, sys, redpool
        # Python leaves SIGINT ignored when it starts so (a test run in a background job).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        r = redpool.Redis.from_url("{server.url}", shared_pool=False)
        {body}
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        time.sleep(0.3)  # well inside the wait
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        try:
            # A bound that only tells a hang from an answer: the waits below last 30 s.
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
            raise AssertionError(f"the child did not end within 60 s of SIGINT; stderr:\n{err}")
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert "KeyboardInterrupt" in err, err
    assert child.returncode != 0
    return elapsed


def test_ctrl_c_interrupts_a_long_reply_wait(server, oracle):
    elapsed = run_and_interrupt(server, """
        print("waiting", flush=True)
        r.blpop(["never"], timeout=30)
    """)
    # Interrupted, not waited out (30 s): a bound that tells the two apart on a loaded machine.
    assert elapsed < 20.0, elapsed


def test_ctrl_c_interrupts_a_wait_for_a_connection(server, oracle):
    elapsed = run_and_interrupt(server, """
        r = redpool.Redis.from_url("{url}", max_connections=1, acquire_timeout=30,
                                   shared_pool=False)
        holder = r.pipeline()
        holder.watch("k")
        print("waiting", flush=True)
        r.get("k")
    """.replace("{url}", server.url))
    assert elapsed < 20.0, elapsed


def test_ctrl_c_interrupts_a_connect_that_gets_no_answer(server, oracle):
    # A listener with a backlog of 0, filled by one connection nobody accepts: the kernel drops
    # the next SYN, so the client's connect waits for its 30 s connect timeout.
    elapsed = run_and_interrupt(server, """
        import socket
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler = socket.create_connection(listener.getsockname())
        r = redpool.Redis(port=listener.getsockname()[1], socket_connect_timeout=30,
                          retry=None, shared_pool=False)
        print("waiting", flush=True)
        r.ping()
    """)
    assert elapsed < 20.0, elapsed


def test_a_call_interrupted_by_ctrl_c_leaves_the_pool_sound(server, oracle):
    code = textwrap.dedent(f"""
        import os, signal, threading, redpool
        signal.signal(signal.SIGINT, signal.default_int_handler)
        r = redpool.Redis.from_url("{server.url}", max_connections=1, shared_pool=False)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            r.blpop(["never"], timeout=30)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
        print(r.echo("after"), r.pool_stats()["in_use"], r.pool_stats()["open"])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    # The connection cut mid-reply was dropped: the next call opened a new one and got its own
    # reply, and nothing stays checked out.
    assert done.stdout.split("\n")[:2] == ["interrupted", "b'after' 0 1"], done.stdout


def test_a_signal_handler_that_uses_the_interrupted_connection_is_refused(server, oracle):
    code = textwrap.dedent(f"""
        import signal, redpool
        r = redpool.Redis.from_url("{server.url}", shared_pool=False)
        with r.acquire() as conn:
            signal.signal(signal.SIGALRM, lambda *_: conn.ping())
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            try:
                conn.blpop(["never"], timeout=30)
                print("not interrupted")
            except RuntimeError as e:
                print("refused" if "busy" in str(e) else e)
        print(r.echo("after"), r.pool_stats()["in_use"])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    # Refused rather than waiting for itself; the interrupted connection is not reused.
    assert done.stdout.split("\n")[:2] == ["refused", "b'after' 0"], done.stdout
