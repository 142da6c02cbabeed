#!/usr/bin/env python3
"""Load benchmark for eCitizen Passport: starts its own ``idp serve`` on loopback and measures it.

What it does, in order:

1. times one argon2id hash (the parameters the server uses) averaged over ``--hash-runs`` runs;
2. creates a temporary folder, picks a free port on 127.0.0.1, runs ``idp db upgrade`` against a
   fresh SQLite database there (or ``--database-url``), creates one verified resident and one
   confidential first-party client through the CLI, and starts ``idp serve --host 127.0.0.1``;
   with ``--db-latency-ms``/``--redis-latency-ms`` the server (not the CLI setup) reaches
   PostgreSQL/Redis through a latency proxy on 127.0.0.1 (``tests/support/tcp_delay.DelayProxy``)
   that delays every answer of the backend by that much;
3. warms the server up, records its idle memory (sum of VmRSS over the server's process tree);
4. runs each scenario for ``--seconds`` with ``--concurrency`` client threads, each thread with its
   own keep-alive ``requests.Session``, and records requests, errors, requests/second, p50/p95/p99
   latency, the HTTP answers by status code (and requests without an answer), the CPU seconds the
   server's process tree used during the scenario, and whether the liveness endpoint ``/healthz``
   kept answering (one extra thread polls it every 0.5 s on a new connection);
5. stops the server (also on Ctrl-C or an error), records peak memory (max VmHWM), prints a table
   and, with ``--output``, writes a markdown report.

Only 127.0.0.1 is ever contacted. Requires the standard library and ``requests``; the ``idp``
command is taken from next to this Python interpreter (``.venv/bin/idp``) unless ``--idp`` is given.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # for tests/support/tcp_delay.py (standard library only)
    sys.path.insert(0, str(ROOT))
from tests.support.tcp_delay import DelayProxy  # noqa: E402

SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
REDIRECT = "https://bench.example/cb"
SCOPE = "openid profile email offline_access"
PASSWORD = "bench resident long passphrase 4827"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CLK_TCK = os.sysconf("SC_CLK_TCK")
ARGON2 = {"memory_cost": 19456, "time_cost": 2, "parallelism": 1}  # idp/config.py defaults

SCENARIOS = ["discovery", "jwks", "client_credentials", "authcode", "refresh", "userinfo",
             "introspection", "signin", "signin_1"]
DESCRIPTIONS = {
    "discovery": "GET /.well-known/openid-configuration",
    "jwks": "GET /jwks.json",
    "client_credentials": "POST /token grant_type=client_credentials (client_secret_basic)",
    "authcode": "GET /authorize (PKCE S256, signed-in session, first-party: no consent) + POST /token "
                "authorization_code; one request = the pair",
    "refresh": "POST /token grant_type=refresh_token, rotating (each response's refresh token is used next)",
    "userinfo": "GET /userinfo with a Bearer access token",
    "introspection": "POST /introspect of an access token (client_secret_basic)",
    "signin": "fresh session: GET /login, then POST /login (CSRF, correct password) -> 303; one request = the pair",
    "signin_1": "the same sign-in with ONE client thread (whatever --concurrency says): latency without queueing, "
                "to compare with one argon2id hash",
}
SERIAL = {"signin_1"}
LIVENESS_PATH = "/healthz"  # idp/observability.py: answers without touching the database or the store
LIVENESS_INTERVAL = 0.5     # seconds between the starts of two probes
LIVENESS_TIMEOUT = 5.0      # a probe without an answer in this time counts as failed
LIVENESS_SLOW = 1.0         # Kubernetes' default livenessProbe timeoutSeconds


# --------------------------------------------------------------------------------------------
# Server process: start, seed, stop, /proc accounting
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(root: int) -> list[int]:
    """The pid and all its descendants, from /proc/<pid>/stat parent ids."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """utime+stime of the live process tree (seconds)."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def memory_kib(root: int, field: str) -> list[int]:
    """VmRSS or VmHWM (KiB) of each process of the tree."""
    values = []
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith(field + ":"):
                        values.append(int(line.split()[1]))
        except OSError:
            continue
    return values


