"""The conformance suite's Python driver: runs every scenario of ``tests/conformance/*.json``
(operations and expected outcomes, the same files the C and Node drivers run; the format is in
``tests/conformance/README.md``) through the redis-py compatible API a Python user calls:
``redpool.Redis(...)``, ``execute_command``, ``pipeline``, ``pool_stats``, ``metrics``,
``breaker_state``, ``health``, and ``redpool.asyncio`` for commands sent together. A scenario listed under ``known_divergence.python`` must fail
(an expected failure); if it passes, the entry is stale and the test fails."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import redpool
import redpool.asyncio
from support import RedisServer, free_port

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "tests" / "conformance").glob("*.json"))

#: The one table of this driver: each language-neutral ErrorKind name and the exception class a
#: Python program catches for it. An error is reported as the kind of its most derived class
#: (``AuthenticationError`` is also a ``ConnectionError``, as in redis-py).
KINDS: Dict[str, type] = {
    "connection": redpool.ConnectionError,
    "timeout": redpool.TimeoutError,
    "pool_exhausted": redpool.PoolTimeoutError,
    "circuit_open": redpool.CircuitOpenError,
    "auth": redpool.AuthenticationError,
    "response": redpool.ResponseError,
    "protocol": redpool.ProtocolError,
    "invalid_argument": redpool.ConfigError,
    "closed": redpool.PoolClosedError,
}


class Failure(Exception):
    """A call failed: its neutral kind and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def kind_of(error: BaseException) -> str:
    """The neutral kind of an exception: the kind whose class is the most derived one it is."""
    candidates = [kind for kind, cls in KINDS.items() if isinstance(error, cls)]
    for kind in candidates:
        if all(issubclass(KINDS[kind], KINDS[other]) for other in candidates):
            return kind
    return f"{type(error).__name__} (kinds {candidates})"


def call(function, *args: Any, **kwargs: Any) -> Any:
    """Runs a call; an exception becomes a :class:`Failure` with its neutral kind."""
    try:
        return function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - every exception is an outcome to compare
        raise Failure(kind_of(error), str(error)) from error


def neutral(value: Any) -> Any:
    """A reply as the scenarios write it: an error element as ``{"error": kind, ...}``."""
    if isinstance(value, BaseException):
        return {"error": kind_of(value), "message": str(value)}
    if isinstance(value, (list, tuple)):
        return [neutral(v) for v in value]
    return value


def matches(want: Any, got: Any) -> bool:
    if isinstance(want, dict) and "error" in want:
        return isinstance(got, dict) and got.get("error") == want["error"]
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(map(matches, want, got))
    return want == got and type(want) is type(got)


def check(expect: Optional[Dict[str, Any]], outcome: Any) -> None:
    """Compares an outcome (a value or a :class:`Failure`) with an ``expect`` object."""
    expect = expect or {}
    if isinstance(outcome, Failure):
        assert "error" in expect, f"failed with {outcome}"
        assert outcome.kind == expect["error"], f"expected a {expect['error']} error, got {outcome}"
        if "message_contains" in expect:
            assert expect["message_contains"] in outcome.message, outcome.message
        if "message_excludes" in expect:
            assert expect["message_excludes"] not in outcome.message, outcome.message
        return
    assert "error" not in expect, f"expected a {expect['error']} error, got {outcome!r}"
    if "reply" in expect:
        assert matches(expect["reply"], outcome), f"expected reply {expect['reply']!r}, got {outcome!r}"
    if "reply_contains" in expect:
        assert expect["reply_contains"] in outcome, outcome


def outcome_of(function, *args: Any) -> Any:
    try:
        return neutral(call(function, *args))
    except Failure as failure:
        return failure


