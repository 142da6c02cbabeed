"""Demo data for ``idp demo``: one verified resident, a small municipal register and the example
departments' clients, created idempotently through the ordinary services."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from idp.extensions import db
from idp.models import AccountLink, Client, MunicipalAccount, User
from idp.services import accounts, audit, directory, identifiers
from idp.services.clients import create_client

DEMO_EMAIL = "thandi@example.org"
DEMO_PASSWORD = "ubuntu-table-mountain-2026"
DEMO_NAME = "Thandi Nkosi"
CLIENTS_FILE = "demo-clients.json"
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


@dataclass(frozen=True)
class Department:
    """An example department app (relying_party_examples/<slug>), described by its department.json."""
    slug: str
    name: str
    port: int
    purpose: str
    scope: str
    category: str
    keywords: str


def find_departments(folder: Path) -> list[Department]:
    """Every example department under ``folder`` (each ``<slug>/department.json``), by port: a new
    department joins the demo by adding its folder, with no change to the IdP."""
    found = []
    for path in sorted(folder.glob("*/department.json")):
        try:
            data = json.loads(path.read_text())
            found.append(Department(slug=path.parent.name, **{k: data[k] for k in (
                "name", "port", "purpose", "scope", "category", "keywords")}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid department description ({exc})") from None
    return sorted(found, key=lambda d: d.port)


@dataclass
class DemoClient:
    client_id: str
    client_secret: str
    base_url: str

    @property
    def api_resource(self) -> str:
        return f"{self.base_url}/api"


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


def seed_departments(instance_path: str, departments: list[Department],
                     base_urls: dict[str, str]) -> dict[str, DemoClient]:
    """The demo departments' confidential clients (first-party city services with an API each).
    Secrets are shown only once at creation, so they are kept in ``<instance>/demo-clients.json``
    (mode 0600) and reused on the next start; registrations follow the apps to new ports."""
    path = Path(instance_path) / CLIENTS_FILE
    saved = _read(path)
    result = {}
    for department in departments:
        base = base_urls[department.slug].rstrip("/")
        wanted = {"redirect_uris": [f"{base}/callback"], "post_logout_redirect_uris": [f"{base}/"],
                  "backchannel_logout_uri": f"{base}/backchannel-logout", "scope": department.scope,
                  "api_resource": f"{base}/api", "name": department.name, "first_party": True}
        known = saved.get(department.slug) or {}
        client = db.session.scalar(db.select(Client).where(Client.client_id == known.get("client_id")))
        if client is None or not known.get("client_secret"):
            stale = db.session.scalar(db.select(Client).where(Client.api_resource == wanted["api_resource"]))
            if stale is not None:
                stale.api_resource = None  # a client whose secret was lost gives its API name up
            client, secret = create_client(
                department.name, wanted["redirect_uris"], post_logout_redirect_uris=wanted["post_logout_redirect_uris"],
                backchannel_logout_uri=wanted["backchannel_logout_uri"], scope=department.scope,
                grant_types=["authorization_code", "refresh_token", "client_credentials"], first_party=True,
                api_resource=wanted["api_resource"])
            audit.record("client.created", client_id=client.client_id, via="demo")
            known = {"client_id": client.client_id, "client_secret": secret}
            saved[department.slug] = known
            _write(path, saved)
        else:
            for field, value in wanted.items():
                setattr(client, field, value)
        client.purpose = department.purpose
        directory.set_listing(client, listed=True, category=department.category, service_url=f"{base}/",
                              keywords=department.keywords)
        result[department.slug] = DemoClient(known["client_id"], known["client_secret"], base)
    return result


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