class Server:
    def __init__(self, args, work_dir: Path):
        self.args = args
        self.work_dir = work_dir
        self.port = free_port()
        self.issuer = f"http://localhost:{self.port}"
        self.base = f"http://127.0.0.1:{self.port}"
        self.idp = args.idp or str(Path(sys.executable).with_name("idp"))
        if not os.path.exists(self.idp):
            self.idp = str(ROOT / ".venv" / "bin" / "idp")
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update({
            "IDP_ENV": "test",
            "IDP_ISSUER": self.issuer,
            "IDP_SECRET_KEY": SECRET_KEY,
            "IDP_INSTANCE_PATH": str(work_dir / "instance"),
            "IDP_DATABASE_URL": args.database_url or f"sqlite:///{work_dir / 'idp.sqlite3'}",
            "IDP_LOG_LEVEL": "warning",
        })
        if args.redis_url:
            env["IDP_REDIS_URL"] = args.redis_url
        self.env = env  # the CLI setup steps: straight to the database and Redis
        self.serve_env = dict(env)  # idp serve: through the latency proxies, if any
        self.proxies: list[DelayProxy] = []
        self.process: subprocess.Popen | None = None
        self.log_path = work_dir / "server.log"
        self.email = f"bench-{secrets.token_hex(4)}@example.org"

    def cli(self, *argv: str) -> str:
        result = subprocess.run([self.idp, *argv], env=self.env, capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise RuntimeError(f"idp {' '.join(argv[:2])} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result.stdout

    def seed(self) -> dict:
        self.cli("db", "upgrade")
        self.cli("users", "create", "--email", self.email, "--password", PASSWORD, "--name", "Bench Resident",
                 "--verified-email")
        out = self.cli("clients", "create", "--name", "Bench department", "--redirect-uri", REDIRECT,
                       "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                       "--grant-type", "client_credentials", "--scope", SCOPE, "--first-party", "--json")
        return json.loads(out)

    def add_latency(self) -> None:
        """Put a DelayProxy on 127.0.0.1 between idp serve and PostgreSQL (--db-latency-ms) and/or
        Redis (--redis-latency-ms); only the server's URLs change, the CLI setup went direct."""
        for ms, url, var, default_port in ((self.args.db_latency_ms, self.args.database_url, "IDP_DATABASE_URL", 5432),
                                           (self.args.redis_latency_ms, self.args.redis_url, "IDP_REDIS_URL", 6379)):
            if ms > 0:
                parts = urlsplit(url)
                proxy = DelayProxy(parts.hostname, parts.port or default_port, 0.0)
                proxy.injected = ms / 1000  # switched on by latency(True), only while a scenario is measured
                self.proxies.append(proxy)
                self.serve_env[var] = through_proxy(url, proxy.port)

    def latency(self, on: bool) -> None:
        """Inject the latency (while a scenario is measured) or not (setup, warm-up, between scenarios)."""
        for proxy in self.proxies:
            proxy.delay = proxy.injected if on else 0.0

    def close_proxies(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        self.proxies = []

    def start(self) -> None:
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [self.idp, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.args.workers), "--threads", str(self.args.threads)],
            env=self.serve_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("idp serve exited: " + self.log_path.read_text()[-3000:])
            try:
                if requests.get(self.base + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("idp serve did not become ready: " + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful stop of the gunicorn master
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    @property
    def pid(self) -> int:
        return self.process.pid


def through_proxy(url: str, port: int) -> str:
    """The same URL (user, password, database, query kept) with its host:port replaced by 127.0.0.1:port."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=(userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"))


# --------------------------------------------------------------------------------------------
# OIDC helpers (requests)
# --------------------------------------------------------------------------------------------

def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise RuntimeError("no csrf_token in the page")
    return match.group(1)


class Ctx:
    """What the scenarios share: endpoints (rebased on 127.0.0.1) and credentials."""

    def __init__(self, server: Server, client: dict):
        self.server = server
        self.base = server.base
        self.client_id = client["client_id"]
        self.auth = (client["client_id"], client["client_secret"])
        meta = requests.get(self.base + "/.well-known/openid-configuration", timeout=10).json()
        self.meta = meta

        def rebase(url: str) -> str:
            return self.base + urlsplit(url).path

        self.authorize_url = rebase(meta["authorization_endpoint"])
        self.token_url = rebase(meta["token_endpoint"])
        self.jwks_url = rebase(meta["jwks_uri"])
        self.userinfo_url = rebase(meta["userinfo_endpoint"])
        self.introspect_url = rebase(meta["introspection_endpoint"])
        self.discovery_url = self.base + "/.well-known/openid-configuration"

    def sign_in(self, http: requests.Session, timeout: float = 30) -> None:
        page = http.get(self.base + "/login", params={"next": "/account/"}, timeout=timeout)
        if page.status_code != 200:
            raise RuntimeError(f"GET /login -> {page.status_code}")
        response = http.post(self.base + "/login", data={
            "email": self.server.email, "password": PASSWORD, "next": "/account/", "csrf_token": csrf(page.text)},
            allow_redirects=False, timeout=timeout)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"POST /login -> {response.status_code}")

    def authorize(self, http: requests.Session, challenge: str, timeout: float = 30) -> str:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT, "scope": SCOPE,
                  "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        response = http.get(self.authorize_url + "?" + urlencode(params), allow_redirects=False, timeout=timeout)
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith(REDIRECT + "?"):
            raise RuntimeError(f"GET /authorize -> {response.status_code} {location[:80]}")
        query = parse_qs(urlsplit(location).query)
        if "code" not in query:
            raise RuntimeError(f"GET /authorize: no code ({location[:120]})")
        return query["code"][0]

    def exchange(self, http: requests.Session, code: str, verifier: str, timeout: float = 30) -> requests.Response:
        return http.post(self.token_url, data={"grant_type": "authorization_code", "code": code,
                                               "redirect_uri": REDIRECT, "code_verifier": verifier},
                         auth=self.auth, timeout=timeout)

    def tokens_for(self, http: requests.Session) -> dict:
        """A signed-in session's fresh token response (access, id, refresh)."""
        verifier, challenge = pkce_pair()
        response = self.exchange(http, self.authorize(http, challenge), verifier)
        if response.status_code != 200:
            raise RuntimeError(f"POST /token (code) -> {response.status_code} {response.text[:200]}")
        return response.json()


# --------------------------------------------------------------------------------------------
# Scenarios: setup(ctx) -> per-thread state; step(ctx, state) -> extra latency dict or raises
# --------------------------------------------------------------------------------------------

class Failure(Exception):
    pass


_tally = threading.local()  # .counter: the running scenario thread's answers by status


def _count_status(response: requests.Response, *args, **kwargs) -> None:
    counter = getattr(_tally, "counter", None)
    if counter is not None:
        counter[str(response.status_code)] += 1


def new_session() -> requests.Session:
    """A requests.Session whose every HTTP answer (redirects included) is counted by status code
    when a scenario thread uses it."""
    http = requests.Session()
    http.hooks["response"].append(_count_status)
    return http


def expect(response: requests.Response, status: int = 200) -> requests.Response:
    if response.status_code != status:
        raise Failure(f"{response.request.method} {urlsplit(response.url).path} -> {response.status_code} "
                      f"{response.text[:160]!r}")
    return response


def setup_plain(ctx: Ctx) -> dict:
    return {"http": new_session()}


def setup_signed_in(ctx: Ctx) -> dict:
    http = new_session()
    ctx.sign_in(http)
    return {"http": http}


def setup_tokens(ctx: Ctx) -> dict:
    http = new_session()
    ctx.sign_in(http)
    tokens = ctx.tokens_for(http)
    return {"http": new_session(), "access": tokens["access_token"], "refresh": tokens["refresh_token"]}


def step_discovery(ctx, st):
    expect(st["http"].get(ctx.discovery_url, timeout=30))


def step_jwks(ctx, st):
    body = expect(st["http"].get(ctx.jwks_url, timeout=30)).json()
    if not body.get("keys"):
        raise Failure("JWKS without keys")


def step_client_credentials(ctx, st):
    body = expect(st["http"].post(ctx.token_url, data={"grant_type": "client_credentials"},
                                  auth=ctx.auth, timeout=30)).json()
    if "access_token" not in body:
        raise Failure("no access_token")


def step_authcode(ctx, st):
    http = st["http"]
    verifier, challenge = pkce_pair()
    code = ctx.authorize(http, challenge)
    t0 = time.perf_counter()
    body = expect(ctx.exchange(http, code, verifier)).json()
    token_ms = (time.perf_counter() - t0) * 1000
    if "id_token" not in body or "access_token" not in body:
        raise Failure("token response without id_token/access_token")
    return {"token": token_ms}


def step_refresh(ctx, st):
    response = st["http"].post(ctx.token_url, data={"grant_type": "refresh_token", "refresh_token": st["refresh"]},
                               auth=ctx.auth, timeout=30)
    if response.status_code != 200:
        # The grant may now be revoked (e.g. a lost response): start a new one so the run continues.
        st["refresh"] = setup_tokens(ctx)["refresh"]
        expect(response)
    st["refresh"] = response.json()["refresh_token"]


def step_userinfo(ctx, st):
    body = expect(st["http"].get(ctx.userinfo_url, headers={"Authorization": "Bearer " + st["access"]},
                                 timeout=30)).json()
    if "sub" not in body:
        raise Failure("userinfo without sub")


def step_introspection(ctx, st):
    body = expect(st["http"].post(ctx.introspect_url, data={"token": st["access"]}, auth=ctx.auth,
                                  timeout=30)).json()
    if body.get("active") is not True:
        raise Failure(f"introspection: {body}")


def step_signin(ctx, st):
    with new_session() as http:  # a fresh browser each time (new connection, no cookies)
        page = expect(http.get(ctx.base + "/login", params={"next": "/account/"}, timeout=30))
        t0 = time.perf_counter()
        response = http.post(ctx.base + "/login", data={
            "email": ctx.server.email, "password": PASSWORD, "next": "/account/", "csrf_token": csrf(page.text)},
            allow_redirects=False, timeout=30)
        post_ms = (time.perf_counter() - t0) * 1000
        expect(response, 303)
    return {"post": post_ms}


STEPS = {
    "discovery": (setup_plain, step_discovery),
    "jwks": (setup_plain, step_jwks),
    "client_credentials": (setup_plain, step_client_credentials),
    "authcode": (setup_signed_in, step_authcode),
    "refresh": (setup_tokens, step_refresh),
    "userinfo": (setup_tokens, step_userinfo),
    "introspection": (setup_tokens, step_introspection),
    "signin": (setup_plain, step_signin),
    "signin_1": (setup_plain, step_signin),
}
EXTRA_LABELS = {"authcode": ("token", "POST /token alone (within the pair)"),
                "signin": ("post", "POST /login alone (within the pair)"),
                "signin_1": ("post", "POST /login alone (within the pair)")}
TOKENS_PER_ITERATION = {"client_credentials": 1, "authcode": 1, "refresh": 1}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
    return ordered[index]


class LivenessProbe(threading.Thread):
    """GET /healthz every LIVENESS_INTERVAL s on a new connection (as an orchestrator's probe would)
    until stopped: latencies of all probes, and failures (not 200, or no answer in LIVENESS_TIMEOUT s)."""

    def __init__(self, url: str):
        super().__init__(name="liveness-probe", daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures: Counter = Counter()
        self.stopped = threading.Event()

    def run(self) -> None:
        next_at = time.perf_counter()
        while not self.stopped.is_set():
            t0 = time.perf_counter()
            try:
                status = requests.get(self.url, timeout=LIVENESS_TIMEOUT).status_code
                if status != 200:
                    self.failures[str(status)] += 1
            except requests.Timeout:
                self.failures["timeout"] += 1
            except requests.RequestException as exc:
                self.failures[type(exc).__name__] += 1
            self.latencies.append((time.perf_counter() - t0) * 1000)
            next_at += LIVENESS_INTERVAL
            self.stopped.wait(max(0.0, next_at - time.perf_counter()))

    def result(self) -> dict:
        lat = self.latencies
        return {"probes": len(lat), "failures": sum(self.failures.values()), "failure_kinds": dict(self.failures),
                "p50": percentile(lat, 50), "max": max(lat) if lat else float("nan"),
                "slow": sum(1 for x in lat if x > LIVENESS_SLOW * 1000)}


def no_answer(exc: Exception) -> str | None:
    """The status-table key of a request that got no HTTP answer, else None."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "no connection"
    return None


def run_scenario(name: str, ctx: Ctx, seconds: float, concurrency: int, server_pid: int) -> dict:
    setup, step = STEPS[name]
    states = [setup(ctx) for _ in range(concurrency)]
    ctx.server.latency(True)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    extras: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    statuses = [Counter() for _ in range(concurrency)]
    samples: list[str] = []
    start_barrier = threading.Barrier(concurrency + 1)
    stop_at = [0.0]
    probe = LivenessProbe(ctx.base + LIVENESS_PATH)

    def worker(i: int) -> None:
        st = states[i]
        _tally.counter = statuses[i]
        start_barrier.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                extra = step(ctx, st)
            except Exception as exc:  # noqa: BLE001 - any failure is an error of the run
                errors[i] += 1
                if no_answer(exc):
                    statuses[i][no_answer(exc)] += 1
                if len(samples) < 5:
                    samples.append(f"{type(exc).__name__}: {exc}"[:300])
                time.sleep(0.01)
                continue
            latencies[i].append((time.perf_counter() - t0) * 1000)
            if extra:
                extras[i].extend(extra.values())

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    cpu0 = cpu_seconds(server_pid)
    client0 = time.process_time()
    wall0 = time.perf_counter()
    stop_at[0] = wall0 + seconds
    start_barrier.wait()
    probe.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    ctx.server.latency(False)
    probe.stopped.set()
    probe.join()
    cpu = cpu_seconds(server_pid) - cpu0
    client_cpu = time.process_time() - client0
    for st in states:
        st["http"].close()
    lat = [x for part in latencies for x in part]
    ext = [x for part in extras for x in part]
    ok = len(lat)
    result = {
        "scenario": name, "threads": concurrency, "requests": ok + sum(errors), "ok": ok, "errors": sum(errors), "seconds": wall,
        "rps": ok / wall, "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
        "max": max(lat) if lat else float("nan"), "mean": statistics.fmean(lat) if lat else float("nan"),
        "server_cpu": cpu, "client_cpu": client_cpu, "error_samples": samples,
        "statuses": dict(sum(statuses, Counter())), "liveness": probe.result(),
    }
    if ext:
        result["extra"] = {"label": EXTRA_LABELS[name][1], "p50": percentile(ext, 50), "p95": percentile(ext, 95),
                           "p99": percentile(ext, 99)}
    if name in TOKENS_PER_ITERATION and cpu > 0:
        result["tokens_per_cpu_second"] = ok * TOKENS_PER_ITERATION[name] / cpu
    result["cpu_ms_per_request"] = cpu * 1000 / ok if ok else float("nan")
    return result


# --------------------------------------------------------------------------------------------
# argon2 hash cost
# --------------------------------------------------------------------------------------------

HASH_SNIPPET = """
import time, json
from argon2 import PasswordHasher
ph = PasswordHasher(memory_cost={m}, time_cost={t}, parallelism={p})
ph.hash("warm up")
runs = []
for i in range({n}):
    t0 = time.perf_counter(); ph.hash("bench password %d" % i); runs.append((time.perf_counter() - t0) * 1000)
print(json.dumps(runs))
"""


def measure_hash(runs: int, python: str) -> list[float]:
    code = HASH_SNIPPET.format(m=ARGON2["memory_cost"], t=ARGON2["time_cost"], p=ARGON2["parallelism"], n=runs)
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out)


SIGN_SNIPPET = """
import json, resource
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
message = b"x" * 400  # the signing input of a typical access token
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
key.sign(message, padding.PKCS1v15(), hashes.SHA256())
start = cpu()
for _ in range({n}):
    key.sign(message, padding.PKCS1v15(), hashes.SHA256())
print(json.dumps((cpu() - start) * 1000 / {n}))
"""


def measure_rs256(runs: int, python: str) -> float:
    """CPU milliseconds of one RSA-2048 PKCS#1 v1.5 SHA-256 signature (what every RS256 token costs at
    least), measured in the server's Python with its ``cryptography``: the floor under tokens per CPU-second."""
    out = subprocess.run([python, "-c", SIGN_SNIPPET.format(n=runs)], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return json.loads(out)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def machine_info(args) -> dict:
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = "unknown"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem_total = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    server_python = subprocess.run([str(Path(args.idp_python)), "-c", "import sys; print(sys.version.split()[0])"],
                                   capture_output=True, text=True).stdout.strip() or platform.python_version()
    return {"nproc": os.cpu_count(), "cpu": model, "memory": mem_total, "python": server_python,
            "kernel": platform.release(), "loadavg_before": args.loadavg_before}


def redact(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@")
    return url


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def status_key(key: str) -> tuple:
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def fmt_statuses(statuses: dict) -> str:
    """'200: 1,234, 503: 5, timeout: 1' (status codes in order, then requests without an answer)."""
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items(), key=lambda kv: status_key(kv[0]))) or "none"


def table_rows(results: list[dict]) -> list[str]:
    rows = ["| Scenario | Requests | Errors | Req/s | p50 ms | p95 ms | p99 ms | Server CPU s | Server CPU ms/req | "
            "Tokens per CPU-s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        tpc = fmt(r["tokens_per_cpu_second"], 0) if "tokens_per_cpu_second" in r else ""
        rows.append(f"| {r['scenario']} | {r['requests']:,} | {r['errors']:,} | {fmt(r['rps'])} | {fmt(r['p50'])} | "
                    f"{fmt(r['p95'])} | {fmt(r['p99'])} | {fmt(r['server_cpu'], 2)} | "
                    f"{fmt(r['cpu_ms_per_request'], 2)} | {tpc} |")
        if "extra" in r:
            rows.append(f"| ↳ {r['extra']['label']} | | | | {fmt(r['extra']['p50'])} | {fmt(r['extra']['p95'])} | "
                        f"{fmt(r['extra']['p99'])} | | | |")
    return rows


def availability_rows(results: list[dict]) -> list[str]:
    rows = ["| Scenario | Wall s | Slowest ms | HTTP answers by status (no answer: timeout / no connection) | "
            f"Liveness probes | failed | > {LIVENESS_SLOW:g} s | p50 ms | max ms |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        live = r["liveness"]
        failed = f"{live['failures']:,}"
        if live["failure_kinds"]:
            failed += " (" + fmt_statuses(live["failure_kinds"]) + ")"
        rows.append(f"| {r['scenario']} | {fmt(r['seconds'])} | {fmt(r['max'])} | {fmt_statuses(r['statuses'])} | "
                    f"{live['probes']:,} | {failed} | {live['slow']:,} | {fmt(live['p50'])} | {fmt(live['max'])} |")
    return rows


def render_markdown(report: dict) -> str:
    m, o = report["machine"], report["options"]
    lines = [
        f"## Run of {report['date']}", "",
        f"- Machine: {m['nproc']} CPU(s), {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']}, Python {m['python']}",
        f"- 1/5/15-minute load average before the run: {m['loadavg_before']} (the machine is shared)",
        f"- Database: {report['database']}; session/throttle store: {report['store']}",
        f"- Server: `idp serve --host 127.0.0.1 --workers {o['workers']} --threads {o['threads']}` "
        f"(gunicorn gthread), IDP_ENV=test, signing algorithm {report['signing_alg']}",
        f"- Load: {o['concurrency']} client threads per scenario (own keep-alive `requests.Session` each), "
        f"{o['seconds']:g} s per scenario (`signin_1`: one thread), client and server on the same machine",
        *([f"- Injected latency: {latency_text(o)} (a `DelayProxy` on 127.0.0.1 between `idp serve` and the "
           "backend delays each of the backend's answers; the CLI setup went direct)"] if latency_text(o) else []),
        "",
        *table_rows(report["results"]), "",
        "Requests/s and latencies (p50/p95/p99, nearest rank) count successful iterations; for `authcode` and "
        "`signin` one iteration is two HTTP requests (the ↳ row times the second request alone). Server CPU is "
        "utime+stime of the server's process tree during the scenario; tokens per CPU-second divides the tokens "
        "issued by that CPU time (for `authcode` it includes the `/authorize` request that produced each code).", "",
        *availability_rows(report["results"]), "",
        "Wall s: the scenario's length, past `--seconds` when requests were still running at the end. Slowest: "
        "the slowest successful iteration. HTTP answers: every answer the client threads received (redirects and "
        "both requests of a pair included), by status code; requests that got none within the client's 30 s "
        f"timeout count as `timeout`. Liveness: `GET {LIVENESS_PATH}` on a new connection every "
        f"{LIVENESS_INTERVAL:g} s during the scenario; failed = not 200 or no answer within {LIVENESS_TIMEOUT:g} s; "
        f"> {LIVENESS_SLOW:g} s = slower than Kubernetes' default probe timeout.", "",
        *(["- Server CPU counts only the `idp serve` processes: the PostgreSQL/Redis servers' own CPU is not "
            "included (they serve other users of this machine too)", ""] if report["external_services"] else []),
        f"- Idle memory after start and warm-up: **{fmt(report['idle_rss_mib'])} MiB** (sum of VmRSS over "
        f"{report['idle_processes']} server processes: "
        f"{' + '.join(fmt(k / 1024) for k in report['idle_rss_kib'])} MiB, gunicorn master first)",
        f"- Peak memory at the end: **{fmt(report['peak_hwm_mib'])} MiB** max VmHWM of one process "
        f"(sum over the tree {fmt(report['peak_hwm_sum_mib'])} MiB; RSS at the end "
        f"{' + '.join(fmt(k / 1024) for k in report['end_rss_kib'])} = {fmt(report['end_rss_mib'])} MiB)",
        f"- Total server CPU during the scenarios: {fmt(report['total_server_cpu'], 1)} s; the load "
        f"generator (this script) used {fmt(report['total_client_cpu'], 1)} s over "
        f"{fmt(report['total_wall'], 1)} s of scenarios on the same {report['machine']['nproc']} CPU(s)",
    ]
    h = report.get("hash")
    if h:
        signin = next((r for r in report["results"] if r["scenario"] == "signin"), None)
        serial = next((r for r in report["results"] if r["scenario"] == "signin_1"), None)
        lines += ["",
                  f"- argon2id m={ARGON2['memory_cost']} KiB, t={ARGON2['time_cost']}, p={ARGON2['parallelism']}: "
                  f"one hash takes **{fmt(h['mean'])} ms** on this machine (mean of {h['runs']}, "
                  f"median {fmt(h['median'])} ms, min {fmt(h['min'])} ms, single thread, server stopped)"]
        if signin and signin.get("extra"):
            lines.append(f"- Sign-in `POST /login` alone at concurrency {o['concurrency']}: p50 "
                         f"{fmt(signin['extra']['p50'])} ms; server CPU per sign-in (GET+POST) "
                         f"{fmt(signin['cpu_ms_per_request'])} ms vs {fmt(h['mean'])} ms for the hash")
        if serial and serial.get("extra"):
            lines.append(f"- Sign-in with one client thread: `POST /login` p50 **{fmt(serial['extra']['p50'])} ms** "
                         f"(p99 {fmt(serial['extra']['p99'])} ms), the GET+POST pair p50 {fmt(serial['p50'])} ms, "
                         f"server CPU per sign-in {fmt(serial['cpu_ms_per_request'])} ms: "
                         f"{serial['extra']['p50'] / h['mean']:.2f}x the hash time for the POST")
    sign_ms = report.get("rs256_sign_ms")
    if sign_ms:
        lines += ["", f"- One RS256 signature (RSA-2048, `cryptography`, single thread, server stopped) costs "
                      f"**{fmt(sign_ms, 2)} ms** of CPU here: at most {fmt(1000 / sign_ms, 0)} tokens per CPU-second "
                      "if nothing else ran"]
    for r in report["results"]:
        if r["error_samples"]:
            lines += ["", f"Errors in `{r['scenario']}` (first {len(r['error_samples'])}):", ""]
            lines += [f"- `{s}`" for s in r["error_samples"]]
    return "\n".join(lines) + "\n"


def print_table(results: list[dict]) -> None:
    print(f"{'scenario':<20}{'requests':>9}{'errors':>7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
          f"{'cpu s':>8}{'tok/cpu-s':>11}")
    for r in results:
        tpc = fmt(r["tokens_per_cpu_second"], 0) if "tokens_per_cpu_second" in r else ""
        print(f"{r['scenario']:<20}{r['requests']:>9}{r['errors']:>7}{fmt(r['rps']):>9}{fmt(r['p50']):>9}"
              f"{fmt(r['p95']):>9}{fmt(r['p99']):>9}{fmt(r['server_cpu'], 2):>8}{tpc:>11}")
        if "extra" in r:
            print(f"  {r['extra']['label']:<45} p50 {fmt(r['extra']['p50'])} ms, p95 {fmt(r['extra']['p95'])} ms, "
                  f"p99 {fmt(r['extra']['p99'])} ms")
        print(f"  answers: {fmt_statuses(r['statuses'])}; wall {fmt(r['seconds'])} s, slowest {fmt(r['max'])} ms")
        print(f"  {liveness_text(r['liveness'])}")
        for s in r["error_samples"]:
            print(f"    error: {s}")


def liveness_text(live: dict) -> str:
    kinds = f" ({fmt_statuses(live['failure_kinds'])})" if live["failure_kinds"] else ""
    return (f"liveness {LIVENESS_PATH}: {live['probes']} probes, {live['failures']} failed{kinds}, "
            f"{live['slow']} over {LIVENESS_SLOW:g} s, p50 {fmt(live['p50'])} ms, max {fmt(live['max'])} ms")


def latency_text(options: dict) -> str:
    parts = []
    if options.get("db_latency_ms"):
        parts.append(f"+{options['db_latency_ms']:g} ms on every PostgreSQL answer")
    if options.get("redis_latency_ms"):
        parts.append(f"+{options['redis_latency_ms']:g} ms on every Redis answer")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Benchmark eCitizen Passport: starts its own `idp serve` on 127.0.0.1 (free port, fresh "
                    "database), seeds a resident and a first-party client through the CLI, and measures "
                    "throughput, latency (p50/p95/p99), HTTP answers by status, whether /healthz keeps answering, "
                    "server CPU and memory per scenario. Talks to loopback only; --db-latency-ms/--redis-latency-ms "
                    "put a latency proxy between the server and PostgreSQL/Redis.",
        epilog="Scenarios: " + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()))
    parser.add_argument("--seconds", type=float, default=8, help="duration of each scenario (default 8)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads per scenario (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="idp serve --workers (default 1; >1 needs --redis-url)")
    parser.add_argument("--threads", type=int, default=8, help="idp serve --threads (default 8)")
    parser.add_argument("--database-url", help="PostgreSQL URL of an existing, preferably empty database "
                                               "(default: fresh SQLite file in a temp dir)")
    parser.add_argument("--redis-url", help="Redis URL for sessions/throttling (default: in-process store)")
    parser.add_argument("--db-latency-ms", type=float, default=0, metavar="N",
                        help="add N ms to every answer PostgreSQL sends to the server, through a latency proxy on "
                             "127.0.0.1 (tests/support/tcp_delay.py); the CLI setup goes direct. Needs "
                             "--database-url postgresql://... (default 0: no proxy)")
    parser.add_argument("--redis-latency-ms", type=float, default=0, metavar="N",
                        help="the same for Redis; needs --redis-url redis://... (default 0: no proxy)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated subset, in order (default: all: %(default)s)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of mixed warm-up before idle memory (default 2)")
    parser.add_argument("--hash-runs", type=int, default=20, help="argon2id hashes to time (0: skip; default 20)")
    parser.add_argument("--output", help="write a markdown report to this file")
    parser.add_argument("--title", default="", help="heading for the report section (default: database/store)")
    parser.add_argument("--append", action="store_true", help="append the report section to --output instead of replacing it")
    parser.add_argument("--json", dest="json_out", help="also write the raw results as JSON")
    parser.add_argument("--idp", help="path to the idp command (default: next to this Python, else .venv/bin/idp)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, server log)")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.scenario_list = names
    if args.workers > 1 and not args.redis_url:
        parser.error("--workers > 1 needs --redis-url (the server refuses it otherwise)")
    for url in (args.database_url, args.redis_url):
        if url:
            host = urlsplit(url).hostname or ""
            if host not in ("127.0.0.1", "localhost", "::1", ""):
                parser.error(f"refusing a non-loopback host {host!r}: this benchmark only talks to loopback")
    if args.db_latency_ms < 0 or args.redis_latency_ms < 0:
        parser.error("--db-latency-ms and --redis-latency-ms cannot be negative")
    if args.db_latency_ms > 0:
        if not args.database_url or not args.database_url.startswith(("postgresql:", "postgresql+", "postgres:")):
            parser.error("--db-latency-ms needs --database-url postgresql://...: the default SQLite database is a "
                         "file, with no connection to put a latency proxy on")
        if not urlsplit(args.database_url).hostname:
            parser.error("--db-latency-ms needs a TCP host in --database-url (e.g. 127.0.0.1:5432), not a socket")
    if args.redis_latency_ms > 0:
        if not args.redis_url or not args.redis_url.startswith(("redis:", "rediss:")) \
                or not urlsplit(args.redis_url).hostname:
            parser.error("--redis-latency-ms needs --redis-url redis://127.0.0.1:6379/N (a TCP Redis): without it "
                         "the store is in-process, with no connection to delay")
    return args


def token_alg(ctx: Ctx) -> str:
    """The alg of the active signing key, from a client_credentials token's JOSE header."""
    body = requests.post(ctx.token_url, data={"grant_type": "client_credentials"}, auth=ctx.auth, timeout=30).json()
    header = body["access_token"].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]


def warm_up(ctx: Ctx, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    http = requests.Session()
    ctx.sign_in(http)
    while time.monotonic() < deadline:
        http.get(ctx.discovery_url, timeout=30)
        http.get(ctx.jwks_url, timeout=30)
        http.post(ctx.token_url, data={"grant_type": "client_credentials"}, auth=ctx.auth, timeout=30)
        tokens = ctx.tokens_for(http)
        http.get(ctx.userinfo_url, headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=30)
        http.post(ctx.introspect_url, data={"token": tokens["access_token"]}, auth=ctx.auth, timeout=30)
        http.post(ctx.token_url, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                  auth=ctx.auth, timeout=30)
    http.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    args.loadavg_before = " ".join(open("/proc/loadavg").read().split()[:3])
    work_dir = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    server = Server(args, work_dir)
    args.idp_python = str(Path(server.idp).with_name("python"))
    if not os.path.exists(args.idp_python):
        args.idp_python = sys.executable

    hash_result = None
    if args.hash_runs > 0:
        print(f"timing {args.hash_runs} argon2id hashes (m={ARGON2['memory_cost']}, t={ARGON2['time_cost']}, "
              f"p={ARGON2['parallelism']}) ...", flush=True)
        runs = measure_hash(args.hash_runs, args.idp_python)
        hash_result = {"runs": len(runs), "mean": statistics.fmean(runs), "median": statistics.median(runs),
                       "min": min(runs)}
        print(f"  mean {hash_result['mean']:.1f} ms, median {hash_result['median']:.1f} ms", flush=True)

    print("timing 500 RS256 signatures ...", flush=True)
    sign_ms = measure_rs256(500, args.idp_python)
    print(f"  {sign_ms:.2f} ms CPU each", flush=True)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    results: list[dict] = []
    try:
        print(f"seeding and starting idp serve on 127.0.0.1:{server.port} (work dir {work_dir}) ...", flush=True)
        client = server.seed()
        server.add_latency()
        for proxy in server.proxies:
            print(f"  latency proxy 127.0.0.1:{proxy.port} -> {proxy.backend[0]}:{proxy.backend[1]} "
                  f"(+{proxy.injected * 1000:g} ms per answer while a scenario is measured)", flush=True)
        server.start()
        ctx = Ctx(server, client)
        signing_alg = token_alg(ctx)
        warm_up(ctx, args.warmup)
        time.sleep(1)
        idle = memory_kib(server.pid, "VmRSS")
        print(f"idle RSS {sum(idle) / 1024:.1f} MiB over {len(idle)} processes", flush=True)
        for name in args.scenario_list:
            print(f"running {name} for {args.seconds:g} s x {1 if name in SERIAL else args.concurrency} threads ...",
                  flush=True)
            results.append(run_scenario(name, ctx, args.seconds, 1 if name in SERIAL else args.concurrency, server.pid))
            r = results[-1]
            print(f"  {r['requests']} requests, {r['errors']} errors, {r['rps']:.1f}/s, p50 {r['p50']:.1f} ms, "
                  f"p95 {r['p95']:.1f} ms, p99 {r['p99']:.1f} ms, server CPU {r['server_cpu']:.2f} s; "
                  f"answers {fmt_statuses(r['statuses'])}; {liveness_text(r['liveness'])}", flush=True)
        hwm = memory_kib(server.pid, "VmHWM")
        end_rss = memory_kib(server.pid, "VmRSS")
    except KeyboardInterrupt:
        print("interrupted: stopping the server", file=sys.stderr)
        return 130
    finally:
        server.stop()
        server.close_proxies()
        if args.keep:
            print(f"kept {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(args),
        "options": {"workers": args.workers, "threads": args.threads, "concurrency": args.concurrency,
                    "seconds": args.seconds, "db_latency_ms": args.db_latency_ms,
                    "redis_latency_ms": args.redis_latency_ms},
        "database": ("PostgreSQL " + redact(args.database_url)) if args.database_url else "SQLite (fresh file in a temp dir)",
        "store": ("Redis " + redact(args.redis_url)) if args.redis_url else "in-process",
        "signing_alg": signing_alg,
        "external_services": bool(args.database_url or args.redis_url),
        "results": results,
        "idle_rss_mib": sum(idle) / 1024, "idle_processes": len(idle), "idle_rss_kib": idle,
        "end_rss_kib": end_rss,
        "peak_hwm_mib": max(hwm) / 1024 if hwm else float("nan"),
        "peak_hwm_sum_mib": sum(hwm) / 1024,
        "end_rss_mib": sum(end_rss) / 1024,
        "total_server_cpu": sum(r["server_cpu"] for r in results),
        "total_client_cpu": sum(r["client_cpu"] for r in results),
        "total_wall": sum(r["seconds"] for r in results),
        "hash": hash_result,
        "rs256_sign_ms": sign_ms,
    }
    print()
    print_table(results)
    print(f"\nidle RSS {report['idle_rss_mib']:.1f} MiB; peak VmHWM {report['peak_hwm_mib']:.1f} MiB "
          f"(tree sum {report['peak_hwm_sum_mib']:.1f} MiB)")
    if args.output:
        section = render_markdown(report)
        if args.title:
            section = section.replace(f"## Run of {report['date']}", f"## {args.title} ({report['date']})", 1)
        path = Path(args.output)
        if args.append and path.exists():
            path.write_text(path.read_text().rstrip("\n") + "\n\n" + section)
        else:
            path.write_text("# Benchmark results\n\nProduced by `bench/run.py`; see `bench/README.md` for what "
                            "the numbers mean.\n\n" + section)
        print(f"wrote {path}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
