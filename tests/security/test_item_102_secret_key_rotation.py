"""Checklist 102: itsdangerous/Flask secret rotation and compromise drill. IDP_SECRET_KEY is rotated
with the old key in IDP_SECRET_KEY_FALLBACKS: what the old key signed (CSRF tokens in open forms)
keeps verifying during the overlap and what it sealed (signing keys, authenticator secrets) or
digested (recovery codes) stays usable; once the old key is dropped (or in an emergency rotation
without fallback) the old signed values fail at once with a clean "form expired" page, nothing done."""
from __future__ import annotations

import pytest

from idp import create_app
from idp.config import ConfigError, load_settings
from idp.extensions import db
from idp.models import User, UserSession
from idp.services import recovery_codes, totp
from tests.conftest import csrf_token, make_settings, migrated_app
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair

OLD = "old-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW = "new-secret-key-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _sibling(first, tmp_path, smtp_port, **overrides):
    """Another process of the same deployment (same database and store) with other secrets."""
    settings = first.config["IDP_SETTINGS"]
    app = create_app(make_settings(tmp_path, settings.database_url, smtp_port, **overrides))
    app.extensions["idp.store"] = app.session_interface.store = first.extensions["idp.store"]
    return app


def _same_browser(source, app):
    browser = app.test_client()
    browser.set_cookie("idp_session", source.get_cookie("idp_session").value)
    return browser


def _live_sessions(app) -> int:
    with app.app_context():
        return db.session.query(UserSession).filter(UserSession.ended_at.is_(None)).count()


@pytest.fixture
def before_rotation(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port, IDP_SECRET_KEY=OLD) as app:
        try:
            yield app
        finally:
            app.extensions["idp.store"].flush()


def test_item_102_old_secret_keeps_working_during_the_overlap(before_rotation, tmp_path, smtp_server):
    old_app = before_rotation
    client_id, secret = make_client(old_app)
    make_user(old_app)
    browser = old_app.test_client()
    login(browser)
    form_token = csrf_token(browser.get("/account/").get_data(as_text=True))  # a form left open
    old_jwks = browser.get("/jwks.json").get_json()
    with old_app.app_context():
        user = db.session.scalar(db.select(User))
        totp_secret = totp.begin_enrolment(user)
        codes = recovery_codes.generate(user)

    rotated = _sibling(old_app, tmp_path / "new", smtp_server.port, IDP_SECRET_KEY=NEW, IDP_SECRET_KEY_FALLBACKS=OLD)
    with rotated.app_context():  # data sealed and digested under the old key stays usable
        user = db.session.scalar(db.select(User))
        assert totp.pending_secret(user) == totp_secret
        assert recovery_codes.use(user, codes[0]) is True
    same = _same_browser(browser, rotated)
    assert same.get("/jwks.json").get_json() == old_jwks
    verifier, challenge = pkce_pair()
    tokens = exchange(same, client_id, secret, get_code(same, client_id, challenge), verifier)
    assert tokens.status_code == 200 and "id_token" in tokens.get_json()  # the sealed signing key opens
    signed_out = same.post("/logout", data={"csrf_token": form_token})  # the old form still submits
    assert signed_out.status_code in (302, 303) and _live_sessions(rotated) == 0


@pytest.mark.parametrize("fallbacks", ["", "another-retired-key-0123456789-abcdefghijkl"])
def test_item_102_without_the_old_key_old_forms_fail_cleanly(before_rotation, tmp_path, smtp_server, fallbacks):
    old_app = before_rotation
    make_user(old_app)
    browser = old_app.test_client()
    login(browser)
    form_token = csrf_token(browser.get("/account/").get_data(as_text=True))

    emergency = _sibling(old_app, tmp_path / "new", smtp_server.port, IDP_SECRET_KEY=NEW,
                         IDP_SECRET_KEY_FALLBACKS=fallbacks)
    same = _same_browser(browser, emergency)
    refused = same.post("/logout", data={"csrf_token": form_token})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "Your form expired" in html
    assert "Traceback" not in html and "BadSignature" not in html and OLD not in html and NEW not in html
    assert _live_sessions(emergency) == 1  # nothing was done with the stale form
    # The page the resident reloads carries a token signed with the new key, which works.
    new_token = csrf_token(same.get("/account/").get_data(as_text=True))
    assert new_token != form_token
    assert same.post("/logout", data={"csrf_token": new_token}).status_code in (302, 303)
    assert _live_sessions(emergency) == 0


def test_item_102_fallback_keys_are_validated_and_never_echoed(tmp_path):
    base = {"IDP_ENV": "test", "IDP_SECRET_KEY": NEW, "IDP_INSTANCE_PATH": str(tmp_path)}
    assert load_settings({**base, "IDP_SECRET_KEY_FALLBACKS": f"{OLD}, {OLD[::-1]}"}).secret_key_fallbacks == (OLD, OLD[::-1])
    with pytest.raises(ConfigError) as refused:
        load_settings({**base, "IDP_SECRET_KEY_FALLBACKS": f"{OLD},short-secret"})
    assert "IDP_SECRET_KEY_FALLBACKS" in str(refused.value)
    assert "short-secret" not in str(refused.value) and OLD not in str(refused.value)
