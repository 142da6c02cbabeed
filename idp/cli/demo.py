"""``idp demo``: migrate, seed a resident, a register and the department clients, and run the IdP
together with every example department (relying_party_examples/<slug>/department.json)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import click

EXAMPLES = Path(__file__).resolve().parents[2] / "relying_party_examples"


def _department_port(ctx, param, values):
    ports = {}
    for value in values:
        slug, _, port = value.partition("=")
        if not slug or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise click.BadParameter(f"{value!r}: use SLUG=PORT, e.g. billing=5101")
        ports[slug] = int(port)
    return ports


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address every server listens on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="The IdP's port.")
@click.option("--department-port", "department_ports", multiple=True, callback=_department_port, metavar="SLUG=PORT",
              help="Run a department on another port than its department.json says (repeatable).")
@click.option("--no-departments", is_flag=True, help="Start the IdP alone, without the department apps.")
def demo(host: str, port: int, department_ports: dict, no_departments: bool) -> None:
    """Run the IdP with demo data and every example department in relying_party_examples (billing,
    permits, complaints, programs), one process each; Ctrl-C stops them all."""
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
    departments = [] if no_departments else _departments()
    unknown = set(department_ports) - {d.slug for d in departments}
    if unknown:
        raise click.ClickException(f"no department called {', '.join(sorted(unknown))} in {EXAMPLES}")
    ports = {d.slug: department_ports.get(d.slug, d.port) for d in departments}
    if len({port, *ports.values()}) != len(ports) + 1:
        raise click.ClickException("the IdP and the departments need a port each")

    app = create_app(settings)
    settings.warnings = []  # said once; the worker's app need not repeat it
    with app.app_context():
        click.echo("Applying database migrations…")
        upgrade()
        seed.seed_register(seed.seed_resident())
        clients = seed.seed_departments(settings.instance_path, departments,
                                        {slug: f"http://localhost:{p}" for slug, p in ports.items()})
        db.session.remove()
        db.engine.dispose()  # the workers open their own connections after the fork

    processes = [_start_department(slug, clients, settings, host, ports[slug]) for slug in ports]

    lines = [
        "",
        "eCitizen Passport demo",
        f"  IdP home:          {settings.issuer}/",
        f"  Discovery:         {settings.issuer}/.well-known/openid-configuration",
    ]
    if processes:
        lines += [f"  {d.name + ':':<19}{clients[d.slug].base_url}/" for d in departments]
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
           **_billing_api(clients)}
    return subprocess.Popen([sys.executable, "-m", f"relying_party_examples.{slug}"], env=env,
                            cwd=str(EXAMPLES.parent))


def _departments() -> list:
    from idp.services import demo as seed

    if not EXAMPLES.is_dir():
        click.echo(f"note: {EXAMPLES} is not here (installed without the examples); starting the IdP alone.",
                   err=True)
        return []
    try:
        return seed.find_departments(EXAMPLES)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _billing_api(clients: dict) -> dict:
    """Where billing's API is, for departments that ask it (complaints asks about arrears)."""
    if "billing" not in clients:
        return {}
    return {"RP_BILLING_API_URL": clients["billing"].api_resource,
            "RP_BILLING_API_RESOURCE": clients["billing"].api_resource}


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
