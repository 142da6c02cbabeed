"""Checklist 115, rolling restart under load: while residents keep signing in, SIGHUP makes
gunicorn replace both workers of ``idp serve`` (new ones start, the old ones finish what they
hold). No sign-in fails: each ends at its ``next`` page, signed in as the right resident (a
dropped connection may be retried once, as a browser would, and is counted; a wrong answer never
passes). Authorizations begun with the old workers (a sign-in form and its CSRF token, a signed-in
consent page, an issued code) complete with the new ones and their codes redeem for tokens: the
transactions live in Redis and PostgreSQL, not in a worker's memory. The old workers drain and
exit by themselves; none is killed."""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from tests.conftest import csrf_token
from tests.support.bot_challenge import answered
from tests.support.databases import postgres_admin_url, redis_url
from tests.support.oidc import pkce_pair
from tests.support.server import IdpServer

pytestmark = pytest.mark.e2e

REDIRECT = "https://billing.example.gov.za/cb"
NEXT = "/account/"
CONSENT_FORM = re.compile(r'<form method="post" action="([^"]+)">(?:(?!</form>).)*?name="decision"', re.S)
LOAD_THREADS = 4
AFTER_SWITCH = 3  # sign-ins each load thread still makes once the new workers have taken over
LIVENESS = 60  # seconds: a bound on waiting, never a claim about speed
TIMEOUT = 30  # per request


def _resident(n: int) -> tuple[str, str]:
    return f"rolling{n}@example.org", f"rolling restart resident number {n} keeps signing in"


@pytest.fixture
def server(tmp_path, smtp_server):
    if not (postgres_admin_url() and redis_url(2)):
        pytest.skip("needs IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL: two workers share PostgreSQL and Redis")
    # The test answers the bot challenge in Python like a browser's script: keep the puzzle small.
    idp = IdpServer(tmp_path, smtp_port=smtp_server.port, workers=2, extra_env={
        "IDP_BOT_CHALLENGE_BITS": "8",
        "IDP_AUTH_CODE_LIFETIME": "600",  # the code issued before the restart outlives a slow machine's run
    })
    try:
        yield idp.start()
    finally:
        idp.stop()


# --- the gunicorn master's workers ---------------------------------------------------------------

