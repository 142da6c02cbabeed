"""SMS senders against a real local HTTP gateway: the outbox writes JSON and prints; the generic
HTTP and Clickatell senders post the right shape and key; a gateway that errors, refuses the key,
is down or hangs is an SmsError; errors and logs never carry the key, the text or the number."""
import json
import logging

import pytest
import requests

from idp.config import load_settings
from idp.delivery.sms import ClickatellSms, HttpSms, OutboxSms, SmsError, make_sms_sender
from tests.support import sms_fixtures
from tests.support.sms_gateway import GatewayServer

NUMBER = "+27821234567"
TEXT = "Your eCitizen Passport code is 482913. It expires in 10 minutes."
HTTP_KEY = sms_fixtures.GATEWAY_AUTH
CLICKATELL_KEY = "ck-Secret-Integration-Key-0042"


@pytest.fixture
def clickatell_gateway():
    with sms_fixtures.running_gateway(CLICKATELL_KEY) as gateway:
        yield gateway


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_nothing_leaks(error: Exception | None, caplog, *secrets: str) -> None:
    texts = [record.getMessage() for record in caplog.records]
    if error is not None:
        texts.append(str(error))
    for secret in (TEXT, "482913", NUMBER, NUMBER.lstrip("+"), *secrets):
        for text in texts:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


# -- outbox -------------------------------------------------------------------------------------

def test_outbox_writes_a_json_file_and_prints_the_line(tmp_path, capsys):
    OutboxSms(str(tmp_path / "sms")).send(NUMBER, TEXT)
    files = list((tmp_path / "sms").iterdir())
    assert len(files) == 1
    record = json.loads(files[0].read_text(encoding="utf-8"))
    assert record["to"] == NUMBER and record["text"] == TEXT
    assert record["sent_at"].startswith("20") and "T" in record["sent_at"]
    out = capsys.readouterr().out
    assert out.strip() == f"[sms outbox] to {NUMBER}: {TEXT} ({files[0]})"


def test_outbox_keeps_every_message(tmp_path, capsys):
    sender = OutboxSms(str(tmp_path / "sms"))
    for n in range(3):
        sender.send(f"+2782123456{n}", f"code {n}")
    assert len(list((tmp_path / "sms").iterdir())) == 3


# -- generic HTTP gateway -----------------------------------------------------------------------

def test_http_posts_json_with_the_authorization_header(sms_gateway, logs):
    HttpSms(sms_gateway.url, HTTP_KEY, timeout=5).send(NUMBER, TEXT)
    assert len(sms_gateway.requests) == 1
    request = sms_gateway.requests[0]
    assert request["method"] == "POST" and request["path"] == "/sms"
    assert request["headers"]["Authorization"] == HTTP_KEY
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {"to": NUMBER, "text": TEXT}
    assert request["status"] == 200
    assert sms_gateway.messages_to(NUMBER) == [TEXT]
    assert sms_gateway.last_code_for(NUMBER) == "482913"
    assert_nothing_leaks(None, logs, HTTP_KEY, "test-gateway-key")


def test_http_without_auth_header_sends_none():
    gateway = GatewayServer().start()
    try:
        HttpSms(gateway.url, None, timeout=5).send(NUMBER, TEXT)
        assert "Authorization" not in gateway.requests[0]["headers"]
        assert gateway.messages_to(NUMBER) == [TEXT]
    finally:
        gateway.stop()


def test_http_server_error_is_an_sms_error(sms_gateway, logs):
    sms_gateway.fail_with(500, {"error": "boom"})
    with pytest.raises(SmsError) as caught:
        HttpSms(sms_gateway.url, HTTP_KEY, timeout=5).send(NUMBER, TEXT)
    assert "500" in str(caught.value)
    assert sms_gateway.messages_to(NUMBER) == []
    assert any("500" in record.getMessage() for record in logs.records if record.name == "idp.sms")
    assert_nothing_leaks(caught.value, logs, HTTP_KEY, "test-gateway-key")


