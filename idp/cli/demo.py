"""``idp demo``: migrate, seed a resident, a register and the department clients, and run the IdP
together with the example departments (relying_party_examples/billing, permits, complaints)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import click

EXAMPLES = Path(__file__).resolve().parents[2] / "relying_party_examples"
DEFAULT_PORTS = {"billing": 5101, "permits": 5102, "complaints": 5103}


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address every server listens on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="The IdP's port.")
@click.option("--billing-port", default=DEFAULT_PORTS["billing"], show_default=True,
              type=click.IntRange(1, 65535), help="The billing department's port.")
@click.option("--permits-port", default=DEFAULT_PORTS["permits"], show_default=True,
              type=click.IntRange(1, 65535), help="The permits department's port.")
@click.option("--complaints-port", default=DEFAULT_PORTS["complaints"], show_default=True,
              type=click.IntRange(1, 65535), help="The complaints department's port.")
@click.option("--no-departments", is_flag=True, help="Start the IdP alone, without the department apps.")
def demo(host: str, port: int, billing_port: int, permits_port: int, complaints_port: int,
         no_departments: bool) -> None:
    """Run the IdP with demo data and the three example departments (billing, permits,
    complaints), one process each; Ctrl-C stops them all."""
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
    ports = {"billing": billing_port, "permits": permits_port, "complaints": complaints_port}
    if len({port, *ports.values()}) != len(ports) + 1:
        raise click.ClickException("the IdP and the departments need a port each")
    if not no_departments and not (EXAMPLES / "common").is_dir():
        click.echo(f"note: {EXAMPLES} is not here (installed without the examples); starting the IdP alone.",
                   err=True)
        no_departments = True

    app = create_app(settings)
    settings.warnings = []  # said once; the worker's app need not repeat it
    with app.app_context():
        click.echo("Applying database migrations…")
        upgrade()
        seed.seed_register(seed.seed_resident())
        clients = seed.seed_departments(settings.instance_path,
                                        {slug: f"http://localhost:{p}" for slug, p in ports.items()})
        db.session.remove()
        db.engine.dispose()  # the workers open their own connections after the fork

    processes = [] if no_departments else [
        _start_department(slug, clients, settings, host, ports[slug]) for slug in ports]

    lines = [
        "",
        "eCitizen Passport demo",
        f"  IdP home:          {settings.issuer}/",
        f"  Discovery:         {settings.issuer}/.well-known/openid-configuration",
    ]
    if processes:
        lines += [f"  {slug.capitalize() + ':':<19}{clients[slug].base_url}/" for slug in ports]
    lines += [
        f"  Demo resident:     {seed.DEMO_EMAIL}",
        f"  Password:          {seed.DEMO_PASSWORD}",
        f"  Account to link:   {seed.DEMO_LINKABLE[0]}, linking PIN {seed.DEMO_LINKABLE[1]}"
        " (My account, My municipal accounts)",
        f"  Text messages:     {settings.sms_outbox_dir}" if settings.sms_backend == "outbox"
        else f"  Text messages via: {settings.sms_backend}",
        f"  Department clients: secrets in {Path(settings.instance_path) / seed.CLIENTS_FILE}",
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
        if os.getpid() == master:
            for process in processes:
                _stop(process)


def _start_department(slug: str, clients: dict, settings, host: str, port: int) -> subprocess.Popen:
    """One department app in its own process, with its own database under the instance folder."""
    client = clients[slug]
    env = {**os.environ, "RP_ISSUER": settings.issuer, "RP_CLIENT_ID": client.client_id,
           "RP_CLIENT_SECRET": client.client_secret, "RP_BASE_URL": client.base_url,
           "RP_API_RESOURCE": client.api_resource, "RP_SECRET_KEY": secrets.token_urlsafe(32),
           "RP_INSTANCE_PATH": str(Path(settings.instance_path) / "departments"),
           "RP_HOST": host, "RP_PORT": str(port),
           # Complaints asks billing whether an account is in arrears.
           "RP_BILLING_API_URL": clients["billing"].api_resource,
           "RP_BILLING_API_RESOURCE": clients["billing"].api_resource}
    return subprocess.Popen([sys.executable, "-m", f"relying_party_examples.{slug}"], env=env,
                            cwd=str(EXAMPLES.parent))


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
