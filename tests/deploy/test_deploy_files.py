"""Static checks of the deployment kit in deploy/ (Dockerfile, docker-compose.yml, k8s/, proxy/).

Neither Docker nor Kubernetes runs here: these tests parse the files and hold them against the
application itself (the settings table in ``idp.config._SPEC``, the app's routes, the ``idp``
command line and the example relying party's variables), so that renaming a variable, a route or
a command breaks a test instead of a deployment.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import idp
from idp.cli import main as idp_cli
from idp.cli.serve import worker_count_problem
from idp.config import _SPEC, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
CADDYFILE = DEPLOY / "proxy" / "Caddyfile"
RP_APP = ROOT / "relying_party_examples" / "hello_department" / "app.py"

SPEC = {var: (parse, default) for var, _attr, parse, default in _SPEC}
# Secret values are placeholders or interpolations in the kit; their parsers are exercised with
# stand-ins below instead.
SECRET_VARS = {
    "IDP_SECRET_KEY", "IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_SMTP_PASSWORD", "IDP_METRICS_TOKEN",
    "IDP_SMS_CLICKATELL_API_KEY", "IDP_SMS_HTTP_AUTH_HEADER",
}
STAND_IN_SECRETS = {
    "IDP_SECRET_KEY": "s" * 48,
    "IDP_METRICS_TOKEN": "m" * 40,
    "POSTGRES_PASSWORD": "0123456789abcdef",
    "RP_CLIENT_ID": "client-id",
    "RP_CLIENT_SECRET": "client-secret",
}
IDP_NAME = re.compile(r"\bIDP_[A-Z0-9_]*[A-Z0-9]\b")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# ---------------------------------------------------------------- helpers


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def k8s(kind: str) -> list[dict]:
    return [d for d in k8s_documents() if d.get("kind") == kind]


def one(kind: str) -> dict:
    found = k8s(kind)
    assert len(found) == 1, f"expected exactly one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(name: str) -> dict:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def compose_environment(svc: dict) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} like `docker compose` does."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op and op.endswith("-"):
            return arg
        if op and op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return ""

    return INTERPOLATION.sub(substitute, value)


def command_list(value) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def dockerfile_final_stage() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(starts) >= 2, "the Dockerfile should be a multi-stage build"
    return lines[starts[-1]:]


def dockerfile_instructions(keyword: str) -> list[str]:
    return [line[len(keyword):].strip() for line in dockerfile_final_stage() if line.upper().startswith(keyword + " ")]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for rest in dockerfile_instructions("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def idp_container(workload: dict) -> dict:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def container_args(container: dict) -> list[str]:
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def quantity(value: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    for suffix, factor in units.items():
        if str(value).endswith(suffix):
            return float(str(value)[: -len(suffix)]) * factor
    return float(value)


def configured_values() -> list[tuple[str, str, str]]:
    """Every (variable, value, where) an IDP_* variable is given a value in deploy/."""
    found = []
    for name, svc in compose()["services"].items():
        for key, value in compose_environment(svc).items():
            found.append((key, value, f"docker-compose.yml:{name}"))
    for doc in k8s_documents():
        where = f"k8s {doc['kind']}/{doc['metadata']['name']}"
        for section in ("data", "stringData"):
            for key, value in (doc.get(section) or {}).items():
                found.append((key, str(value), where))
        if doc["kind"] in ("Deployment", "Job"):
            for container in pod_spec(doc)["containers"]:
                for item in container.get("env") or []:
                    found.append((item["name"], str(item.get("value", "")), where))
    for key, value in dockerfile_env().items():
        found.append((key, value, "Dockerfile ENV"))
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            found.append((key.strip(), value.strip(), ".env.example"))
    return [(k, v, w) for k, v, w in found if k.startswith("IDP_")]


def deploy_text_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix not in (".pyc",))


# ---------------------------------------------------------------- files and syntax


def test_the_kit_is_complete():
    for name in ("Dockerfile", "README.md", "docker-compose.yml", ".env.example", "proxy/Caddyfile",
                 "k8s/kustomization.yaml", "k8s/configmap.yaml", "k8s/secret.example.yaml",
                 "k8s/deployment.yaml", "k8s/service.yaml", "k8s/hpa.yaml", "k8s/pdb.yaml",
                 "k8s/migrate-job.yaml", "k8s/ingress.yaml"):
        assert (DEPLOY / name).is_file(), f"deploy/{name} is missing"


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict)
        if path.parent == K8S and path.name != "kustomization.yaml":
            assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name")
            assert "namespace" not in doc["metadata"], "the manifests are namespace-agnostic"


def test_kustomization_lists_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization.yaml lists a missing file {name}"
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == manifests - {"secret.example.yaml"}
    assert "namespace" not in kustomization


# ---------------------------------------------------------------- settings


def test_every_idp_variable_named_in_deploy_exists_in_the_settings_table():
    unknown = {}
    for path in deploy_text_files():
        for name in IDP_NAME.findall(path.read_text()):
            if name not in SPEC:
                unknown.setdefault(name, str(path.relative_to(DEPLOY)))
    assert not unknown, f"IDP_* names that idp/config.py does not know: {unknown}"


def test_the_name_check_would_catch_a_misspelt_variable():
    assert "IDP_SECRETKEY" not in SPEC and IDP_NAME.findall("x IDP_SECRETKEY=1") == ["IDP_SECRETKEY"]


def test_every_value_given_to_an_idp_variable_parses():
    values = configured_values()
    assert len(values) > 20
    problems = []
    for var, value, where in values:
        if var in SECRET_VARS or "${" in value or value == "":
            continue
        parse, _default = SPEC[var]
        try:
            parse(value)
        except ValueError as exc:
            problems.append(f"{where}: {var}={value!r}: {exc}")
    assert not problems, "\n".join(problems)


def test_choice_variables_are_checked_against_their_options():
    checked = {var for var, value, _ in configured_values() if var in ("IDP_ENV", "IDP_LOG_LEVEL", "IDP_SMS_BACKEND")}
    assert checked == {"IDP_ENV", "IDP_LOG_LEVEL", "IDP_SMS_BACKEND"}
    with pytest.raises(ValueError):
        SPEC["IDP_ENV"][0]("prod")


def test_kubernetes_configmap_and_secret_make_a_valid_production_configuration(tmp_path):
    env = dict(one("ConfigMap")["data"])
    env.update(one("Secret")["stringData"])
    env.update({k: v for k, v in STAND_IN_SECRETS.items() if k.startswith("IDP_")})
    env["IDP_INSTANCE_PATH"] = str(tmp_path)
    settings = load_settings(env)
    assert settings.env == "production"
    assert settings.issuer.startswith("https://")
    assert settings.trust_proxy == 1
    assert settings.redis_url
    workers = int(option(container_args(idp_container(one("Deployment"))), "--workers"))
    assert worker_count_problem(settings, workers) is None


def test_the_example_secret_holds_only_placeholders_the_app_refuses():
    secret = one("Secret")
    text = (K8S / "secret.example.yaml").read_text()
    assert "EXAMPLE" in text.upper()
    data = secret["stringData"]
    required = {"IDP_SECRET_KEY", "IDP_DATABASE_URL", "IDP_REDIS_URL", "IDP_SMTP_PASSWORD", "IDP_METRICS_TOKEN"}
    assert required <= set(data)
    assert all("CHANGE-ME" in value for value in data.values())
    # Applied by mistake, the example must not yield a running IdP with a known key.
    with pytest.raises(ValueError):
        SPEC["IDP_SECRET_KEY"][0](data["IDP_SECRET_KEY"])
    with pytest.raises(ValueError):
        SPEC["IDP_METRICS_TOKEN"][0](data["IDP_METRICS_TOKEN"])


def test_compose_idp_environment_is_a_valid_production_configuration(tmp_path):
    raw = compose_environment(service("idp"))
    env = {k: interpolate(v, STAND_IN_SECRETS) for k, v in raw.items()}
    env["IDP_INSTANCE_PATH"] = str(tmp_path)
    settings = load_settings(env)
    assert settings.env == "production"
    assert settings.trust_proxy == 1
    assert settings.smtp_host == "mailpit" and settings.smtp_port == 1025 and settings.smtp_starttls is False
    assert "@postgres:" in settings.database_url
    assert settings.redis_url == "redis://redis:6379/0"
    workers = int(option(command_list(service("idp")["command"]), "--workers"))
    assert worker_count_problem(settings, workers) is None


def test_compose_requires_the_secret_key_instead_of_defaulting_it():
    raw = compose_environment(service("idp"))
    assert re.fullmatch(r"\$\{IDP_SECRET_KEY:\?[^}]*\}", raw["IDP_SECRET_KEY"])
    with pytest.raises(KeyError):
        interpolate(raw["IDP_SECRET_KEY"], {})


def test_a_bad_value_would_be_reported():
    with pytest.raises(ConfigError):
        load_settings({"IDP_ENV": "production", "IDP_ISSUER": "http://id.example", "IDP_SECRET_KEY": "s" * 48,
                       "IDP_INSTANCE_PATH": "/nonexistent-not-created"})


# ---------------------------------------------------------------- Kubernetes workloads


def test_deployment_runs_two_or_more_hardened_replicas():
    deployment = one("Deployment")
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["spec"]["replicas"] >= 2
    spec = pod_spec(deployment)
    container = idp_container(deployment)
    assert spec["terminationGracePeriodSeconds"] >= 30
    pod_sc, sc = spec.get("securityContext", {}), container.get("securityContext", {})
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    assert sc.get("runAsUser", pod_sc.get("runAsUser")) == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    # The read-only root needs writable scratch space for the instance folder and gunicorn.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in ("/var/lib/idp", "/tmp"):
        assert path in mounts and "emptyDir" in volumes[mounts[path]]


def test_deployment_has_resources_within_the_memory_target():
    resources = idp_container(one("Deployment"))["resources"]
    assert quantity(resources["requests"]["cpu"]) > 0
    assert quantity(resources["requests"]["memory"]) == 256 * 2**20
    assert quantity(resources["limits"]["memory"]) >= quantity(resources["requests"]["memory"])


def test_deployment_probes_use_health_and_readiness_endpoints():
    container = idp_container(one("Deployment"))
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        paths[probe] = get["path"]
        assert port_names.get(get["port"], get["port"]) == container["ports"][0]["containerPort"]
    assert paths["livenessProbe"] == "/healthz"
    assert paths["startupProbe"] == "/healthz"
    assert paths["readinessProbe"] == "/readyz"


def probe_paths() -> set[str]:
    paths = set()
    container = idp_container(one("Deployment"))
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        paths.add(container[probe]["httpGet"]["path"])
    healthcheck = " ".join(dockerfile_instructions("HEALTHCHECK"))
    paths.update(re.findall(r"127\.0\.0\.1:\d+(/[A-Za-z0-9_/-]*)", healthcheck))
    paths.update(re.findall(r"health_uri\s+(\S+)", CADDYFILE.read_text()))
    return paths


def test_probe_paths_are_routes_of_the_app(tmp_path):
    paths = probe_paths()
    assert {"/healthz", "/readyz"} <= paths
    app = idp.create_app(load_settings({"IDP_INSTANCE_PATH": str(tmp_path)}))
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert paths <= routes, f"probe paths the app does not serve: {sorted(paths - routes)}"
    assert app.test_client().get("/healthz").status_code == 200


def test_deployment_reads_the_configmap_and_secret():
    refs = idp_container(one("Deployment"))["envFrom"]
    assert {"configMapRef": {"name": one("ConfigMap")["metadata"]["name"]}} in refs
    assert {"secretRef": {"name": one("Secret")["metadata"]["name"]}} in refs


def test_container_port_matches_the_serve_port():
    deployment = one("Deployment")
    container = idp_container(deployment)
    args = container_args(container)
    assert args[:2] == ["idp", "serve"]
    assert option(args, "--host") == "0.0.0.0"
    assert [p["containerPort"] for p in container["ports"]] == [int(option(args, "--port"))]
    # The image's default command and healthcheck use the same port.
    cmd = json.loads(dockerfile_instructions("CMD")[-1])
    assert option(cmd, "--port") == option(args, "--port")
    assert f"127.0.0.1:{option(args, '--port')}/" in " ".join(dockerfile_instructions("HEALTHCHECK"))
    assert dockerfile_instructions("EXPOSE") == [option(args, "--port")]


def test_service_pdb_and_ingress_select_the_deployment_pods():
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = idp_container(deployment)
    service_doc = one("Service")
    assert service_doc["spec"]["selector"].items() <= pod_labels.items()
    target_ports = {p["name"] for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    assert all(p["targetPort"] in target_ports for p in service_doc["spec"]["ports"])
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"].get("minAvailable", 0) >= 1 or "maxUnavailable" in pdb["spec"]
    ingress = one("Ingress")
    assert ingress["spec"]["tls"] and ingress["spec"]["tls"][0]["secretName"]
    ports = service_doc["spec"]["ports"]
    service_ports = {p["name"] for p in ports} | {p["port"] for p in ports}
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service_doc["metadata"]["name"]
            assert backend["port"].get("name", backend["port"].get("number")) in service_ports
    issuer_host = re.sub(r"^https://", "", one("ConfigMap")["data"]["IDP_ISSUER"]).split("/")[0]
    assert issuer_host in ingress["spec"]["tls"][0]["hosts"]
    assert "IDP_TRUST_PROXY" in (K8S / "ingress.yaml").read_text()


def test_hpa_scales_the_deployment():
    hpa, deployment = one("HorizontalPodAutoscaler"), one("Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    # CPU utilisation is a share of the request: the container must have one.
    assert idp_container(deployment)["resources"]["requests"]["cpu"]


def test_migration_job_runs_db_upgrade_with_the_same_image_and_settings():
    job, deployment = one("Job"), one("Deployment")
    container = idp_container(job)
    assert container_args(container) == ["idp", "db", "upgrade"]
    assert container["image"] == idp_container(deployment)["image"]
    assert container["envFrom"] == idp_container(deployment)["envFrom"]
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert container["securityContext"]["runAsNonRoot"] is True


# ---------------------------------------------------------------- the idp commands used


def used_idp_commands() -> list[list[str]]:
    commands = [container_args(idp_container(one("Deployment"))), container_args(idp_container(one("Job"))),
                json.loads(dockerfile_instructions("CMD")[-1])]
    for name in ("migrate", "idp"):
        commands.append(command_list(service(name)["command"]))
    assert all(c[0] == "idp" for c in commands)
    return commands


@pytest.mark.parametrize("index", range(5))
def test_every_idp_command_in_the_kit_exists(index, tmp_path):
    args = used_idp_commands()[index]
    # --help parses every option given before it, so an unknown option or command fails here.
    result = CliRunner().invoke(idp_cli, [*args[1:], "--help"], env={"IDP_INSTANCE_PATH": str(tmp_path)})
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_final_stage_is_non_root_with_a_healthz_healthcheck():
    users = dockerfile_instructions("USER")
    assert users, "the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001"
    healthcheck = dockerfile_instructions("HEALTHCHECK")
    assert len(healthcheck) == 1 and "/healthz" in healthcheck[0]
    assert dockerfile_env().get("IDP_ENV") == "production"


# ---------------------------------------------------------------- docker compose


def test_compose_idp_service_builds_the_image_and_waits_for_its_dependencies():
    idp_svc = service("idp")
    build = idp_svc["build"]
    assert build["context"] == ".."
    assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
    depends = idp_svc["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert service("postgres")["image"] == "postgres:16" and service("postgres")["healthcheck"]
    assert service("redis")["image"].startswith("redis:7") and service("redis")["healthcheck"]
    assert service("mailpit")["image"].startswith("axllent/mailpit")
    env = compose_environment(idp_svc)
    assert env["IDP_SMTP_HOST"] == "mailpit" and env["IDP_SMTP_PORT"] == "1025"
    assert env["IDP_TRUST_PROXY"] == "1"


def test_compose_migrate_runs_db_upgrade_with_the_idp_image_and_settings():
    migrate, idp_svc = service("migrate"), service("idp")
    assert command_list(migrate["command"]) == ["idp", "db", "upgrade"]
    assert migrate["image"] == idp_svc["image"]
    assert compose_environment(migrate) == compose_environment(idp_svc)
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_ports_line_up_with_the_proxy():
    idp_svc = service("idp")
    port = option(command_list(idp_svc["command"]), "--port")
    assert port in [str(p) for p in idp_svc["expose"]]
    caddy = CADDYFILE.read_text()
    assert f"reverse_proxy idp:{port}" in caddy
    rp_port = compose_environment(service("hello_department"))["RP_PORT"]
    assert f"reverse_proxy hello_department:{rp_port}" in caddy
    # The public issuer's host and port are a site of the proxy and published by compose.
    issuer = interpolate(compose_environment(idp_svc)["IDP_ISSUER"], {})
    assert issuer.startswith("https://")
    hostport = issuer.removeprefix("https://")
    assert f"{issuer} {{" in caddy
    published = [str(p) for p in service("proxy")["ports"]]
    assert any(p.split(":")[-1] == hostport.split(":")[1] for p in published)


def test_compose_rp_variables_are_the_ones_the_example_app_reads():
    read = set(re.findall(r"os\.environ\.get\(\"(RP_[A-Z_]+)\"", RP_APP.read_text()))
    assert {"RP_ISSUER", "RP_CLIENT_ID", "RP_CLIENT_SECRET", "RP_BASE_URL"} <= read
    hello = service("hello_department")
    given = {k for k in compose_environment(hello) if k.startswith("RP_")}
    assert given == read, f"set but not read: {given - read}; read but not set: {read - given}"
    assert hello["image"].startswith("python:3.11")
    assert "python app.py" in " ".join(command_list(hello["command"]))
    env = compose_environment(hello)
    assert interpolate(env["RP_ISSUER"], {}) == interpolate(compose_environment(service("idp"))["IDP_ISSUER"], {})
    assert env["RP_HOST"] == "0.0.0.0"


# ---------------------------------------------------------------- reverse proxy


def test_proxy_is_https_only_with_hsts_and_keeps_metrics_inside():
    caddy = CADDYFILE.read_text()
    sites = re.findall(r"^(\S+)\s*\{\s*$", caddy, flags=re.MULTILINE)
    sites = [s for s in sites if not s.startswith("(")]
    assert sites and all(s.startswith("https://") for s in sites), sites
    assert "disable_redirects" in caddy or "http://" not in caddy
    assert re.search(r"Strict-Transport-Security\s+\"max-age=\d{7,}", caddy)
    assert re.search(r"@metrics\s+path\s+/metrics\b", caddy)
    assert re.search(r"respond\s+@metrics\b.*\b404\b", caddy)
    # Caddy adds X-Forwarded-For/Proto/Host itself; overriding X-Forwarded-For would break IDP_TRUST_PROXY.
    assert "header_up X-Forwarded-For" not in caddy


# ---------------------------------------------------------------- operations guide


def test_readme_covers_operations_and_does_not_claim_live_testing():
    readme = (DEPLOY / "README.md").read_text()
    for needle in ("idp db upgrade", "idp keys rotate", "/healthz", "/readyz", "/metrics", "IDP_METRICS_TOKEN",
                   "pg_dump", "IDP_SECRET_KEY", "IDP_REDIS_URL", "IDP_TRUST_PROXY", "tests/deploy",
                   "docker compose", "kubectl"):
        assert needle in readme, f"deploy/README.md does not mention {needle}"