def test_http_gateway_recovers(sms_gateway):
    sender = HttpSms(sms_gateway.url, HTTP_KEY, timeout=5)
    sms_gateway.fail_with(503)
    with pytest.raises(SmsError):
        sender.send(NUMBER, "code 111111")
    sms_gateway.recover()
    sender.send(NUMBER, "code 222222")
    assert sms_gateway.messages_to(NUMBER) == ["code 222222"]
    assert sms_gateway.last_code_for(NUMBER) == "222222"


def test_http_wrong_key_is_an_sms_error(sms_gateway, logs):
    with pytest.raises(SmsError) as caught:
        HttpSms(sms_gateway.url, "Bearer wrong-key-9876", timeout=5).send(NUMBER, TEXT)
    assert "401" in str(caught.value)
    assert sms_gateway.requests[0]["status"] == 401
    assert sms_gateway.messages_to(NUMBER) == []
    assert_nothing_leaks(caught.value, logs, "wrong-key-9876")


def test_http_gateway_down_is_an_sms_error(sms_gateway, logs):
    url = sms_gateway.url
    sms_gateway.go_down()
    assert sms_gateway.url == url
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={}, timeout=2)
    with pytest.raises(SmsError) as caught:
        HttpSms(url, HTTP_KEY, timeout=2).send(NUMBER, TEXT)
    assert_nothing_leaks(caught.value, logs, HTTP_KEY, "test-gateway-key")
    sms_gateway.come_up()
    HttpSms(url, HTTP_KEY, timeout=2).send(NUMBER, TEXT)
    assert sms_gateway.messages_to(NUMBER) == [TEXT]


def test_http_gateway_timeout_is_an_sms_error(sms_gateway, logs):
    sms_gateway.hang(5)
    with pytest.raises(SmsError) as caught:
        HttpSms(sms_gateway.url, HTTP_KEY, timeout=0.5).send(NUMBER, TEXT)
    assert "time" in str(caught.value)
    assert_nothing_leaks(caught.value, logs, HTTP_KEY, "test-gateway-key")


def test_gateway_rejects_a_body_that_is_not_json(sms_gateway):
    answer = requests.post(sms_gateway.url, data=b"to=1&text=2", headers={"Authorization": HTTP_KEY}, timeout=5)
    assert answer.status_code == 400
    assert sms_gateway.requests[0]["json"] is None


# -- Clickatell One API ---------------------------------------------------------------------------

def test_clickatell_sends_the_documented_shape(clickatell_gateway, logs):
    ClickatellSms(CLICKATELL_KEY, clickatell_gateway.url, timeout=5).send(NUMBER, TEXT)
    request = clickatell_gateway.requests[0]
    assert request["method"] == "POST"
    assert request["headers"]["Authorization"] == CLICKATELL_KEY
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {"messages": [{"channel": "sms", "to": "27821234567", "content": TEXT}]}
    assert request["status"] == 202
    assert clickatell_gateway.messages_to(NUMBER) == [TEXT]
    assert clickatell_gateway.last_code_for(NUMBER) == "482913"
    assert_nothing_leaks(None, logs, CLICKATELL_KEY)


def test_clickatell_message_not_accepted_is_an_sms_error(clickatell_gateway, logs):
    clickatell_gateway.fail_with(202, {"messages": [{
        "apiMessageId": None, "accepted": False, "to": "27821234567",
        "error": {"code": 25, "description": "Invalid recipient address 27821234567: " + TEXT},
    }], "error": None})
    with pytest.raises(SmsError) as caught:
        ClickatellSms(CLICKATELL_KEY, clickatell_gateway.url, timeout=5).send(NUMBER, TEXT)
    assert any("25" in record.getMessage() for record in logs.records if record.name == "idp.sms")
    assert_nothing_leaks(caught.value, logs, CLICKATELL_KEY)


