"""Demo data for ``idp demo``: one verified resident and one department client, created
idempotently through the ordinary services."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from idp.extensions import db
from idp.models import AccountLink, Client, MunicipalAccount, User
from idp.services import accounts, audit, identifiers

DEMO_EMAIL = "thandi@example.org"
DEMO_PASSWORD = "ubuntu-table-mountain-2026"
DEMO_NAME = "Thandi Nkosi"
DEMO_CLIENT_NAME = "Demo department"
CLIENT_FILE = "demo-client.json"
CLIENT_SCOPE = "openid profile email phone municipal_accounts offline_access"
DEMO_HOLDER_ID = "8001015009087"
# (account number, type, holder, address, erf, linking PIN, link to the demo resident as role or None)
DEMO_REGISTER = [
    ("4001234568", "residential", "T Nkosi", "14 Bree Street, Cape Town", "ERF 7745", "4821", "owner"),
    ("4009876543", "residential", "M Adams", "3 Kloof Road, Sea Point", "ERF 1902", "7310", "tenant"),
    ("5003141594", "residential", "T Nkosi", "8 Main Road, Observatory", "ERF 5521", "2468", None),
    ("6007654327", "business", "Bo-Kaap Bakery (Pty) Ltd", "21 Wale Street, Bo-Kaap", "ERF 311", "1357", None),
    ("7002718281", "managing_agent", "Harbour Property Managers", "1 Dock Road, V&A Waterfront", "ERF 99", "9753",
     None),
]
DEMO_LINKABLE = ("5003141594", "2468")  # shown in the demo banner: link it through the hosted pages


class ClientsUnavailable(Exception):
    """This build has no client registration service."""


@dataclass
class DemoClient:
    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str


def seed_resident() -> User:
    """The demo resident (created once, verified email)."""
    user = accounts.find_by_email(DEMO_EMAIL)
    if user is None:
        user = accounts.create_user(DEMO_EMAIL, DEMO_PASSWORD, name=DEMO_NAME, email_verified=True)
        audit.record("user.created", user_id=user.id, via="demo")
    return user


def seed_register(user: User) -> None:
    """A small municipal register, with two of its accounts linked to the demo resident (idempotent)."""
    for number, kind, holder, address, erf, pin, role in DEMO_REGISTER:
        account = db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == number))
        if account is None:
            account = MunicipalAccount(account_number=number, account_type=kind, holder_name=holder,
                                       service_address=address, erf_number=erf, status="active",
                                       holder_id_digest=identifiers.holder_id_digest(DEMO_HOLDER_ID),
                                       linking_pin_digest=identifiers.linking_pin_digest(pin))
            db.session.add(account)
            db.session.flush()
            if role:
                db.session.add(AccountLink(user_id=user.id, account_id=account.id, role=role,
                                           verification="id_number" if role == "owner" else "linking_pin"))
    db.session.commit()


def seed_department_client(instance_path: str, rp_base_url: str) -> DemoClient:
    """The confidential demo department client. Its secret is shown only once at creation, so it
    is kept in ``<instance>/demo-client.json`` (mode 0600) and reused on the next start."""
    try:
        from idp.services.clients import create_client
    except ModuleNotFoundError as exc:
        if exc.name != "idp.services.clients":
            raise
        raise ClientsUnavailable() from exc

    base = rp_base_url.rstrip("/")
    redirect_uri, logout_uri, backchannel_uri = f"{base}/callback", f"{base}/", f"{base}/backchannel-logout"
    path = Path(instance_path) / CLIENT_FILE
    saved = _read(path)
    client = None
    if saved:
        client = db.session.scalar(db.select(Client).where(Client.client_id == saved.get("client_id")))
    if client is None or not saved.get("client_secret"):
        client, secret = create_client(DEMO_CLIENT_NAME, [redirect_uri],
                                       post_logout_redirect_uris=[logout_uri], scope=CLIENT_SCOPE,
                                       backchannel_logout_uri=backchannel_uri)
        audit.record("client.created", client_id=client.client_id, via="demo")
        saved = {"client_id": client.client_id, "client_secret": secret}
        _write(path, saved)
    elif (client.redirect_uris != [redirect_uri] or client.post_logout_redirect_uris != [logout_uri]
          or client.scope != CLIENT_SCOPE or client.backchannel_logout_uri != backchannel_uri):
        # The demo app moved to another port, or this release offers more: follow it.
        client.redirect_uris = [redirect_uri]
        client.post_logout_redirect_uris = [logout_uri]
        client.scope = CLIENT_SCOPE
        client.backchannel_logout_uri = backchannel_uri
        db.session.commit()
    return DemoClient(saved["client_id"], saved["client_secret"], redirect_uri, logout_uri)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
