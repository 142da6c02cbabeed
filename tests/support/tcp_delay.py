"""A TCP proxy on 127.0.0.1 that injects latency: every chunk the backend (PostgreSQL, Redis) sends
back reaches the client ``delay`` seconds late, so each round trip costs at least that much more.
Standard library only (the benchmark uses it too). ``delay`` may be changed at any time, for the
connections already open too. ``stall()`` makes the backend look frozen: the connections stay open
and nothing more comes back, until ``resume()``."""
from __future__ import annotations

import socket
import threading
import time


class DelayProxy:
    """Listen on a free loopback port and forward to ``(host, port)`` with ``delay`` seconds added."""

    def __init__(self, host: str, port: int, delay: float):
        self.backend, self.delay = (host, port), delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="tcp-delay-accept", daemon=True).start()

    def stall(self) -> None:
        """Hold every answer from now on (the backend seems to hang)."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        for sock in [self.listener, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            backend = socket.create_connection(self.backend)
            for sock in (client, backend):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, backend]
            threading.Thread(target=self._pipe, args=(client, backend, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(backend, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, delayed: bool) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if delayed and self.delay:
                    time.sleep(self.delay)
                self._flowing.wait()
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
