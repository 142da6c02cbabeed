"""Checklist 85: email send throttles. An attacker scripts sign-ups, "send the confirmation link
again" and password resets to bomb an inbox or burn the city's mail budget. Per client address
the three share one budget (IDP_MAIL_REQUESTS_PER_IP an hour): past it they answer 429 with
Retry-After and send nothing, and the throttled answer is byte-for-byte the same for a known and
an unknown address. Per address at most REQUESTED_MAILS_PER_HOUR mails go out, whatever the IP."""
from __future__ import annotations

import time

import pytest

from idp.extensions import db
from idp.models import User
from idp.services import action_tokens
from tests.conftest import csrf_token, page_without_tokens
from tests.integration.test_signin_flows import make_user

NEW_PASSWORD = "a completely fresh passphrase for me"


def _post(client, path: str, data: dict, ip: str):
    environ = {"REMOTE_ADDR": ip}
    page = client.get(path, environ_base=environ)
    return client.post(path, environ_base=environ,
                       data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def _register(client, email: str, ip: str):
    return _post(client, "/register", {"name": "Attacker Bot", "email": email, "password": NEW_PASSWORD}, ip)


def _reset(client, email: str, ip: str):
    return _post(client, "/forgot-password", {"email": email}, ip)


def _resend(client, email: str, ip: str):
    return _post(client, "/verify-email/resend", {"email": email}, ip)


def _limit(app) -> int:
    return app.config["IDP_SETTINGS"].mail_requests_per_ip


def _settle(app, smtp_server) -> int:
    from idp.services import delivery_worker

    delivery_worker.wait_idle(app)
    time.sleep(0.2)
    return len(smtp_server.messages)


def test_item_85_one_address_shares_its_budget_across_the_three_forms(app, client, smtp_server):
    ip = "198.51.100.20"
    for n in range(_limit(app)):
        send = (_register, _reset, _resend)[n % 3]
        assert send(client, f"target{n}@example.org", ip).status_code in (200, 400), n
    for send in (_register, _reset, _resend):
        refused = send(client, "someone@example.org", ip)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)
                                 .where(User.email == "someone@example.org")) == 0  # nothing stored
    sent = _settle(app, smtp_server)
    assert not any("someone@example.org" in str(m.get("To", "")) for m in smtp_server.messages)
    # Another client address is not affected.
    assert _reset(client, "someone@example.org", "198.51.100.21").status_code == 200
    assert sent <= _limit(app)


@pytest.mark.parametrize("send", [_register, _reset, _resend], ids=["register", "reset", "resend"])
def test_item_85_throttled_answers_are_identical_for_known_and_unknown_addresses(app, client, send):
    make_user(app, email="known@example.org", verified=False)
    ip = "198.51.100.30"
    for n in range(_limit(app)):
        send(client, f"filler{n}@example.org", ip)
    known = send(client, "known@example.org", ip)
    unknown = send(client, "unknown@example.org", ip)
    assert known.status_code == unknown.status_code == 429
    assert page_without_tokens(known) == page_without_tokens(unknown)
    drop = {"Set-Cookie", "X-Request-ID", "Content-Security-Policy", "Date"}
    assert ({k: v for k, v in known.headers.items() if k not in drop}
            == {k: v for k, v in unknown.headers.items() if k not in drop})
    assert "known@example.org" not in known.get_data(as_text=True)


def test_item_85_one_address_gets_a_bounded_number_of_mails_from_many_addresses(app, client, smtp_server):
    make_user(app, email="victim@example.org", verified=False)
    for n in range(3 * action_tokens.REQUESTED_MAILS_PER_HOUR):
        send = (_reset, _resend, _register)[n % 3]
        response = send(client, "victim@example.org", f"203.0.113.{n + 1}")
        assert response.status_code in (200, 400)
    _settle(app, smtp_server)
    to_victim = [m for m in smtp_server.messages if "victim@example.org" in str(m.get("To", ""))]
    assert 1 <= len(to_victim) <= action_tokens.REQUESTED_MAILS_PER_HOUR


@pytest.mark.parametrize("value", ["0", "-1", "lots", "10001"])
def test_item_85_the_per_ip_mail_limit_setting_is_validated(value):
    from idp.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings({"IDP_MAIL_REQUESTS_PER_IP": value, "IDP_SECRET_KEY": "k" * 40})
    assert [p for p in refused.value.problems if p.startswith("IDP_MAIL_REQUESTS_PER_IP:")]
