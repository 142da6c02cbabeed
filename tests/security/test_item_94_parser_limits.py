"""Checklist 94: parser limits. Oversized bodies (a 10 MB form), deeply nested JSON, JWS tokens
with huge segments (Authlib CVE-2025-61920) as a client assertion or id_token_hint, and a
compressed JWE "zip bomb" are refused with 400/401/413, never a 500 and never by inflating them
(no unbounded memory)."""
from __future__ import annotations

import base64
import json
import tracemalloc
import zlib

import pytest

from tests.conftest import csrf_token
from tests.support.oidc import make_client


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _huge_jws(size: int) -> str:
    header = _b64(json.dumps({"alg": "RS256", "kid": "k" * 10}).encode())
    return f"{header}.{_b64(b'x' * size)}.{_b64(b's' * 256)}"


def _zip_bomb_jwe() -> str:
    header = _b64(json.dumps({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}).encode())
    bomb = zlib.compress(b"\0" * (50 * 1024 * 1024), 9)  # 50 MB of zeros in ~50 kB
    return ".".join([header, "", _b64(b"\0" * 12), _b64(bomb), _b64(b"\0" * 16)])


def test_item_94_a_10_mb_form_is_413(app, client):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "email": "a@example.org",
                                           "password": "x" * (10 * 1024 * 1024)})
    assert response.status_code == 413
    body = client.post("/token", data={"grant_type": "client_credentials", "scope": "x" * (10 * 1024 * 1024)})
    assert body.status_code == 413


@pytest.mark.parametrize("path", ["/login/passkey", "/login/passkey/options?mode=passwordless"])
def test_item_94_deeply_nested_json_is_400(app, client, path):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    nested = "[" * 200_000 + "]" * 200_000
    response = client.post(path, data=nested, content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code in (400, 413) or (path.endswith("passwordless") and response.status_code == 200)
    deep_object = '{"credential":' * 50_000 + "1" + "}" * 50_000
    response = client.post(path, data=deep_object, content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code in (400, 413) or (path.endswith("passwordless") and response.status_code == 200)


def test_item_94_oversized_client_assertion_is_refused_without_a_500(app, client):
    client_id, _ = make_client(app)
    for assertion in (_huge_jws(300 * 1024), _zip_bomb_jwe(), "a." * 20_000):
        tracemalloc.start()
        response = client.post("/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert response.status_code in (400, 401, 413)
        assert response.get_json()["error"] in ("invalid_client", "invalid_request")
        assert peak < 40 * 1024 * 1024  # the 50 MB bomb was never inflated


def test_item_94_oversized_id_token_hint_is_refused_without_a_500(app, client):
    for hint in (_huge_jws(300 * 1024), _zip_bomb_jwe()):
        tracemalloc.start()
        response = client.post("/logout/end-session", data={"id_token_hint": hint})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert response.status_code in (200, 400, 413)
        assert "Location" not in response.headers or response.headers["Location"].startswith("/")
        assert peak < 40 * 1024 * 1024
