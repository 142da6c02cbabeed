"""Checklist 14: Discovery / JWKS integrity. A deployment on an https issuer (configured with a
trailing slash, to provoke drift) publishes an ``issuer`` that matches the ID tokens byte-for-byte,
every endpoint on that same https origin, only S256 PKCE, only the code response type, no implicit
or password grant, and a JWKS with RSA and EC keys whose members are public only and whose ``kid``s
are unique."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from idp.services import keys
from tests.conftest import migrated_app

ISSUER = "https://id.example.gov.za"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


@pytest.fixture(scope="module")
def https_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("item14"), smtp_server.port, IDP_ISSUER=ISSUER + "/") as application:
        with application.app_context():
            keys.create_key("RS256")
            keys.create_key("ES256")
            keys.rotate()
        yield application


def _discovery(https_app) -> dict:
    response = https_app.test_client().get("/.well-known/openid-configuration", base_url=ISSUER)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_item_14_issuer_is_exact_and_every_endpoint_is_https_on_our_origin(https_app):
    metadata = _discovery(https_app)
    assert metadata["issuer"] == ISSUER  # no trailing-slash drift from the configured value
    endpoints = {name: value for name, value in metadata.items() if name.endswith(("_endpoint", "_uri"))}
    assert {"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint",
            "introspection_endpoint", "end_session_endpoint"} <= set(endpoints)
    for name, url in endpoints.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("https", "id.example.gov.za"), name
        assert url.startswith(ISSUER + "/") and "//" not in parts.path and not parts.query and not parts.fragment, name


def test_item_14_only_the_safe_flows_are_advertised(https_app):
    metadata = _discovery(https_app)
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]
    assert not {"implicit", "password"} & set(metadata["grant_types_supported"])
    assert set(metadata["id_token_signing_alg_values_supported"]) <= {"RS256", "ES256"}
    assert metadata["request_parameter_supported"] is False and metadata["request_uri_parameter_supported"] is False


def test_item_14_jwks_has_public_members_only_and_unique_kids(https_app):
    response = https_app.test_client().get("/jwks.json", base_url=ISSUER)
    assert response.status_code == 200
    published = response.get_json()["keys"]
    assert {key["kty"] for key in published} == {"RSA", "EC"} and len(published) >= 3
    kids = [key["kid"] for key in published]
    assert all(kids) and len(kids) == len(set(kids))
    for key in published:
        assert not PRIVATE_MEMBERS & set(key), key["kid"]
        assert key["kty"] in ("RSA", "EC") and key.get("use", "sig") == "sig"
    with https_app.app_context():
        assert keys.keyring().signing_kid in kids
