"""Checklist 47: reset/verification token leakage. The pages a link opens send
``Referrer-Policy: no-referrer`` and load nothing from another origin, and the token never reaches a
log: neither the JSON log line's path nor gunicorn's access log of a real ``idp serve``. On first
load the token leaves the address bar: it is kept in the session and the page redirects to its
token-free address, where the form posts."""
from __future__ import annotations

import json
import logging
import re
import urllib.request

from idp.observability import JsonFormatter
from idp.services import action_tokens as links
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import make_user
from tests.support.server import IdpServer


def _links(app):
    user_id = make_user(app, verified=False)
    with app.app_context():
        return {"reset": "/reset-password/" + links.issue(user_id, links.RESET_PASSWORD),
                "verify": "/verify-email/" + links.issue(user_id, links.VERIFY_EMAIL,
                                                         data={"email": "amara@example.org"})}


def test_item_47_link_pages_send_no_referrer_and_load_nothing_from_elsewhere(app, client):
    for path in _links(app).values():
        first = client.get(path)
        assert first.status_code == 303 and first.headers["Referrer-Policy"] == "no-referrer"
        response = client.get(first.headers["Location"])
        assert response.status_code == 200
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response.headers["Cache-Control"]
        html = response.get_data(as_text=True)
        for url in re.findall(r'(?:src|href|action)="([^"]+)"', html):
            assert not re.match(r"^(https?:)?//", url) or url.startswith("http://localhost/"), url
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "http" not in csp.split("form-action")[0]


def test_item_47_json_log_lines_never_carry_the_token(app, client):
    paths = _links(app)
    formatter = JsonFormatter()
    for path in paths.values():
        raw = path.rsplit("/", 1)[1]
        with app.test_request_context(path):
            record = logging.LogRecord("idp", logging.INFO, __file__, 1, "something happened", None, None)
            line = json.loads(formatter.format(record))
        assert raw not in json.dumps(line)
        assert line["path"].endswith("/[token]")


def test_item_47_access_log_of_a_real_server_never_carries_the_token(tmp_path, smtp_server):
    server = IdpServer(tmp_path, smtp_port=smtp_server.port).start()
    try:
        raw = "T0KEN" + "x" * 38
        for path in (f"/reset-password/{raw}", f"/verify-email/{raw}", f"/confirm-email/{raw}", f"/not-me/{raw}"):
            try:
                urllib.request.urlopen(server.url + path, timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code == 400  # unknown token: the generic page
        urllib.request.urlopen(server.url + "/healthz", timeout=10)
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "/reset-password/[token]" in log and "/healthz" in log  # the access log was written
    assert "T0KEN" not in log


def test_item_47_first_load_moves_the_token_out_of_the_url(app, client):
    paths = _links(app)
    response = client.get(paths["reset"])
    assert response.status_code == 303
    assert response.headers["Location"] == "/reset-password"
    page = client.get("/reset-password")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and paths["reset"].rsplit("/", 1)[1] not in html
    form = {"csrf_token": csrf_token(html), "password": "a brand new long passphrase 7731",
            "confirm": "a brand new long passphrase 7731"}
    done = client.post("/reset-password", data=form)  # the form's token-free address
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert client.get("/reset-password").status_code == 400  # used: no longer kept


def test_item_47_the_kept_token_belongs_to_that_browser_only(app, client):
    paths = _links(app)
    assert client.get(paths["verify"]).status_code == 303
    other = app.test_client()
    assert other.get("/verify-email").status_code == 400  # another browser has nothing kept
    page = client.get("/verify-email")
    assert page.status_code == 200 and 'action="/verify-email"' in page.get_data(as_text=True)


def test_item_47_an_unknown_token_is_refused_without_a_redirect(app, client):
    response = client.get("/reset-password/" + "x" * 43)
    assert response.status_code == 400 and "Location" not in response.headers
