"""Checklist 70: linking concurrency, with real parallel requests against a running `idp serve`
(gunicorn threads, PostgreSQL and Redis). The same identity submitting the correct verifier for the
same account many times at once gets exactly one link (the database's unique constraint on
identity+account); every other request gets a clean 400 or 429, never a 500. Several identities at
once each get at most one link of their own, never a duplicate. (Unlike the checklist's single-holder
wording, the product lets an owner, tenants and agents hold one account, each proving it; item 68
covers the holders being told.)"""
from __future__ import annotations

import re
import subprocess
import sys
import threading

import pytest
import requests

from tests.support.databases import postgres_admin_url, redis_url
from tests.support.register import HOLDER_ID, with_check_digit
from tests.support.server import IdpServer

pytestmark = pytest.mark.e2e

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
PASSWORD = "a long enough resident passphrase"
SOLO, SHARED = with_check_digit("700000001"), with_check_digit("700000002")
PARALLEL = 4  # below every per-identity, per-number and per-address try limit


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp_server):
    if not (postgres_admin_url() and redis_url(2)):
        pytest.skip("needs IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL (real concurrency on PostgreSQL and Redis)")
    tmp = tmp_path_factory.mktemp("linking")
    idp = IdpServer(tmp, smtp_port=smtp_server.port, extra_env={"IDP_LINK_MAX_PER_IP": "1000"})
    idp.start()
    try:
        register = tmp / "register.csv"
        register.write_text("account_number,account_type,holder_name,service_address,holder_id_number,linking_pin\n"
                            f"{SOLO},residential,T Nkosi,1 Main Road,{HOLDER_ID},4821\n"
                            f"{SHARED},residential,T Nkosi,2 Main Road,{HOLDER_ID},4821\n")
        script = ("from idp import create_app\nfrom idp.services import accounts, register_import\n"
                  "app = create_app()\nwith app.app_context():\n"
                  f"    register_import.import_register({str(register)!r})\n"
                  f"    for i in range({PARALLEL + 1}):\n"
                  f"        accounts.create_user(f'r{{i}}@example.org', {PASSWORD!r}, name='R', email_verified=True)\n")
        subprocess.run([sys.executable, "-c", script], env=idp.env, check=True, timeout=120)  # one process for the register and the residents
        yield idp
    finally:
        idp.stop()


def _signed_in(server, email) -> requests.Session:
    browser = requests.Session()
    page = browser.get(server.url + "/login", timeout=10).text
    done = browser.post(server.url + "/login", data={"csrf_token": CSRF.search(page).group(1), "email": email,
                                                     "password": PASSWORD, "next": "/account/"},
                        allow_redirects=False, timeout=10)
    assert done.status_code == 303
    return browser


def _fire(server, browsers, number, roles) -> list[int]:
    """POST the right PIN from every browser at the same moment; the status codes."""
    forms = [CSRF.search(b.get(server.url + "/account/municipal/link", timeout=10).text).group(1) for b in browsers]
    barrier, statuses = threading.Barrier(len(browsers)), [0] * len(browsers)

    def send(index):
        barrier.wait()
        statuses[index] = browsers[index].post(server.url + "/account/municipal/link", data={
            "csrf_token": forms[index], "account_number": number, "proof_kind": "linking_pin", "proof": "4821",
            "role": roles[index]}, allow_redirects=False, timeout=30).status_code

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def _links(server, number) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(server.database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        return conn.execute("SELECT u.email, l.role FROM account_links l JOIN users u ON u.id = l.user_id "
                            "JOIN municipal_accounts a ON a.id = l.account_id WHERE a.account_number = %s "
                            "ORDER BY u.email", (number,)).fetchall()


def test_item_70_one_identity_racing_itself_gets_exactly_one_link(server):
    one = _signed_in(server, "r0@example.org")
    tabs = [one] + [requests.Session() for _ in range(PARALLEL - 1)]
    for tab in tabs[1:]:
        tab.cookies.update(one.cookies)  # the same session in several tabs
    statuses = _fire(server, tabs, SOLO, ["owner"] * PARALLEL)
    assert statuses.count(303) == 1, statuses
    assert all(s in (400, 429) for s in statuses if s != 303), statuses  # clean refusals, never a 500
    assert _links(server, SOLO) == [("r0@example.org", "owner")]
    assert "Traceback" not in server.log_text()


def test_item_70_several_identities_at_once_never_duplicate_a_link(server):
    browsers = [_signed_in(server, f"r{i + 1}@example.org") for i in range(PARALLEL)]
    roles = ["owner", "tenant", "tenant", "managing_agent"]
    assert _fire(server, browsers, SHARED, roles) == [303] * PARALLEL
    expected = sorted((f"r{i + 1}@example.org", role) for i, role in enumerate(roles))
    assert _links(server, SHARED) == expected  # one row per identity
    assert _fire(server, browsers[:2], SHARED, ["owner", "owner"]) == [400, 400]  # already linked: no second row
    assert _links(server, SHARED) == expected
