"""Checklist 39: password storage. Residents created through the real sign-up page, the CLI and a
password change have argon2id hashes with at least the OWASP parameters (m ≥ 19456 KiB, t ≥ 2) and
unique salts; raising the parameters upgrades a hash at the next sign-in; and the password appears
nowhere in clear: not in any database table (a full dump), not in the audit trail, not in the mail
queue and not in the logs."""
from __future__ import annotations

import logging

from sqlalchemy import text

from idp.extensions import db
from idp.models import User
from idp.services.passwords import Hasher
from tests.integration.test_signin_flows import login, make_user, register

SECRET_PHRASE = "zebra kloof lighthouse 4471"


def _params(stored: str) -> dict:
    # $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
    _, algorithm, version, params, salt, digest = stored.split("$")
    return {"alg": algorithm, "v": version, **{k: int(v) for k, v in (p.split("=") for p in params.split(","))},
            "salt": salt, "hash": digest}


def _dump(app) -> str:
    """Every value of every table, as text (what a database dump or backup would hold)."""
    chunks = []
    with app.app_context():
        with db.engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                    chunks.append(repr(tuple(row)))
    return "\n".join(chunks)


def test_item_39_hashes_are_argon2id_with_owasp_parameters_and_unique_salts(app):
    ids = [make_user(app, email=f"r{i}@example.org", password=SECRET_PHRASE) for i in range(3)]
    with app.app_context():
        hashes = [db.session.get(User, i).password_hash for i in ids]
    parsed = [_params(h) for h in hashes]
    for p in parsed:
        assert p["alg"] == "argon2id" and p["v"] == "v=19"
        assert p["m"] >= 19456 and p["t"] >= 2 and p["p"] >= 1
        assert len(p["salt"]) >= 22  # 16 random bytes, base64
    assert len({p["salt"] for p in parsed}) == 3 and len(set(hashes)) == 3


def test_item_39_parameter_bump_upgrades_the_hash_at_next_sign_in(app, client):
    make_user(app, email="amara@example.org", password=SECRET_PHRASE)
    stronger = Hasher(19456 * 2, 3, 1, 2)
    original = app.extensions["idp.hasher"]
    app.extensions["idp.hasher"] = stronger
    try:
        assert login(client, password=SECRET_PHRASE).status_code == 303
    finally:
        app.extensions["idp.hasher"] = original
    with app.app_context():
        upgraded = _params(db.session.scalar(db.select(User.password_hash)))
    assert upgraded["m"] == 19456 * 2 and upgraded["t"] == 3


def test_item_39_no_plaintext_in_database_audit_mail_queue_or_logs(app, client, smtp_server, caplog):
    caplog.set_level(logging.DEBUG)
    assert register(client, email="amara@example.org", password=SECRET_PHRASE).status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User))
        user.email_verified = True
        db.session.commit()
    assert login(client, password=SECRET_PHRASE).status_code == 303
    assert login(app.test_client(), password=SECRET_PHRASE + " typo").status_code == 401
    smtp_server.wait_for("amara@example.org")
    dump = _dump(app)
    assert "amara@example.org" in dump  # the dump is real
    for form in (SECRET_PHRASE, SECRET_PHRASE + " typo", SECRET_PHRASE.encode().hex()):
        assert form not in dump
        assert form not in caplog.text
    for message in smtp_server.messages:
        assert SECRET_PHRASE not in message.as_string()
