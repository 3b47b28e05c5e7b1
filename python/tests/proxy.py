"""A loopback TCP proxy for tests that delays every chunk the server sends back by a random 0 to
``max_delay`` seconds, so replies arrive late and in pieces; or, while ``dribble`` is set, forwards
what the server sends one byte at a time, ``dribble`` seconds apart (a server or network that
dribbles a reply). Stops cleanly (no thread or socket left behind)."""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import List, Optional


class DelayProxy:
    def __init__(self, target_port: int, max_delay: float = 0.0,
                 dribble: Optional[float] = None) -> None:
        self.target_port = target_port
        self.max_delay = max_delay
        #: Seconds between the server's bytes, forwarded one at a time (None: off). May be
        #: changed at any time; it applies from the next chunk the server sends.
        self.dribble = dribble
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: List[socket.socket] = []
        self.threads: List[threading.Thread] = []
        self.lock = threading.Lock()
        self.stopped = False
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed by stop()
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for s in (client, upstream):  # no Nagle: the split pieces go out at once
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if self.stopped:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            self._spawn(self._pump, client, upstream, False)
            self._spawn(self._pump, upstream, client, True)

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while True:
                data = source.recv(4096)
                if not data:
                    break
                dribble = self.dribble if from_server else None
                if dribble:
                    for index in range(len(data)):
                        time.sleep(dribble)
                        if self.stopped:
                            return
                        sink.sendall(data[index:index + 1])
                    continue
                max_delay = self.max_delay if from_server else 0.0
                # Split the chunk too, so a reply can arrive in several pieces.
                cut = random.randint(0, len(data))
                for piece in (data[:cut], data[cut:]):
                    if max_delay:
                        time.sleep(random.uniform(0, max_delay))
                    if piece:
                        sink.sendall(piece)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            sockets, threads = list(self.sockets), list(self.threads)
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        except OSError:
            pass
        self.listener.close()
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout=10)
        for s in sockets:
            s.close()
