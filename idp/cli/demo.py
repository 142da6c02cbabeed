"""``idp demo``: migrate, seed a resident and a department client, and run the IdP together
with the example department app (relying_party_examples/hello_department)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import click

RP_APP = Path(__file__).resolve().parents[2] / "relying_party_examples" / "hello_department" / "app.py"


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address both servers listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="The IdP's port.")
@click.option("--rp-port", default=5001, show_default=True, type=click.IntRange(1, 65535),
              help="The demo department app's port.")
@click.option("--no-rp", is_flag=True, help="Do not start the demo department app.")
def demo(host: str, port: int, rp_port: int, no_rp: bool) -> None:
    """Run the IdP with demo data (and the demo department app) on this machine."""
    from flask_migrate import upgrade

    from idp import create_app
    from idp.cli.serve import DEFAULT_THREADS, run_server
    from idp.config import load_settings_or_exit
    from idp.extensions import db
    from idp.services import demo as seed

    # Browsers reach the demo at http://localhost:<port>; that is its issuer unless one is set.
    os.environ.setdefault("IDP_ISSUER", f"http://localhost:{port}")
    settings = load_settings_or_exit()
    if settings.env == "production":
        raise click.ClickException("idp demo seeds a known password: refusing to run with IDP_ENV=production")
    rp_base = f"http://localhost:{rp_port}"

    app = create_app(settings)
    settings.warnings = []  # said once; the worker's app need not repeat it
    with app.app_context():
        click.echo("Applying database migrations…")
        upgrade()
        seed.seed_register(seed.seed_resident())
        try:
            client = seed.seed_department_client(settings.instance_path, rp_base)
        except seed.ClientsUnavailable:
            client = None
            click.echo("note: client registration is not available in this build; "
                       "starting the IdP without the demo department.", err=True)
        db.session.remove()
        db.engine.dispose()  # the workers open their own connections after the fork

    rp_process = None
    if not no_rp and client is not None:
        if not RP_APP.exists():
            click.echo(f"note: {RP_APP} is missing; starting the IdP alone.", err=True)
        else:
            env = {**os.environ, "RP_ISSUER": settings.issuer, "RP_CLIENT_ID": client.client_id,
                   "RP_CLIENT_SECRET": client.client_secret, "RP_BASE_URL": rp_base,
                   "RP_SECRET_KEY": secrets.token_urlsafe(32), "RP_HOST": host, "RP_PORT": str(rp_port)}
            rp_process = subprocess.Popen([sys.executable, str(RP_APP)], env=env, cwd=str(RP_APP.parent))

    lines = [
        "",
        "eCitizen Passport demo",
        f"  IdP home:          {settings.issuer}/",
        f"  Discovery:         {settings.issuer}/.well-known/openid-configuration",
    ]
    if rp_process:
        lines.append(f"  Demo department:   {rp_base}/")
    lines += [
        f"  Demo resident:     {seed.DEMO_EMAIL}",
        f"  Password:          {seed.DEMO_PASSWORD}",
        f"  Account to link:   {seed.DEMO_LINKABLE[0]}, linking PIN {seed.DEMO_LINKABLE[1]}"
        " (My account, My municipal accounts)",
        f"  Text messages:     {settings.sms_outbox_dir}" if settings.sms_backend == "outbox"
        else f"  Text messages via: {settings.sms_backend}",
    ]
    if client is not None:
        secret_file = Path(settings.instance_path) / seed.CLIENT_FILE
        lines.append(f"  Demo client id:    {client.client_id}  (secret in {secret_file})")
    lines += [
        f"  Mail outbox:       {settings.outbox_dir}" if not settings.smtp_host else f"  Mail via SMTP:     {settings.smtp_host}",
        "  Stop with Ctrl-C.",
        "",
    ]
    click.echo("\n".join(lines))
    sys.stdout.flush()

    master = os.getpid()
    try:
        run_server(settings, host, port, 1, DEFAULT_THREADS)
    finally:
        if os.getpid() == master and rp_process is not None:
            _stop(rp_process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