class FakeServer:
    """A loopback listener that answers each chunk it reads with fixed bytes; ``stop()`` ends
    it and its links."""

    def __init__(self, reply: str) -> None:
        self.reply = reply.encode()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                link, _ = self.listener.accept()
            except socket.timeout:
                continue
            thread = threading.Thread(target=self._answer, args=(link,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _answer(self, link: socket.socket) -> None:
        link.settimeout(0.05)
        with link:
            while not self.stopping.is_set():
                try:
                    if not link.recv(4096):
                        return
                    link.sendall(self.reply)
                except socket.timeout:
                    continue
                except OSError:
                    return

    def stop(self) -> None:
        self.stopping.set()
        for thread in list(self.threads):
            thread.join(timeout=5)
        self.listener.close()


class Scenario:
    """One scenario's server and client."""

    def __init__(self, spec: Dict[str, Any], tmp_path: Path) -> None:
        self.spec = spec
        self.redis: Optional[RedisServer] = None
        self.fake: Optional[FakeServer] = None
        self.held: Any = None
        kind = spec["server"]["kind"]
        if kind == "redis":
            self.redis = RedisServer(tmp_path)
            oracle = self.redis.oracle()
            for command in spec["server"].get("setup", []):
                oracle.execute_command(*command)
            oracle.close()
            self.port = self.redis.port
        elif kind == "fake":
            self.fake = FakeServer(spec["server"]["reply"])
            self.port = self.fake.port
        else:
            assert kind == "nothing_listening", kind
            self.port = free_port()

    def open(self) -> Any:
        """``redpool.Redis`` with the scenario's knobs as ``options`` (its own pool)."""
        address: Dict[str, Any] = {"port": self.port}
        if self.spec.get("host") != "default":
            address["host"] = "127.0.0.1"
        return outcome_of(lambda: redpool.Redis(**address, decode_responses=True,
                                                shared_pool=False, options=self.spec["knobs"]))

    def step(self, client: redpool.Redis, step: Dict[str, Any]) -> None:
        op, expect = step["op"], step.get("expect")
        if op == "command":
            check(expect, outcome_of(client.execute_command, *step["args"]))
        elif op in ("pipeline", "transaction"):
            def run_pipeline() -> List[Any]:
                pipe = client.pipeline(transaction=op == "transaction")
                for command in step["commands"]:
                    pipe.execute_command(*command)
                return pipe.execute(raise_on_error=False)
            check(expect, outcome_of(run_pipeline))
        elif op == "together":
            async def run_together() -> List[Any]:
                together = redpool.asyncio.Redis.from_pool(client.connection_pool)
                return await asyncio.gather(*(together.execute_command(*command)
                                              for command in step["commands"]),
                                            return_exceptions=True)
            outcomes = asyncio.run(run_together())
            assert len(outcomes) == len(expect["outcomes"])
            for want, got in zip(expect["outcomes"], outcomes):
                if isinstance(got, Exception):
                    got = Failure(kind_of(got), str(got))
                check(want, got)
        elif op == "hold":
            self.held = client.pipeline()
            call(self.held.watch, "conformance:held")  # a WATCH session keeps its connection
        elif op == "acquire":
            timeout = step.get("timeout_ms")
            conn = outcome_of(client.acquire, None if timeout is None else timeout / 1000,
                              step.get("priority", "normal"))
            if isinstance(conn, Failure):
                check(expect, conn)
            else:
                check(expect, None)
                try:
                    for command in step.get("commands", []):
                        check(command.get("expect", {}),
                              outcome_of(conn.execute_command, *command["args"]))
                finally:
                    conn.release()
        elif op == "release":
            self.held.reset()
            self.held = None
        elif op == "disconnect":
            call(client.connection_pool.disconnect)
        elif op == "close":
            call(client.close)
        elif op == "stop_server":
            self.redis.stop_process()
        elif op == "continue_server":
            self.redis.cont_process()
        elif op == "sleep":
            time.sleep(step["ms"] / 1000)
        elif op == "stats":
            stats = client.pool_stats()
            for field, want in expect.items():
                assert field in stats, f"no stats field {field}"
                assert stats[field] == want, f"stats {field}: expected {want}, got {stats[field]}"
        elif op == "metrics":
            families = {line.split()[2] for line in client.metrics().splitlines()
                        if line.startswith("# TYPE ")}
            missing = [f for f in expect["families"] if f not in families]
            assert not missing, f"missing families {missing}"
        elif op == "breaker":
            assert client.breaker_state() == expect
        elif op == "health":
            assert client.health()["status"] == expect
        else:
            raise AssertionError(f"unknown op {op}")

    def run(self) -> None:
        client = self.open()
        if isinstance(client, Failure):
            check(self.spec.get("open"), client)
            return
        check(self.spec.get("open"), None)
        try:
            for number, step in enumerate(self.spec["steps"], 1):
                try:
                    self.step(client, step)
                except (AssertionError, Failure) as error:
                    raise AssertionError(f"step {number} ({step['op']}): {error}") from error
        finally:
            if self.held is not None:
                self.held.reset()
            client.close()

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.fake is not None:
            self.fake.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path, tmp_path: Path) -> None:
    spec = json.loads(path.read_text())
    divergence = spec.get("known_divergence", {}).get("python")
    scenario = Scenario(spec, tmp_path)
    try:
        scenario.run()
    except AssertionError as error:
        if divergence is None:
            raise
        pytest.xfail(f"{divergence}: {error}")
    finally:
        scenario.stop()
    assert divergence is None, f"passes, but known_divergence.python says {divergence!r}: remove it"


def test_there_are_scenarios() -> None:
    assert SCENARIOS, "no scenario in tests/conformance"
