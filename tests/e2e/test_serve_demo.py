"""``idp serve`` runs under gunicorn and stops gracefully; ``idp demo`` starts the IdP and the
demo department app from an empty folder and stops both on Ctrl-C."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.browser import launch_chromium
from tests.support.databases import create_database, drop_database, redis_url
from tests.support.server import IDP, TEST_SECRET
from tests.support.smtp import free_port

pytestmark = pytest.mark.e2e


class Process:
    """A child process whose combined output is collected in the background."""

    def __init__(self, args, env, cwd=None):
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared:\n{self.output[-4000:]}")

    def wait_for_url(self, url: str, timeout: float = 60) -> requests.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited ({self.proc.returncode}):\n{self.output[-4000:]}")
            try:
                response = requests.get(url, timeout=2)
                if response.status_code == 200:
                    return response
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{url} never answered:\n{self.output[-4000:]}")

    def children(self) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not collected it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_") or k.startswith("IDP_TEST_")}
    env.update(extra)
    return env


@pytest.fixture
def database(tmp_path):
    url = create_database(tmp_path)
    yield url
    drop_database(url)


def _serve_env(tmp_path, database_url, port, **extra):
    env = _clean_env(IDP_ENV="test", IDP_SECRET_KEY=TEST_SECRET, IDP_ISSUER=f"http://localhost:{port}",
                     IDP_INSTANCE_PATH=str(tmp_path / "instance"), IDP_DATABASE_URL=database_url)
    env.update(extra)
    return env


def test_serve_runs_under_gunicorn_and_logs_no_query_strings(tmp_path, database):
    port = free_port()
    env = _serve_env(tmp_path, database, port)
    subprocess.run([IDP, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    server = Process([IDP, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "4"], env)
    try:
        home = server.wait_for_url(f"http://127.0.0.1:{port}/")
        assert "eCitizen Passport" in home.text
        assert home.headers["X-Frame-Options"] == "DENY"
        assert "gunicorn" not in home.headers.get("Server", "").lower()
        requests.get(f"http://127.0.0.1:{port}/?code=SECRETCODE42&state=xyz", timeout=5)
        requests.get(f"http://127.0.0.1:{port}/nope?access_token=SECRETTOKEN42", timeout=5)
    finally:
        code = server.stop(signal.SIGTERM)
    log = server.output
    assert code == 0, log[-3000:]
    assert "gunicorn" in log and "gthread" in log
    assert '"GET / HTTP/1.1" 200' in log
    assert '"GET /nope HTTP/1.1" 404' in log
    assert "SECRETCODE42" not in log and "SECRETTOKEN42" not in log
    assert "Shutting down" in log


def test_serve_with_redis_runs_two_workers(tmp_path, database):
    url = redis_url(4)
    if not url:
        pytest.skip("IDP_TEST_REDIS_URL is not set")
    port = free_port()
    env = _serve_env(tmp_path, database, port, IDP_REDIS_URL=url)
    subprocess.run([IDP, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    server = Process([IDP, "serve", "--host", "127.0.0.1", "--port", str(port)], env)
    try:
        server.wait_for_url(f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 20
        while server.output.count("Booting worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.output.count("Booting worker") == 2, server.output[-3000:]
    finally:
        assert server.stop(signal.SIGTERM) == 0


DEPARTMENTS = ("billing", "permits", "complaints", "programs")


def _start_demo(tmp_path, ports: dict):
    args = [IDP, "demo", "--port", str(ports["idp"])]
    for slug in DEPARTMENTS:
        args += ["--department-port", f"{slug}={ports[slug]}"]
    return Process(args, _clean_env(), cwd=tmp_path)


def _demo_ports() -> dict:
    return {name: free_port() for name in ("idp", *DEPARTMENTS)}


def test_demo_starts_the_city_and_ctrl_c_stops_it(tmp_path):
    ports = _demo_ports()
    demo = _start_demo(tmp_path, ports)
    try:
        demo.wait_for_output("Stop with Ctrl-C")
        out = demo.output
        idp = f"http://localhost:{ports['idp']}"
        assert f"{idp}/" in out and f"{idp}/.well-known/openid-configuration" in out
        for slug in DEPARTMENTS:
            assert f"http://localhost:{ports[slug]}/" in out
        assert "thandi@example.org" in out and "ubuntu-table-mountain-2026" in out

        home = demo.wait_for_url(f"{idp}/")
        assert "eCitizen Passport" in home.text
        for slug in DEPARTMENTS:
            department_home = demo.wait_for_url(f"http://localhost:{ports[slug]}/")
            assert "Sign in with eCitizen Passport" in department_home.text

        # Everything lives in ./instance of the folder the demo was started in; each department
        # has its own database.
        instance = tmp_path / "instance"
        assert (instance / "idp.sqlite3").exists()
        for slug in DEPARTMENTS:
            assert (instance / "departments" / f"{slug}.db").exists()
        secret_file = instance / "demo-clients.json"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
        clients = json.loads(secret_file.read_text())
        assert set(clients) == set(DEPARTMENTS)
        secrets = [clients[slug]["client_secret"] for slug in DEPARTMENTS]
        assert not any(secret in out for secret in secrets), "a client secret was printed"

        # A department sends the browser to the IdP with PKCE S256 and its own client id.
        discovery = requests.get(f"{idp}/.well-known/openid-configuration", timeout=5).json()
        response = requests.get(f"http://localhost:{ports['permits']}/login", allow_redirects=False, timeout=10)
        assert response.status_code == 302
        location = response.headers["Location"]
        assert location.startswith(discovery["authorization_endpoint"])
        assert "code_challenge_method=S256" in location and "nonce=" in location and "state=" in location
        assert f"client_id={clients['permits']['client_id']}" in location

        children = demo.children()
        assert len(children) >= len(DEPARTMENTS), "the demo did not start a process per department"
    finally:
        code = demo.stop(signal.SIGINT)
    assert code == 0, demo.output[-3000:]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "a demo process outlived Ctrl-C"
    for port in ports.values():
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://localhost:{port}/", timeout=2)

    # A second start reuses the seeded data: the same clients, no errors.
    demo = _start_demo(tmp_path, ports)
    try:
        demo.wait_for_output("Stop with Ctrl-C")
        assert json.loads(secret_file.read_text()) == clients
        for slug in DEPARTMENTS:
            demo.wait_for_url(f"http://localhost:{ports[slug]}/healthz")
    finally:
        assert demo.stop(signal.SIGTERM) == 0, demo.output[-3000:]


def _enrol_authenticator(instance: Path, issuer: str) -> str:
    """Give the demo resident an authenticator app, as if set up on the IdP's security page from
    another device (the browser's session stays password-only); returns the TOTP secret."""
    import pyotp

    from idp import create_app
    from idp.config import load_settings
    from idp.services import accounts, totp

    app = create_app(load_settings({"IDP_INSTANCE_PATH": str(instance), "IDP_ISSUER": issuer}))
    with app.app_context():
        user = accounts.find_by_email("thandi@example.org")
        secret = totp.begin_enrolment(user)
        assert totp.confirm_enrolment(user, pyotp.TOTP(secret).now())
    return secret


def test_one_sign_in_for_the_whole_city_and_one_sign_out_ends_it(tmp_path):
    """The demo's promise: sign in once at billing, use permits (with a step-up to MFA) and
    complaints without a password prompt, sign out at complaints and be signed out everywhere."""
    import pyotp
    from playwright.sync_api import expect, sync_playwright

    ports = _demo_ports()
    idp = f"http://localhost:{ports['idp']}"
    billing, permits, complaints, programs = (f"http://localhost:{ports[slug]}" for slug in DEPARTMENTS)
    demo = _start_demo(tmp_path, ports)
    try:
        demo.wait_for_output("Stop with Ctrl-C")
        demo.wait_for_url(f"{idp}/.well-known/openid-configuration")
        for url in (billing, permits, complaints, programs):
            demo.wait_for_url(f"{url}/healthz")
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page()
            page.set_default_timeout(15000)
            idp_pages: list[str] = []
            page.on("request",  # every page load at the IdP, redirects included
                    lambda r: idp_pages.append(r.url) if r.is_navigation_request() and r.url.startswith(idp) else None)

            # Billing: the one password prompt.
            page.goto(f"{billing}/")
            page.get_by_role("link", name="Sign in with eCitizen Passport").click()
            page.wait_for_url(re.compile(rf"^{idp}/login"))
            expect(page.get_by_text("City Billing").first).to_be_visible()  # who is asking
            page.locator("input[autocomplete~=username]").fill("thandi@example.org")
            page.locator("input[autocomplete=current-password]").fill("ubuntu-table-mountain-2026")
            page.get_by_role("button", name="Sign in", exact=True).click()
            page.wait_for_url(f"{billing}/")
            expect(page.locator("#resident-name")).to_have_text("Thandi Nkosi")
            expect(page.get_by_role("link", name=re.compile("4009876543"))).to_be_visible()
            expect(page.locator("#messages")).to_contain_text("by email")  # the notification_preferences claim
            page.get_by_role("link", name=re.compile("4001234568")).first.click()
            page.wait_for_url(re.compile(rf"^{billing}/accounts/4001234568"))
            expect(page.locator("main svg")).to_have_count(2)  # water and electricity charts
            expect(page.get_by_role("link", name=re.compile(r"statement \(CSV\)")).first).to_be_visible()

            # Permits: signed in by the IdP's session, no password.
            idp_pages.clear()
            page.goto(f"{permits}/")
            page.get_by_role("link", name="Sign in with eCitizen Passport").click()
            expect(page.locator("#resident-name")).to_have_text("Thandi Nkosi")
            assert page.url.startswith(permits)
            assert idp_pages and not [url for url in idp_pages if "/login" in url], idp_pages

            # Applying needs MFA: the IdP asks for the second factor only (step-up), not the password.
            secret = _enrol_authenticator(tmp_path / "instance", idp)
            page.goto(f"{permits}/apply")
            page.wait_for_url(re.compile(rf"^{idp}/login/second-factor"))
            page.get_by_role("link", name="Enter a code from my authenticator app").click()
            used_step = int(time.time() + 30) // 30  # one step ahead: the enrolment used the current one
            page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).at(used_step * 30))
            page.get_by_role("button", name="Continue").click()
            page.wait_for_url(re.compile(rf"^{permits}/apply"))
            page.get_by_label("Type of permit").select_option("event")
            page.get_by_label("Title").fill("Street soccer final")
            page.get_by_label("Site address").fill("Wale Street, Bo-Kaap")
            page.get_by_label("Description").fill("A community soccer final with a small stage.")
            page.get_by_label("Event date").fill(time.strftime("%Y-%m-%d", time.localtime(time.time() + 30 * 86400)))
            page.get_by_label("Expected attendance").fill("300")
            page.get_by_role("button", name=re.compile("submit", re.I)).click()
            page.wait_for_url(re.compile(rf"^{permits}/applications/PRM-"))
            permit = page.url.rsplit("/", 1)[1]
            expect(page.get_by_text(re.compile("submitted", re.I)).first).to_be_visible()

            # Complaints: signed in without a password; report a problem.
            idp_pages.clear()
            page.goto(f"{complaints}/")
            page.get_by_role("link", name="Sign in with eCitizen Passport").click()
            expect(page.locator("#resident-name")).to_have_text("Thandi Nkosi")
            assert not [url for url in idp_pages if "/login" in url], idp_pages
            page.goto(f"{complaints}/report")
            page.get_by_label("Category").select_option("pothole")
            page.get_by_label("Location").fill("Corner of Bree and Wale Street")
            page.get_by_label("Description").fill("A deep pothole in the left lane.")
            page.get_by_role("button", name=re.compile("report|submit|send", re.I)).click()
            page.wait_for_url(re.compile(rf"^{complaints}/requests/CMP-"))
            complaint = page.url.rsplit("/", 1)[1]

            # Programs: a department that joined the demo by its folder alone signs in the same way.
            page.goto(f"{programs}/programs/water-wise-gardening")
            page.get_by_role("link", name="Sign in with eCitizen Passport to register").click()
            page.wait_for_url(f"{programs}/programs/water-wise-gardening")
            page.get_by_role("button", name="Register").click()
            expect(page.locator("#registered")).to_be_visible()

            # The IdP's dashboard gathers every department (server-side, with service tokens) ...
            page.goto(f"{idp}/account/dashboard")
            cards = page.locator("section.card")
            expect(cards.filter(has_text="City Billing")).to_contain_text("Account 4001234568")
            expect(cards.filter(has_text="City Permits")).to_contain_text(permit)
            expect(cards.filter(has_text="Report a Problem")).to_contain_text(complaint)
            expect(cards.filter(has_text="Programs and Events")).to_contain_text("Water-wise gardening workshop")
            # ... and its directory finds a service from the words a resident uses, typos and all.
            page.goto(f"{idp}/")
            page.get_by_label("Find a city service").fill("potwhole")
            page.get_by_role("button", name="Search").click()
            expect(page.get_by_role("link", name="Report a Problem", exact=True)).to_have_attribute("href", f"{complaints}/")

            # One choice of messages at the IdP, for every department (seen at their next sign-in).
            page.goto(f"{idp}/account/notifications")
            page.get_by_role("group", name="Bills that are due").get_by_label("No messages").check()
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_text("Your message choices were saved")).to_be_visible()
            page.goto(f"{complaints}/")

            # One sign-out at complaints ends the IdP session and, by back-channel logout, the others.
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(re.compile(rf"^({idp}|{complaints})/"))
            if page.url.startswith(idp):
                page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(re.compile(rf"^{complaints}/"))
            expect(page.get_by_role("link", name="Sign in with eCitizen Passport")).to_be_visible()
            for department in (billing, permits, programs):
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    page.goto(f"{department}/")
                    if page.get_by_role("link", name="Sign in with eCitizen Passport").count():
                        break
                    time.sleep(0.3)
                expect(page.get_by_role("link", name="Sign in with eCitizen Passport")).to_be_visible()
            page.goto(f"{idp}/account/")
            page.wait_for_url(re.compile(rf"^{idp}/login"))  # the IdP session is over too

            # Back at billing: a password again, and billing follows the new choice of messages.
            page.goto(f"{billing}/")
            page.get_by_role("link", name="Sign in with eCitizen Passport").click()
            page.locator("input[autocomplete~=username]").fill("thandi@example.org")
            page.locator("input[autocomplete=current-password]").fill("ubuntu-table-mountain-2026")
            page.get_by_role("button", name="Sign in", exact=True).click()
            page.wait_for_url(re.compile(rf"^{idp}/login/second-factor"))  # she has an authenticator app now
            page.get_by_role("link", name="Enter a code from my authenticator app").click()
            while int(time.time()) // 30 < used_step:  # a code newer than the one used for the step-up
                time.sleep(0.5)
            page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).at((int(time.time()) // 30 + 1) * 30))
            page.get_by_role("button", name="Continue").click()
            page.wait_for_url(f"{billing}/")
            expect(page.locator("#messages")).to_contain_text("not at all")

            # The resident closes their own account: billing signs them out, and sign-in is refused.
            page.goto(f"{idp}/account/close")
            page.get_by_label("Your password").fill("ubuntu-table-mountain-2026")
            page.get_by_label("I understand that every city service I use will sign me out").check()
            page.get_by_role("button", name="Close my account").click()
            expect(page.get_by_role("heading", name="Your account is closed")).to_be_visible()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                page.goto(f"{billing}/")
                if page.get_by_role("link", name="Sign in with eCitizen Passport").count():
                    break
                time.sleep(0.3)
            page.get_by_role("link", name="Sign in with eCitizen Passport").click()
            page.locator("input[autocomplete~=username]").fill("thandi@example.org")
            page.locator("input[autocomplete=current-password]").fill("ubuntu-table-mountain-2026")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(page.locator("[role=alert], .notice-error, .error").first).to_be_visible()
            assert page.url.startswith(f"{idp}/login")
            browser.close()
    finally:
        demo.stop(signal.SIGINT)
