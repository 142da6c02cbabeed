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
@click.option("--now", "immediate", is_flag=True,
              help="Emergency (key compromise): sign with the new key at once and withdraw every older key.")
@with_appcontext
def rotate(alg: str | None, immediate: bool) -> None:
    """Publish a new key that signs after IDP_KEY_PREPUBLISH_SECONDS; the old public key stays
    published until its tokens expire (with --now: signs at once, older keys withdrawn)."""
    record = key_service.create_key(alg, immediate=immediate)
    audit.record("key.rotated", kid=record.kid, via="cli", emergency=immediate)
    click.echo(f"new signing key {record.kid} ({record.alg}), signing from {record.activates_at:%Y-%m-%d %H:%M:%S} UTC")
