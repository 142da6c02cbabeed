"""Checklist 103: data at rest. After codes, tokens, a reset link, recovery codes, an authenticator
app, a client secret and a municipal PIN have been issued, a dump of every table holds none of them
(only digests, or ciphertext under a key outside the database), a TOTP secret cannot be recovered
from the dump alone, and the random values come from ``secrets`` (a 100k-sample smoke test of the
refresh-token generator and a sample of recovery codes: no repeats, full length, right alphabet)."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text

from idp.extensions import db
from idp.models import TotpCredential, User
from idp.services import action_tokens, recovery_codes, tokens, totp
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair
from tests.support.register import add_account, with_check_digit

ROOT = Path(__file__).resolve().parents[2]


def _dump(app) -> str:
    """Every value of every table, as a leaked database snapshot would hold them."""
    parts = []
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in row:
                    parts.append(value.hex() if isinstance(value, bytes) else str(value))
    return "\n".join(parts)


def test_item_103_a_database_dump_holds_no_usable_code_token_or_seed(app, client):
    client_id, client_secret = make_client(app)
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge)
    issued = exchange(client, client_id, client_secret, code, verifier).get_json()
    unused_code = get_code(client, client_id, pkce_pair()[1])
    with app.app_context():
        user = db.session.scalar(db.select(User))
        reset = action_tokens.issue(user.id, action_tokens.RESET_PASSWORD)
        codes = recovery_codes.generate(user)
        seed = totp.begin_enrolment(user)
    add_account(app, with_check_digit("812345678"), pin="8642")

    dump = _dump(app)
    raw_values = {"code": code, "unused code": unused_code, "access token": issued["access_token"],
                  "refresh token": issued["refresh_token"], "reset link": reset, "client secret": client_secret,
                  "TOTP seed": seed, "recovery code": codes[0], "recovery code (bare)": codes[0].replace("-", "")}
    found = [name for name, value in raw_values.items() if value in dump]
    assert found == []
    assert not re.search(r"\b8642\b", dump)  # the bill's linking PIN
    assert "PRIVATE KEY" not in dump

    # The sealed seed does not open with a key derived from anything in the dump.
    with app.app_context():
        sealed = db.session.scalar(db.select(TotpCredential.secret_encrypted))
    raw = base64.b64decode(sealed)
    for guess in (b"", b"ecitizen-passport", sealed.encode(), dump[:64].encode()):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ecitizen-passport", info=totp.PURPOSE.encode()).derive(guess)
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(raw[:12], raw[12:], totp.PURPOSE.encode())


def test_item_103_random_values_come_from_secrets_with_full_length_and_alphabet(app):
    source = "\n".join(p.read_text() for p in (ROOT / "idp").rglob("*.py"))
    assert not re.search(r"^\s*(?:import random|from random import)", source, re.M)
    assert "random.random(" not in source and "uuid.uuid1(" not in source

    samples = [tokens.new_refresh_token() for _ in range(100_000)]
    assert len(set(samples)) == len(samples)
    assert all(len(s) == 43 and re.fullmatch(r"[A-Za-z0-9_-]{43}", s) for s in samples)
    alphabet_seen = set("".join(samples[:2000]))
    assert len(alphabet_seen) == 64  # the whole URL-safe alphabet turns up

    make_user(app)
    with app.app_context():
        user = db.session.scalar(db.select(User))
        drawn = [c for _ in range(100) for c in recovery_codes.generate(user)]
    bare = [c.replace("-", "") for c in drawn]
    assert len(set(bare)) == len(bare)
    assert all(len(c) == recovery_codes.LENGTH and set(c) <= set(recovery_codes.ALPHABET) for c in bare)
    assert set("".join(bare)) == set(recovery_codes.ALPHABET)
