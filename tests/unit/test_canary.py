"""The canary check can fail: a logged secret and an answer echoing a posted secret are both
found, while ordinary lines and answers are not."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request

from tests.support.canary import Canary


def test_a_logged_secret_handed_out_or_typed_is_found():
    canary = Canary()
    app = Flask(__name__)

    @app.post("/token")
    def token():
        logging.getLogger("leaky").warning("issued %s", "at-" + "x" * 30)
        return jsonify(access_token="at-" + "x" * 30)

    @app.post("/login")
    def login():
        return "welcome"

    canary.wrap(app)
    logger = logging.getLogger("leaky")
    logger.addHandler(canary)
    logger.setLevel(logging.INFO)
    try:
        client = app.test_client()
        client.post("/token")
        client.post("/login", data={"password": "a long secret passphrase"})
        logger.info("the password was %s", "a long secret passphrase")
        logger.info("an ordinary line with nothing secret in it")
    finally:
        logger.removeHandler(canary)
        logger.setLevel(logging.NOTSET)
    assert canary.leaks() == ["issued at-" + "x" * 30, "the password was a long secret passphrase"]
    assert canary.echoes == []


def test_an_answer_echoing_what_it_was_sent_is_found():
    canary = Canary()
    app = Flask(__name__)

    @app.post("/login")
    def login():
        return f'<input name="password" value="{request.form["password"]}">'

    @app.post("/code")
    def code():
        return "code refused"

    canary.wrap(app)
    client = app.test_client()
    client.post("/login", data={"password": "correct horse battery"})
    client.post("/code", data={"code": "123456"})
    assert canary.echoes == ["POST /login echoed a secret it was sent (21 characters, starting 'co')"]


def test_a_typed_account_number_may_be_shown_back_but_never_logged():
    canary = Canary()
    app = Flask(__name__)

    @app.post("/municipal/link")
    def link():
        logging.getLogger("leaky").warning("link asked for %s", request.form["account_number"])
        return f"Account {request.form['account_number']} is linked"

    canary.wrap(app)
    logger = logging.getLogger("leaky")
    logger.addHandler(canary)
    logger.setLevel(logging.INFO)
    try:
        # A number no other test types: the run's own canary reads this log line too.
        app.test_client().post("/municipal/link", data={"account_number": "5550001113"})
    finally:
        logger.removeHandler(canary)
        logger.setLevel(logging.NOTSET)
    assert canary.echoes == []  # the resident's own page may show it
    assert canary.leaks() == ["link asked for 5550001113"]
