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


def count_while(blocking_call) -> int:
    """How many times another thread increments a counter while ``blocking_call`` runs."""
    ticks = 0
    done = threading.Event()

    def spin():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        blocking_call()
    finally:
        done.set()
        thread.join()
    return ticks


def test_gil_released_while_waiting_for_a_reply(r):
    # On the main thread (helper-thread path) and on another thread (detached path).
    assert count_while(lambda: r.blpop(["nothing"], timeout=0.5)) > 100

    result = {}
    worker = threading.Thread(target=lambda: result.update(v=r.blpop(["nothing"], timeout=0.5)))
    started = time.monotonic()
    worker.start()
    main_progress = 0
    while worker.is_alive():
        main_progress += 1
        time.sleep(0.001)
    assert result == {"v": None}
    assert main_progress > 100 and time.monotonic() - started >= 0.45


def test_gil_released_while_waiting_for_a_connection(server, oracle):
    client = redpool.Redis.from_url(server.url, max_connections=1, acquire_timeout=0.5,
                                    shared_pool=False)
    with client.pipeline() as holder:
        holder.watch("k")

        def wait_for_pool():
            try:
                client.get("k")
            except redpool.PoolTimeoutError:
                pass

        assert count_while(wait_for_pool) > 100


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
