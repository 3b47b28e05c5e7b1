"""Test helpers: throwaway redis-server processes on free 127.0.0.1 ports (never anything
else), with an oracle client (redis-py, on its own sockets) that does not trust redpool."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

import pytest
import redis

PASSWORD = "s3cr3t-Pa55word"

# URL query for tests that check the health report's plumbing, not latency: the default
# thresholds (degraded at a 50 ms PING, unhealthy at 100 ms) are crossed on a loaded machine.
RELAXED_HEALTH = "?health_degraded_latency=10s&health_unhealthy_latency=20s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server child process; ``stop()`` shuts it down and reaps it."""

    def __init__(self, directory: Path, extra: Optional[List[str]] = None) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (tests/run.sh installs it)")
        self.directory = directory
        self.extra = extra or []
        self.password = PASSWORD if "--requirepass" in self.extra else None
        self.process: Optional[subprocess.Popen] = None
        for _ in range(5):  # a free port can be taken before redis binds it
            self.port = free_port()
            if self._start():
                return
        pytest.fail(f"redis-server did not start: {self.log()}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def _start(self) -> bool:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--logfile",
             str(self.directory / "redis.log"), "--enable-debug-command", "local", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process.wait()
                return False
            try:
                if self.oracle().ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        return False

    def oracle(self, **kwargs) -> redis.Redis:
        """A redis-py client on its own sockets: the reference the tests trust."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           socket_timeout=10, **kwargs)

    def stop_process(self) -> None:
        """Freezes the server with SIGSTOP and waits (at most 5 s) until /proc shows state T;
        the kernel still completes TCP connects to it, replies never come."""
        os.kill(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server {self.process.pid} not stopped 5 s after SIGSTOP")
            time.sleep(0.005)

    def cont_process(self) -> None:
        """Resumes a server frozen by :meth:`stop_process` (SIGCONT)."""
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.cont_process()  # a stopped server would not act on SIGTERM
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
