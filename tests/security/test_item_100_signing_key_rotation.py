"""Checklist 100: signing-key rotation. A rotated-in key must appear in the JWKS at least the JWKS
cache lifetime before it signs anything (a department holding a cached key set never meets an
unknown kid), tokens signed by the previous key keep verifying until they expire, the old key then
leaves the JWKS, kids are unique, and an emergency rotation withdraws the old key at once."""
from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from idp.config import ConfigError, load_settings
from idp.extensions import db
from idp.models import SigningKey
from idp.services import keys
from tests.support.oidc import exchange, get_code, pkce_pair, verifies


def _jwks(client) -> dict:
    return client.get("/jwks.json").get_json()


def _cache_ttl(client) -> int:
    return int(re.search(r"max-age=(\d+)", client.get("/jwks.json").headers["Cache-Control"]).group(1))


def _id_token(app, client, client_id, secret) -> str:
    verifier, challenge = pkce_pair()
    return exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()["id_token"]


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def _pass_time(app, seconds: int) -> None:
    """Move every key's timestamps ``seconds`` into the past (as if that much time had passed)."""
    delta = timedelta(seconds=seconds)
    with app.app_context():
        for row in db.session.scalars(db.select(SigningKey)):
            for field in ("created_at", "activates_at", "retired_at", "publish_until"):
                if getattr(row, field) is not None:
                    setattr(row, field, getattr(row, field) - delta)
        db.session.commit()
    app.extensions.pop(keys.CACHE, None)


def test_item_100_new_key_is_published_a_cache_lifetime_before_it_signs(app, client, rp):
    client_id, secret = rp
    cached_by_rp = _jwks(client)  # a department fetched the key set before the rotation
    old_kid = cached_by_rp["keys"][0]["kid"]
    with app.app_context():
        record = keys.rotate()
        new_kid = record.kid
        prepublish = app.config["IDP_SETTINGS"].key_prepublish_seconds
        assert (record.activates_at - record.created_at).total_seconds() >= _cache_ttl(client)
    assert prepublish >= _cache_ttl(client)
    assert {k["kid"] for k in _jwks(client)["keys"]} == {old_kid, new_kid}  # published at once

    # During the cache lifetime the old key still signs: the department's cached set verifies all.
    during = _id_token(app, client, client_id, secret)
    assert _kid(during) == old_kid and verifies(during, cached_by_rp)
    _pass_time(app, _cache_ttl(client) - 1)
    assert _kid(_id_token(app, client, client_id, secret)) == old_kid
    refreshed_by_rp = _jwks(client)  # the department's cache expired: it fetches the set again

    _pass_time(app, prepublish - _cache_ttl(client) + 2)  # the new key now signs
    after = _id_token(app, client, client_id, secret)
    assert _kid(after) == new_kid and verifies(after, refreshed_by_rp)
    # Tokens the old key signed keep verifying against the live JWKS until they expire.
    assert old_kid in {k["kid"] for k in _jwks(client)["keys"]} and verifies(during, _jwks(client))

    settings = app.config["IDP_SETTINGS"]
    _pass_time(app, max(settings.id_token_lifetime, settings.access_token_lifetime) + 301)
    assert [k["kid"] for k in _jwks(client)["keys"]] == [new_kid]  # removed afterwards
    assert not verifies(during, _jwks(client))
    with app.app_context():
        assert db.session.scalar(db.select(SigningKey).where(SigningKey.kid == old_kid)).state(
            keys.utcnow()) == "retired"


def test_item_100_prepublication_shorter_than_the_jwks_cache_is_refused(tmp_path):
    base = {"IDP_ENV": "test", "IDP_SECRET_KEY": "x" * 40, "IDP_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).key_prepublish_seconds == 900
    with pytest.raises(ConfigError) as refused:
        load_settings({**base, "IDP_KEY_PREPUBLISH_SECONDS": "60"})
    assert "IDP_KEY_PREPUBLISH_SECONDS" in str(refused.value) and "60" not in str(refused.value).split(":")[0]


def test_item_100_kids_stay_unique_and_only_one_key_signs(app, client):
    _jwks(client)
    with app.app_context():
        for _ in range(4):
            keys.rotate()
            _pass_time(app, 1)
        rows = list(db.session.scalars(db.select(SigningKey)))
        assert len({r.kid for r in rows}) == len(rows) == 5
        assert sum(r.state(keys.utcnow()) == "signing" for r in rows) == 1
    published = [k["kid"] for k in _jwks(client)["keys"]]
    assert len(published) == len(set(published))


def test_item_100_emergency_rotation_signs_at_once_and_withdraws_the_old_key(app, client, rp):
    client_id, secret = rp
    before = _id_token(app, client, client_id, secret)
    old_kid = _kid(before)
    result = app.test_cli_runner().invoke(args=["keys", "rotate", "--now"], catch_exceptions=False)
    assert result.exit_code == 0
    new_kid = re.search(r"new signing key (\S+)", result.output).group(1)
    assert [k["kid"] for k in _jwks(client)["keys"]] == [new_kid]
    assert _kid(_id_token(app, client, client_id, secret)) == new_kid
    assert not verifies(before, _jwks(client))
    # An ID token signed by the withdrawn key is no longer a valid logout hint: the OP asks first.
    page = client.get("/logout/end-session?" + urlencode({"id_token_hint": before}))
    assert page.status_code == 200 and b"Sign out?" in page.data and old_kid not in _jwks(client).__repr__()
