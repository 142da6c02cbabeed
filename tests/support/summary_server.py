"""A department's summary endpoint as a real HTTP server in the test process: answers a fixed
JSON body, optionally after a delay (a slow department), and records what it was asked."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        department = self.server.department
        department.asked.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
        time.sleep(department.delay)
        body = json.dumps(department.body).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the IdP gave up waiting
            pass


class SummaryServer:
    """``SummaryServer(body, delay).start()``; its API is at :attr:`api`."""

    def __init__(self, body: dict, delay: float = 0.0):
        self.body, self.delay = body, delay
        self.asked: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.department = self  # type: ignore[attr-defined]
        self.api = f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def start(self) -> "SummaryServer":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