def test_clickatell_accepted_false_alone_is_an_sms_error(clickatell_gateway):
    clickatell_gateway.fail_with(202, {"messages": [{"apiMessageId": None, "accepted": False, "to": "27821234567",
                                                     "error": None}], "error": None})
    with pytest.raises(SmsError):
        ClickatellSms(CLICKATELL_KEY, clickatell_gateway.url, timeout=5).send(NUMBER, TEXT)


def test_clickatell_request_error_is_an_sms_error(clickatell_gateway, logs):
    clickatell_gateway.fail_with(202, {"messages": [], "error": {"code": 20, "description": "Insufficient balance"}})
    with pytest.raises(SmsError):
        ClickatellSms(CLICKATELL_KEY, clickatell_gateway.url, timeout=5).send(NUMBER, TEXT)
    clickatell_gateway.fail_with(200, None)  # 2xx without the per-message result
    with pytest.raises(SmsError):
        ClickatellSms(CLICKATELL_KEY, clickatell_gateway.url, timeout=5).send(NUMBER, TEXT)
    assert_nothing_leaks(None, logs, CLICKATELL_KEY)


def test_clickatell_wrong_key_is_an_sms_error(clickatell_gateway, logs):
    with pytest.raises(SmsError) as caught:
        ClickatellSms("ck-Wrong-Key-777", clickatell_gateway.url, timeout=5).send(NUMBER, TEXT)
    assert "401" in str(caught.value)
    assert_nothing_leaks(caught.value, logs, "ck-Wrong-Key-777")


def test_clickatell_down_and_timeout_are_sms_errors(clickatell_gateway, logs):
    sender = ClickatellSms(CLICKATELL_KEY, clickatell_gateway.url, timeout=0.5)
    clickatell_gateway.hang(5)
    with pytest.raises(SmsError):
        sender.send(NUMBER, TEXT)
    clickatell_gateway.go_down()
    with pytest.raises(SmsError):
        sender.send(NUMBER, TEXT)
    assert_nothing_leaks(None, logs, CLICKATELL_KEY)


# -- choosing the backend -------------------------------------------------------------------------

def _settings(tmp_path, **env):
    return load_settings({"IDP_INSTANCE_PATH": str(tmp_path), **env})


def test_make_sms_sender_defaults_to_the_outbox(tmp_path, capsys):
    sender = make_sms_sender(_settings(tmp_path))
    assert isinstance(sender, OutboxSms)
    sender.send(NUMBER, TEXT)
    assert len(list((tmp_path / "sms-outbox").iterdir())) == 1


def test_make_sms_sender_http(tmp_path, sms_gateway):
    settings = _settings(tmp_path, IDP_SMS_BACKEND="http", IDP_SMS_HTTP_URL=sms_gateway.url,
                         IDP_SMS_HTTP_AUTH_HEADER=HTTP_KEY, IDP_SMS_TIMEOUT="3")
    sender = make_sms_sender(settings)
    assert isinstance(sender, HttpSms)
    assert sender.timeout == 3
    sender.send(NUMBER, TEXT)
    assert sms_gateway.last_code_for(NUMBER) == "482913"


def test_make_sms_sender_clickatell(tmp_path, clickatell_gateway):
    settings = _settings(tmp_path, IDP_SMS_BACKEND="clickatell", IDP_SMS_CLICKATELL_API_KEY=CLICKATELL_KEY,
                         IDP_SMS_CLICKATELL_URL=clickatell_gateway.url)
    sender = make_sms_sender(settings)
    assert isinstance(sender, ClickatellSms)
    sender.send(NUMBER, TEXT)
    assert clickatell_gateway.last_code_for(NUMBER) == "482913"


def test_make_sms_sender_clickatell_default_url(tmp_path):
    settings = _settings(tmp_path, IDP_SMS_BACKEND="clickatell", IDP_SMS_CLICKATELL_API_KEY=CLICKATELL_KEY)
    sender = make_sms_sender(settings)
    assert sender.url.startswith("https://platform.clickatell.com/")
    assert sender.api_key == CLICKATELL_KEY
