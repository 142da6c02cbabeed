"""``idp serve`` runs under gunicorn and stops gracefully; ``idp demo`` starts the IdP and the
demo department app from an empty folder and stops both on Ctrl-C."""
from __future__ import annotations

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


def _start_demo(tmp_path, port, rp_port):
    return Process([IDP, "demo", "--port", str(port), "--rp-port", str(rp_port)], _clean_env(), cwd=tmp_path)


def test_demo_starts_both_apps_and_ctrl_c_stops_them(tmp_path):
    port, rp_port = free_port(), free_port()
    demo = _start_demo(tmp_path, port, rp_port)
    try:
        demo.wait_for_output("Stop with Ctrl-C")
        out = demo.output
        assert f"http://localhost:{port}/" in out
        assert f"http://localhost:{port}/.well-known/openid-configuration" in out
        assert f"http://localhost:{rp_port}/" in out
        assert "thandi@example.org" in out and "ubuntu-table-mountain-2026" in out
        client_id = re.search(r"Demo client id:\s+(\S+)", out).group(1)

        home = demo.wait_for_url(f"http://localhost:{port}/")
        assert "eCitizen Passport" in home.text
        rp_home = demo.wait_for_url(f"http://localhost:{rp_port}/")
        assert "Sign in with eCitizen Passport" in rp_home.text

        # Everything lives in ./instance of the folder the demo was started in.
        instance = tmp_path / "instance"
        assert (instance / "idp.sqlite3").exists()
        secret_file = instance / "demo-client.json"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"

        discovery = requests.get(f"http://localhost:{port}/.well-known/openid-configuration", timeout=5)
        if discovery.status_code == 200:
            # The department app sends the browser to the IdP with PKCE S256.
            browser = requests.Session()
            page = browser.get(f"http://localhost:{rp_port}/", timeout=5).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            response = browser.post(f"http://localhost:{rp_port}/login", data={"csrf": csrf},
                                    allow_redirects=False, timeout=10)
            assert response.status_code == 302
            location = response.headers["Location"]
            assert location.startswith(discovery.json()["authorization_endpoint"])
            assert "code_challenge_method=S256" in location
            assert f"client_id={client_id}" in location

        children = demo.children()
        assert children, "the demo started no child processes"
    finally:
        code = demo.stop(signal.SIGINT)
    assert code == 0, demo.output[-3000:]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "a demo process outlived Ctrl-C"
    for url in (f"http://localhost:{port}/", f"http://localhost:{rp_port}/"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)

    # A second start reuses the seeded data: same client, same credentials, no errors.
    demo = _start_demo(tmp_path, port, rp_port)
    try:
        demo.wait_for_output("Stop with Ctrl-C")
        assert re.search(r"Demo client id:\s+(\S+)", demo.output).group(1) == client_id
        demo.wait_for_url(f"http://localhost:{rp_port}/healthz")
    finally:
        assert demo.stop(signal.SIGTERM) == 0, demo.output[-3000:]


def test_demo_department_sign_in_and_out_in_a_browser(tmp_path):
    """The README's promise: open the department app, sign in as the demo resident, see the
    name, sign out through the IdP."""
    from playwright.sync_api import expect, sync_playwright

    port, rp_port = free_port(), free_port()
    demo = _start_demo(tmp_path, port, rp_port)
    try:
        demo.wait_for_output("Stop with Ctrl-C")
        demo.wait_for_url(f"http://localhost:{port}/.well-known/openid-configuration")
        demo.wait_for_url(f"http://localhost:{rp_port}/healthz")
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page()
            page.set_default_timeout(15000)
            page.goto(f"http://localhost:{rp_port}/")
            page.get_by_role("button", name="Sign in with eCitizen Passport").click()
            page.wait_for_url(re.compile(rf"^http://localhost:{port}/login"))
            page.locator("input[autocomplete~=username]").fill("thandi@example.org")
            page.locator("input[autocomplete=current-password]").fill("ubuntu-table-mountain-2026")
            page.get_by_role("button", name="Sign in", exact=True).click()
            # A consent page may come first for a department the resident has not used yet.
            page.wait_for_url(re.compile(rf"^http://localhost:({port}|{rp_port})/"))
            if page.url.startswith(f"http://localhost:{port}/"):
                page.get_by_role("button", name=re.compile("allow|continue|agree|accept|share", re.I)).first.click()
            page.wait_for_url(f"http://localhost:{rp_port}/")
            expect(page.locator("#name")).to_have_text("Thandi Nkosi")
            expect(page.locator("#email")).to_have_text("thandi@example.org")
            expect(page.locator("#accounts")).to_contain_text("4001234568 (residential, owner)")
            expect(page.locator("#accounts")).not_to_contain_text("5003141594")

            # The resident links the demo's spare account on the IdP's pages; the department sees it next time.
            page.goto(f"http://localhost:{port}/account/municipal/link")
            page.get_by_label("Account number").fill("500 314 1594")
            page.get_by_label("PIN or ID number").fill("2468")
            page.get_by_label("Your role").select_option("owner")
            page.get_by_role("button", name="Link account").click()
            expect(page.get_by_role("heading", name="5003141594")).to_be_visible()
            page.goto(f"http://localhost:{rp_port}/")
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(re.compile(rf"^http://localhost:({port}|{rp_port})/"))
            if page.url.startswith(f"http://localhost:{port}/"):
                page.get_by_role("button", name=re.compile("sign out|log out|yes", re.I)).first.click()
            page.wait_for_url(re.compile(rf"^http://localhost:{rp_port}/"))
            page.get_by_role("button", name="Sign in with eCitizen Passport").click()
            page.wait_for_url(re.compile(rf"^http://localhost:{port}/login"))
            page.locator("input[autocomplete~=username]").fill("thandi@example.org")
            page.locator("input[autocomplete=current-password]").fill("ubuntu-table-mountain-2026")
            page.get_by_role("button", name="Sign in", exact=True).click()
            # The password was asked again: signing out at the department ended the IdP session too.
            # No consent this time: the sign-in form's redirects end at the department (CSP form-action).
            page.wait_for_url(f"http://localhost:{rp_port}/")
            expect(page.locator("#accounts")).to_contain_text("5003141594 (residential, owner)")

            # Signing out at the IdP itself signs the resident out of the department too (back-channel).
            page.goto(f"http://localhost:{port}/account/")
            page.get_by_role("button", name="Sign out").click()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                page.goto(f"http://localhost:{rp_port}/")
                if page.get_by_role("button", name="Sign in with eCitizen Passport").count():
                    break
                time.sleep(0.3)
            expect(page.get_by_role("button", name="Sign in with eCitizen Passport")).to_be_visible()
            browser.close()
    finally:
        demo.stop(signal.SIGINT)
