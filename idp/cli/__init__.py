"""The ``idp`` command: ``idp db upgrade``, ``idp users …``, ``idp clients …``, ``idp keys rotate``,
``idp accounts import``, ``idp link-requests …``, ``idp mail status|retry``, ``idp retention run``,
``idp serve``, ``idp demo``."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app():
    from idp import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False, set_debug_flag=False)
def main() -> None:
    """eCitizen Passport identity provider. Configuration comes from IDP_* environment variables."""


def register(app: Flask) -> None:
    """Attach the IdP's command groups to the app's CLI."""
    from idp.cli import clients, demo, keys, link_requests, mail, municipal_register, retention, serve, users

    for command in (users.users, clients.clients, keys.keys, municipal_register.accounts, link_requests.link_requests,
                    mail.mail, retention.retention, serve.serve, demo.demo):
        app.cli.add_command(command)


# FlaskGroup's own options (--app, --env-file, --debug) do not apply: the app is always ours.
main.params = [p for p in main.params if p.name not in ("app", "env_file", "debug")]
