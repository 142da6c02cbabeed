"""``idp keys rotate``."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.services import audit
from idp.services import keys as key_service


@click.group()
def keys() -> None:
    """Manage token signing keys."""


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), default=None, help="Algorithm of the new key (default: IDP_SIGNING_ALG).")
@with_appcontext
def rotate(alg: str | None) -> None:
    """Start signing with a new key; the old public key stays published until its tokens expire."""
    record = key_service.create_key(alg)
    audit.record("key.rotated", kid=record.kid, via="cli")
    click.echo(f"new signing key {record.kid} ({record.alg})")
