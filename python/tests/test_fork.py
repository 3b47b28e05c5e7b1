"""Fork safety: after os.fork() and under multiprocessing's fork start method, a child uses its
own connections and the parent's keep working, untouched."""

from __future__ import annotations

import multiprocessing
import os

import redpool

# Module level, so multiprocessing's forked workers inherit it (the common pattern).
_client = None


def _child_work(i: int) -> str:
    assert _client is not None
    _client.set(f"mp:{i}", os.getpid())
    return _client.get(f"mp:{i}").decode()


def connection_ids(oracle, name: str):
    return sorted(c["id"] for c in oracle.client_list() if c["name"] == name)


def test_os_fork_child_gets_its_own_connections(server, oracle):
    client = redpool.Redis.from_url(server.url, client_name="fork-test", shared_pool=False)
    client.set("k", "parent")
    parent_ids = connection_ids(oracle, "fork-test")
    assert len(parent_ids) == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 1
        try:
            ok = client.get("k") == b"parent" and client.set("k", "child")
            ok = ok and client.pool_stats()["connections_closed"]["forked"] == 1
            os.write(write, b"ok" if ok else b"bad")
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert report == b"ok" and status == 0
    assert client.get("k") == b"child"  # the parent's connection is still in step
    # The parent's connection was neither closed nor used by the child.
    assert parent_ids[0] in connection_ids(oracle, "fork-test")
    assert client.pool_stats()["connections_created"] == 1


def test_multiprocessing_fork_workers(server, oracle):
    global _client
    _client = redpool.Redis.from_url(server.url, client_name="mp-parent")
    _client.ping()
    before = connection_ids(oracle, "mp-parent")
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        results = pool.map(_child_work, range(40))
    assert len(results) == 40 and all(r.isdigit() for r in results)
    assert len(set(results)) > 1 or os.cpu_count() == 1
    assert all(pid != str(os.getpid()) for pid in results)
    assert _client.ping()
    assert before[0] in connection_ids(oracle, "mp-parent")
