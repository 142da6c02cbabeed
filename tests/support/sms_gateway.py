"""A real HTTP SMS gateway in the test process: records every request and answers like a generic
JSON gateway (200 ``{"status": "queued"}``) or like Clickatell's One API (202 with per-message
results), or with whatever :meth:`GatewayServer.fail_with` asks for."""
from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from requests.structures import CaseInsensitiveDict

CODE = re.compile(r"\b\d{6}\b")


class _Handler(BaseHTTPRequestHandler):
    server_version = "TestSmsGateway/1.0"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_POST(self):
        self.server.gateway._handle(self)

    do_GET = do_PUT = do_DELETE = do_POST


class GatewayServer:
    """``GatewayServer(expected_auth).start()``; post to :attr:`url`; read :attr:`requests`."""

    def __init__(self, expected_auth: str | None = None):
        self.expected_auth = expected_auth
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._failure: tuple[int, dict | None] | None = None
        self._hang = 0.0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> GatewayServer:
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._server.daemon_threads = True
        self._server.gateway = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sms-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that hang
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def go_down(self) -> None:
        """Close the listening socket: connections to :attr:`url` are refused from now on."""
        self.stop()

    def come_up(self) -> None:
        """Listen again on the same port after :meth:`go_down`."""
        if self._server is None:
            self.start()

    # -- behaviour ----------------------------------------------------------------------------

    def fail_with(self, status: int, body: dict | None = None) -> None:
        """Answer following requests with ``status`` and ``body`` (JSON)."""
        with self._lock:
            self._failure = (status, body)

    def recover(self) -> None:
        """Answer successfully again, without delay."""
        with self._lock:
            self._failure = None
            self._hang = 0.0

    def hang(self, seconds: float) -> None:
        """Wait ``seconds`` before answering following requests (to provoke client timeouts)."""
        with self._lock:
            self._hang = seconds

    # -- reading what arrived -----------------------------------------------------------------

    def messages_to(self, number_e164: str) -> list[str]:
        """Texts of the messages the gateway took (2xx answers) for ``number_e164``, oldest first."""
        digits = number_e164.lstrip("+")
        texts = []
        with self._lock:
            recorded = list(self.requests)
        for request in recorded:
            body = request["json"]
            if request["status"] is None or not 200 <= request["status"] < 300 or not isinstance(body, dict):
                continue
            if isinstance(body.get("messages"), list):
                for message in body["messages"]:
                    if isinstance(message, dict) and str(message.get("to", "")).lstrip("+") == digits:
                        texts.append(message.get("content", ""))
            elif str(body.get("to", "")).lstrip("+") == digits:
                texts.append(body.get("text", ""))
        return texts

    def last_code_for(self, number_e164: str) -> str:
        """The six-digit code in the newest message to ``number_e164``."""
        for text in reversed(self.messages_to(number_e164)):
            found = CODE.findall(text)
            if found:
                return found[-1]
        raise AssertionError(f"no code was texted to …{number_e164[-3:]}")

    # -- request handling ---------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        record = {"method": handler.command, "path": handler.path,
                  "headers": CaseInsensitiveDict(handler.headers.items()), "json": body, "status": None}
        with self._lock:
            self.requests.append(record)
            failure, hang = self._failure, self._hang
        if hang and self._stopping.wait(hang):
            return
        if self.expected_auth is not None and handler.headers.get("Authorization") != self.expected_auth:
            status, answer = 401, {"error": {"code": 1, "description": "Invalid or missing API key."}}
        elif not isinstance(body, dict):
            status, answer = 400, {"error": {"code": 21, "description": "Payload data is malformed."}}
        elif failure is not None:
            status, answer = failure[0], failure[1] if failure[1] is not None else {"error": "gateway failure"}
        elif isinstance(body.get("messages"), list):
            status, answer = 202, {"messages": [
                {"apiMessageId": uuid.uuid4().hex, "accepted": True,
                 "to": message.get("to") if isinstance(message, dict) else None, "error": None}
                for message in body["messages"]], "error": None}
        else:
            status, answer = 200, {"status": "queued"}
        record["status"] = status
        payload = json.dumps(answer).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up (timeout)
            pass
