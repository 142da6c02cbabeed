"""The ``sms_gateway`` fixture: a fresh local SMS gateway per test (imported by tests/conftest.py)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from tests.support.sms_gateway import GatewayServer

GATEWAY_AUTH = "Bearer test-gateway-key"


@contextmanager
def running_gateway(expected_auth: str):
    """A started :class:`GatewayServer` that expects ``Authorization: <expected_auth>``."""
    gateway = GatewayServer(expected_auth=expected_auth).start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def sms_gateway():
    """A running gateway expecting ``Authorization: Bearer test-gateway-key``."""
    with running_gateway(GATEWAY_AUTH) as gateway:
        yield gateway
