"""``idp clients create|list|list-service|unlist-service|rotate-secret``."""
from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from idp.services import DomainError, audit, directory
from idp.services import clients as client_service


@click.group()
def clients() -> None:
    """Register and list department (OIDC client) applications."""


@clients.command("create")
@click.option("--name", required=True, help="The department application's name, shown to residents.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="An exact redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True, help="An exact post-logout redirect URI (repeatable).")
@click.option("--backchannel-logout-uri", default=None, help="Back-channel logout URI.")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE only), e.g. a mobile app.")
@click.option("--scope", default="openid profile email", show_default=True, help="Space-separated scopes the client may ask for.")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(client_service.SUPPORTED_GRANTS), help="Allowed grant type (repeatable). Default: authorization_code and refresh_token.")
@click.option("--first-party", is_flag=True, help="A city-run application: residents are not asked for consent.")
@click.option("--jwks-file", type=click.File("r"), default=None, help="The client's public JWK Set, for private_key_jwt.")
@click.option("--purpose", default="", help="One line residents see on the sign-in and consent pages.")
@click.option("--logo", "logo_file", type=click.File("rb"), default=None, help="The department's logo (PNG or JPEG, <= 64 KB).")
@click.option("--api-resource", default=None,
              help="The URI that identifies this department's API (RFC 8707): other clients ask for tokens with "
                   "resource=URI and the tokens carry it as aud.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_appcontext
def create(name, redirect_uris, post_logout, backchannel_logout_uri, public, scope, grant_types, first_party,
           jwks_file, purpose, logo_file, api_resource, as_json) -> None:
    """Register a client. The secret is printed once and stored only as a keyed digest."""
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.load(jwks_file)
        except ValueError:
            raise click.ClickException("the JWKS file is not valid JSON") from None
    logo = logo_file.read(client_service.MAX_LOGO_BYTES + 1) if logo_file is not None else None
    try:
        client_service.check_branding(purpose, logo)  # before anything is written
        client, secret = client_service.create_client(
            name, list(redirect_uris), post_logout_redirect_uris=list(post_logout),
            backchannel_logout_uri=backchannel_logout_uri, public=public, scope=scope,
            grant_types=list(grant_types) or ["authorization_code", "refresh_token"], first_party=first_party,
            jwks=jwks, api_resource=api_resource)
        client_service.set_branding(client, purpose=purpose, logo=logo)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    audit.record("client.created", client_id=client.client_id, via="cli")
    result = client_service.describe(client)
    if secret:
        result["client_secret"] = secret
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"client_id:     {client.client_id}")
        if secret:
            click.echo(f"client_secret: {secret}  (shown once; store it safely)")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def list_command(as_json: bool) -> None:
    """List registered clients (never their secrets)."""
    rows = [client_service.describe(c) for c in client_service.list_clients()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['client_id']}  {row['client_name']}  {' '.join(row['redirect_uris'])}")


def _client_or_fail(client_id: str):
    client = client_service.find_client(client_id)
    if client is None:
        raise click.ClickException(f"no active client {client_id}")
    return client


@clients.command("list-service")
@click.argument("client_id")
@click.option("--category", required=True, type=click.Choice(list(directory.CATEGORIES)),
              help="Where residents find it in the services directory.")
@click.option("--url", "service_url", required=True, help="The department's home page (https).")
@click.option("--keywords", default="", help="Words residents use for what it does, e.g. \"pothole leak streetlight\".")
@with_appcontext
def list_service(client_id: str, category: str, service_url: str, keywords: str) -> None:
    """Show CLIENT_ID in the public services directory (its purpose line is the description)."""
    client = _client_or_fail(client_id)
    try:
        directory.set_listing(client, listed=True, category=category, service_url=service_url, keywords=keywords)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    audit.record("client.listed", client_id=client.client_id, via="cli", category=category)
    click.echo(f"{client.name} is listed under {directory.CATEGORIES[category]}.")


@clients.command("unlist-service")
@click.argument("client_id")
@with_appcontext
def unlist_service(client_id: str) -> None:
    """Take CLIENT_ID out of the public services directory."""
    client = _client_or_fail(client_id)
    directory.set_listing(client, listed=False)
    audit.record("client.unlisted", client_id=client.client_id, via="cli")
    click.echo(f"{client.name} is no longer listed.")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@with_appcontext
def rotate_secret(client_id: str, reason: str) -> None:
    """Give CLIENT_ID a new secret, printed once; the old one keeps working for
    IDP_CLIENT_SECRET_OVERLAP hours."""
    client = _client_or_fail(client_id)
    try:
        secret, until = client_service.rotate_secret(client)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    audit.record("client.secret_rotated", client_id=client.client_id, via="cli", reason=reason[:500],
                 previous_valid_until=until.isoformat() if until else None)
    click.echo(json.dumps({"client_id": client.client_id, "client_secret": secret,
                           "previous_secret_valid_until": until.isoformat() if until else None}))