def _workers(master: int) -> set[int]:
    """Live child processes of ``master`` (zombies already exited)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def _wait_for(what: str, condition, timeout: float = LIVENESS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting ({timeout} s) for {what}")


def _wait_for_workers(master: int, what: str, wanted) -> set[int]:
    found: set[int] = set()

    def check() -> bool:
        nonlocal found
        found = _workers(master)
        return wanted(found)

    _wait_for(what, check)
    return found


# --- a browser that may retry a dropped connection once -----------------------------------------

class WrongAnswer(AssertionError):
    pass


class Browser:
    """A ``requests`` session; a request whose connection drops is sent once more (counted)."""

    def __init__(self, base: str, cookies: dict | None = None):
        self.base = base
        self.http = requests.Session()
        self.http.cookies.update(cookies or {})
        self.retries = 0

    def send(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", TIMEOUT)
        url = urljoin(self.base, path)
        try:
            return self.http.request(method, url, **kwargs)
        except requests.ConnectionError:  # not a ReadTimeout: a request the server sat on fails
            self.retries += 1
            return self.http.request(method, url, **kwargs)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise WrongAnswer(message)


def _hidden(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    _expect(tag is not None, f"no {name} field")
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return unescape(value.group(1)) if value else ""


def _login_form(page: requests.Response, email: str, password: str) -> dict:
    _expect(page.status_code == 200, f"GET /login -> {page.status_code}")
    return {"csrf_token": csrf_token(page.text), "next": _hidden(page.text, "next"),
            "email": email, "password": password, **answered(page.text)}


def _path_of(response: requests.Response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


def sign_in(base: str, email: str, password: str, device: dict) -> int:
    """One complete sign-in in a fresh session (keeping this browser's device cookie): the form,
    the post, then the account page as this resident. Returns the retries it needed."""
    browser = Browser(base, device)
    form = _login_form(browser.send("GET", "/login", params={"next": NEXT}), email, password)
    posted = browser.send("POST", "/login", data=form)
    _expect(posted.status_code == 303 and _path_of(posted) == NEXT,
            f"POST /login -> {posted.status_code} {posted.headers.get('Location')!r}")
    account = browser.send("GET", NEXT)
    _expect(account.status_code == 200, f"GET {NEXT} -> {account.status_code} {account.headers.get('Location')!r}")
    _expect(email in account.text, f"{NEXT} shows another resident")
    device.update({k: v for k, v in browser.http.cookies.items() if "device" in k})
    return browser.retries


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: list[int] = field(default_factory=lambda: [0] * LOAD_THREADS)  # attempts per thread
    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of each success
    retries: int = 0
    failures: list[str] = field(default_factory=list)


def keep_signing_in(base: str, n: int, stop: threading.Event, tally: Tally) -> None:
    email, password = _resident(n)
    device: dict = {}
    while not stop.is_set():
        started = time.monotonic()
        try:
            retries = sign_in(base, email, password, device)
        except Exception as exc:  # a wrong answer, a second dropped connection, a timeout
            with tally.lock:
                tally.failures.append(f"{email} at {started:.1f}: {type(exc).__name__}: {exc}")
                tally.done[n] += 1
            continue
        with tally.lock:
            tally.spans.append((started, time.monotonic()))
            tally.retries += retries
            tally.done[n] += 1


# --- an authorization with PKCE -------------------------------------------------------------------

def _authorization(client_id: str) -> tuple[dict, str]:
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid email",
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
              "code_challenge_method": "S256"}
    return params, verifier


def _consent_page(browser: Browser, response: requests.Response) -> tuple[str, dict]:
    """Follow a redirect back to /authorize and return (form action, fields) of the consent page."""
    assert response.status_code in (302, 303) and _path_of(response) == "/authorize", response.headers
    page = browser.send("GET", response.headers["Location"])
    assert page.status_code == 200 and 'name="decision"' in page.text, (page.status_code, page.text[:300])
    form = CONSENT_FORM.search(page.text)  # not the page's other forms (sign out, language)
    return unescape(form.group(1)), {"csrf_token": csrf_token(form.group(0)), "decision": "allow"}


def _redeem(base: str, created: dict, params: dict, verifier: str, response: requests.Response,
            email: str) -> None:
    location = response.headers.get("Location", "")
    assert response.status_code == 302 and location.startswith(REDIRECT + "?"), (response.status_code, location)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [params["state"]] and query["iss"] == [base]
    tokens = requests.post(base + "/token", auth=(created["client_id"], created["client_secret"]), timeout=TIMEOUT,
                           data={"grant_type": "authorization_code", "code": query["code"][0],
                                 "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"]
    userinfo = requests.get(base + "/userinfo", headers={"Authorization": "Bearer " + tokens.json()["access_token"]},
                            timeout=TIMEOUT)
    assert userinfo.status_code == 200 and userinfo.json()["email"] == email


def test_rolling_restart_under_load_fails_no_sign_in_and_keeps_authorizations(server):
    with ThreadPoolExecutor(8) as pool:  # each CLI call is a process of its own
        made = [pool.submit(server.cli, "users", "create", "--email", email, "--password", password,
                            "--verified-email") for email, password in map(_resident, range(LOAD_THREADS + 3))]
        made.append(pool.submit(server.cli, "clients", "create", "--name", "Billing", "--redirect-uri", REDIRECT,
                                "--json"))
    created = json.loads([future.result() for future in made][-1].stdout)  # not first-party: consent is asked
    base = server.url
    master = server.process.pid
    old_workers = _wait_for_workers(master, "two workers", lambda workers: len(workers) == 2)

    # Begun with the old workers: A has the sign-in form (and its CSRF token) in hand; B signed in
    # and has the consent page in hand; C has its code, not yet redeemed.
    early_a, early_b, early_c = (_resident(LOAD_THREADS + n) for n in range(3))
    params_a, verifier_a = _authorization(created["client_id"])
    browser_a = Browser(base)
    to_login = browser_a.send("GET", "/authorize", params=params_a)
    assert to_login.status_code == 302 and _path_of(to_login) == "/login", to_login.headers
    form_a = _login_form(browser_a.send("GET", to_login.headers["Location"]), *early_a)
    assert urlsplit(form_a["next"]).path == "/authorize", form_a["next"]

    params_b, verifier_b = _authorization(created["client_id"])
    browser_b = Browser(base)
    to_login = browser_b.send("GET", "/authorize", params=params_b)
    form_b = _login_form(browser_b.send("GET", to_login.headers["Location"]), *early_b)
    action_b, consent_b = _consent_page(browser_b, browser_b.send("POST", "/login", data=form_b))

    params_c, verifier_c = _authorization(created["client_id"])
    browser_c = Browser(base)
    to_login = browser_c.send("GET", "/authorize", params=params_c)
    form_c = _login_form(browser_c.send("GET", to_login.headers["Location"]), *early_c)
    action_c, consent_c = _consent_page(browser_c, browser_c.send("POST", "/login", data=form_c))
    code_c = browser_c.send("POST", action_c, data=consent_c)

    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=keep_signing_in, args=(base, n, stop, tally), daemon=True)
               for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        _wait_for("every load thread to sign in once", lambda: min(tally.done) >= 1)
        hup_at = time.monotonic()
        os.kill(master, signal.SIGHUP)  # gunicorn's graceful reload: new workers, old ones drain
        new_workers = _wait_for_workers(master, "the workers to be replaced",
                                        lambda workers: len(workers) == 2 and not workers & old_workers)
        switched_at = time.monotonic()
        with tally.lock:
            mark = list(tally.done)
        _wait_for("more sign-ins with the new workers",
                  lambda: all(done >= seen + AFTER_SWITCH for done, seen in zip(tally.done, mark)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=LIVENESS)
    assert not any(thread.is_alive() for thread in threads), "a load thread hung"

    assert server.process.poll() is None, "the master stopped: that was no rolling restart"
    assert len(new_workers) == 2 and not new_workers & old_workers, (old_workers, new_workers)
    # Drained, not killed: each old worker finished its requests and left by itself (a killed one
    # drops requests in progress, which the clients' retry would otherwise paper over).
    log = server.log_text()
    lifecycle = "\n".join(line for line in log.splitlines() if re.search(r"[Ww]orker|SIG|Handling signal", line))
    assert all(f"Worker exiting (pid: {pid})" in log for pid in old_workers), lifecycle
    assert "SIGKILL" not in log and "WORKER TIMEOUT" not in log, lifecycle
    assert tally.failures == [], f"{len(tally.failures)} of {sum(tally.done)} sign-ins failed:\n" + "\n".join(
        tally.failures[:10])
    across = [s for s in tally.spans if s[0] < switched_at and s[1] > hup_at]
    assert across, "no sign-in was in progress while the workers were replaced"
    print(f"\n{len(tally.spans)} sign-ins, {len(across)} across the switch, {tally.retries} retried "
          f"connections; workers {sorted(old_workers)} -> {sorted(new_workers)}")

    # Finished with the new workers.
    posted = browser_a.send("POST", "/login", data=form_a)
    action_a, consent_a = _consent_page(browser_a, posted)
    _redeem(base, created, params_a, verifier_a, browser_a.send("POST", action_a, data=consent_a), early_a[0])
    _redeem(base, created, params_b, verifier_b, browser_b.send("POST", action_b, data=consent_b), early_b[0])
    _redeem(base, created, params_c, verifier_c, code_c, early_c[0])
