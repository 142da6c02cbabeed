"""A real SMTP server (aiosmtpd) running in the test process, collecting what arrives."""
from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Callables that wait until an application's queued mail went out; test fixtures register them.
SETTLE: list = []

class _Collector:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"


class SmtpServer:
    """Start with :meth:`start`; read :attr:`messages`; :meth:`wait_for` a message to an address."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        return self._collector.messages

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def clear(self) -> None:
        """Forget the messages so far, once every application has sent what it had queued (a late
        message of an earlier step would otherwise look like one of the next)."""
        for settle in list(SETTLE):
            settle()
        with self._collector.lock:
            self._collector.messages.clear()

    def wait_for(self, to: str, timeout: float = 10.0, subject_contains: str = ""):
        """The newest message to ``to`` (waiting up to ``timeout`` seconds for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._collector.lock:
                for message in reversed(self._collector.messages):
                    if to.lower() in str(message["To"]).lower() and subject_contains in str(message["Subject"]):
                        return message
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to} arrived")


def body_of(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content()


def first_link(message) -> str:
    """The first http(s) URL in a message's text."""
    match = re.search(r"https?://\S+", body_of(message))
    assert match, "the message has no link"
    return match.group(0)
