"""Settings read from ``IDP_*`` environment variables and validated once at start.

Every bad value produces one line naming the variable and the reason; values are never
echoed back (they may be secrets).
"""
from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    """Raised with one line per bad variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _int(low: int, high: int):
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _issuer(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return raw.strip().rstrip("/")


def _choice(*options: str):
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return value

    return parse


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _url(*schemes: str):
    def parse(raw: str) -> str:
        parts = urlsplit(raw.strip())
        if parts.scheme not in schemes:
            raise ValueError("must be a URL starting with " + " or ".join(s + "://" for s in schemes))
        return raw.strip()

    return parse


def _database_url(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    if value.startswith("postgres:"):
        value = "postgresql+psycopg:" + value[len("postgres:"):]
    elif value.startswith("postgresql:"):
        value = "postgresql+psycopg:" + value[len("postgresql:"):]
    return value


def _regions(raw: str) -> tuple[str, ...]:
    return tuple(_region(item) for item in raw.split(",") if item.strip())


def _region(raw: str) -> str:
    import phonenumbers

    value = raw.strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("must be a two-letter region code such as ZA")
    return value


def _rp_id(raw: str) -> str:
    value = raw.strip().lower()
    if not value or "/" in value or ":" in value or value.replace(".", "").isdigit():
        raise ValueError("must be a host name such as id.example.gov.za (no scheme, port or IP address)")
    return value


def _regex(raw: str) -> str:
    import re

    try:
        re.compile(raw)
    except re.error:
        raise ValueError("must be a valid regular expression") from None
    return raw


def _aaguids(raw: str) -> tuple[str, ...]:
    import uuid

    try:
        return tuple(str(uuid.UUID(item.strip())) for item in raw.split(",") if item.strip())
    except ValueError:
        raise ValueError("must list authenticator AAGUIDs (UUIDs), separated by commas") from None


def _host(raw: str) -> str:
    problem = "must be one host name with an optional :port, such as admin.id.example.gov.za"
    try:
        hosts = _hosts(raw)
    except ValueError:
        raise ValueError(problem) from None
    if len(hosts) != 1:
        raise ValueError(problem)
    return hosts[0]


def _hosts(raw: str) -> tuple[str, ...]:
    hosts = tuple(item.strip().lower() for item in raw.split(",") if item.strip())
    for host in hosts:
        parts = urlsplit("http://" + host)
        try:
            parts.port
        except ValueError:
            raise ValueError("must list host names, each with an optional :port, separated by commas") from None
        if not parts.hostname or parts.netloc != host or "*" in host or "@" in host:
            raise ValueError("must list host names, each with an optional :port, separated by commas")
    return hosts


def _secret_key(raw: str) -> str:
    if len(raw) < 32:
        raise ValueError("must be at least 32 characters")
    return raw


def _secret_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(len(key) < 32 for key in keys):
        raise ValueError("each key must be at least 32 characters")
    return keys


# (environment variable, attribute, parser, default). A default of None means "derived".
_SPEC = [
    ("IDP_ENV", "env", _choice("development", "production", "test"), "development"),
    ("IDP_ISSUER", "issuer", _issuer, "http://localhost:5000"),
    ("IDP_DATABASE_URL", "database_url", _database_url, None),
    ("IDP_REDIS_URL", "redis_url", _url("redis", "rediss", "unix"), None),
    ("IDP_DATABASE_CONNECT_TIMEOUT", "database_connect_timeout", _int(1, 60), 5),
    ("IDP_DATABASE_STATEMENT_TIMEOUT", "database_statement_timeout", _int(0, 600), 15),
    ("IDP_REQUEST_DEADLINE", "request_deadline", _int(2, 120), 10),
    ("IDP_SECRET_KEY", "secret_key", _secret_key, None),
    ("IDP_SECRET_KEY_FALLBACKS", "secret_key_fallbacks", _secret_keys, None),
    ("IDP_INSTANCE_PATH", "instance_path", _text, None),
    ("IDP_SMTP_HOST", "smtp_host", _text, None),
    ("IDP_SMTP_PORT", "smtp_port", _int(1, 65535), 587),
    ("IDP_SMTP_USERNAME", "smtp_username", _text, None),
    ("IDP_SMTP_PASSWORD", "smtp_password", _text, None),
    ("IDP_SMTP_STARTTLS", "smtp_starttls", _bool, True),
    ("IDP_MAIL_FROM", "mail_from", _text, "eCitizen Passport <no-reply@localhost>"),
    ("IDP_OUTBOX_DIR", "outbox_dir", _text, None),
    ("IDP_PASSWORD_MIN_LENGTH", "password_min_length", _int(8, 64), 15),
    ("IDP_ARGON2_MEMORY_KIB", "argon2_memory_kib", _int(19456, 4194304), 19456),
    ("IDP_ARGON2_TIME_COST", "argon2_time_cost", _int(2, 20), 2),
    ("IDP_ARGON2_PARALLELISM", "argon2_parallelism", _int(1, 16), 1),
    ("IDP_MAX_CONCURRENT_HASHES", "max_concurrent_hashes", _int(1, 256), 4),
    ("IDP_SESSION_LIFETIME_HOURS", "session_lifetime_hours", _int(1, 24 * 30), 12),
    ("IDP_SESSION_IDLE_MINUTES", "session_idle_minutes", _int(5, 24 * 60), 30),
    ("IDP_ACCESS_TOKEN_LIFETIME", "access_token_lifetime", _int(60, 3600), 600),
    ("IDP_AUTH_CODE_LIFETIME", "auth_code_lifetime", _int(10, 600), 60),
    ("IDP_REUSE_DETECTION_WINDOW", "reuse_detection_window", _int(600, 7 * 86400), 86400),
    ("IDP_ID_TOKEN_LIFETIME", "id_token_lifetime", _int(60, 3600), 300),
    ("IDP_REFRESH_TOKEN_LIFETIME_DAYS", "refresh_token_lifetime_days", _int(1, 365), 30),
    ("IDP_SIGNING_ALG", "signing_alg", _choice("rs256", "es256"), "rs256"),
    ("IDP_KEY_PREPUBLISH_SECONDS", "key_prepublish_seconds", _int(300, 7 * 86400), 900),
    ("IDP_LOGIN_MAX_FAILURES", "login_max_failures", _int(3, 100), 10),
    ("IDP_LOGIN_FAILURE_WINDOW", "login_failure_window", _int(60, 86400), 900),
    ("IDP_IP_MAX_FAILURES", "ip_max_failures", _int(5, 10000), 100),
    ("IDP_LOGIN_GLOBAL_MAX_FAILURES", "login_global_max_failures", _int(50, 1000000), 1000),
    ("IDP_BOT_CHALLENGE_BITS", "bot_challenge_bits", _int(8, 24), 16),
    ("IDP_OTP_MAX_FAILURES", "otp_max_failures", _int(3, 10), 5),
    ("IDP_OTP_FAILURE_WINDOW", "otp_failure_window", _int(60, 3600), 300),
    ("IDP_OTP_LOCKOUT_FAILURES", "otp_lockout_failures", _int(10, 100), 100),
    ("IDP_TRUST_PROXY", "trust_proxy", _int(0, 5), 0),
    ("IDP_ALLOWED_HOSTS", "allowed_hosts", _hosts, None),
    ("IDP_LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"), "info"),
    ("IDP_PHONE_DEFAULT_REGION", "phone_default_region", _region, "ZA"),
    ("IDP_SMS_BACKEND", "sms_backend", _choice("outbox", "http", "clickatell"), "outbox"),
    ("IDP_SMS_OUTBOX_DIR", "sms_outbox_dir", _text, None),
    ("IDP_SMS_HTTP_URL", "sms_http_url", _url("http", "https"), None),
    ("IDP_SMS_HTTP_AUTH_HEADER", "sms_http_auth_header", _text, None),
    ("IDP_SMS_CLICKATELL_API_KEY", "sms_clickatell_api_key", _text, None),
    ("IDP_SMS_CLICKATELL_URL", "sms_clickatell_url", _url("http", "https"), "https://platform.clickatell.com/v1/message"),
    ("IDP_SMS_TIMEOUT", "sms_timeout", _int(1, 5), 5),
    ("IDP_DASHBOARD_TIMEOUT", "dashboard_timeout", _int(1, 30), 2),
    ("IDP_REACTIVATION_DAYS", "reactivation_days", _int(0, 365), 30),
    ("IDP_UNVERIFIED_ACCOUNT_DAYS", "unverified_account_days", _int(1, 365), 7),
    ("IDP_AUDIT_RETENTION_DAYS", "audit_retention_days", _int(30, 3650), 365),
    ("IDP_ONE_TIME_RECORD_DAYS", "one_time_record_days", _int(1, 365), 30),
    ("IDP_SUPPORT_EMAIL", "support_email", _text, None),
    ("IDP_SUPPORT_PHONE", "support_phone", _text, None),
    ("IDP_SUPPORT_HOURS", "support_hours", _text, None),
    ("IDP_SMS_MAX_PER_NUMBER", "sms_max_per_number", _int(1, 100), 5),
    ("IDP_SMS_MAX_PER_IP", "sms_max_per_ip", _int(1, 10000), 20),
    ("IDP_SMS_MAX_PER_ACCOUNT", "sms_max_per_account", _int(1, 100), 10),
    ("IDP_SMS_DAILY_BUDGET", "sms_daily_budget", _int(1, 1000000), 1000),
    ("IDP_SMS_REGIONS", "sms_regions", _regions, None),
    ("IDP_MAIL_REQUESTS_PER_IP", "mail_requests_per_ip", _int(1, 10000), 20),
    ("IDP_SMS_SECOND_FACTOR", "sms_second_factor", _bool, True),
    ("IDP_WEBAUTHN_RP_ID", "webauthn_rp_id", _rp_id, None),
    ("IDP_TRUST_BROWSER_DAYS", "trust_browser_days", _int(0, 90), 30),
    ("IDP_ACCOUNT_NUMBER_PATTERN", "account_number_pattern", _regex, r"[0-9]{10}"),
    ("IDP_ACCOUNT_NUMBER_CHECK", "account_number_check", _choice("luhn", "none"), "luhn"),
    ("IDP_LINK_DOCUMENT_MAX_KB", "link_document_max_kb", _int(100, 20480), 5120),
    ("IDP_LINK_MAX_PER_IP", "link_max_per_ip", _int(1, 10000), 20),
    ("IDP_STAFF_MFA", "staff_mfa", _choice("phishing-resistant", "any"), "phishing-resistant"),
    ("IDP_STAFF_PASSKEY_AAGUIDS", "staff_passkey_aaguids", _aaguids, ()),
    ("IDP_STAFF_SESSION_HOURS", "staff_session_hours", _int(1, 24), 12),
    ("IDP_ADMIN_HOST", "admin_host", _host, None),
    ("IDP_AUDIT_EXPORTS_PER_HOUR", "audit_exports_per_hour", _int(1, 100), 10),
    ("IDP_CLIENT_SECRET_OVERLAP", "client_secret_overlap", _int(0, 168), 24),
    ("IDP_METRICS_TOKEN", "metrics_token", _secret_key, None),
    ("IDP_LOG_FORMAT", "log_format", _choice("text", "json"), None),
]


@dataclass
class Settings:
    """Validated configuration; build it with :func:`load_settings`."""

    env: str = "development"
    issuer: str = "http://localhost:5000"
    database_url: str = ""
    redis_url: str | None = None
    database_connect_timeout: int = 5
    database_statement_timeout: int = 15
    request_deadline: int = 10
    secret_key: str = ""
    secret_key_fallbacks: tuple[str, ...] = ()
    instance_path: str = ""
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str = "eCitizen Passport <no-reply@localhost>"
    outbox_dir: str = ""
    password_min_length: int = 15
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    max_concurrent_hashes: int = 4
    session_lifetime_hours: int = 12
    session_idle_minutes: int = 30
    access_token_lifetime: int = 600
    auth_code_lifetime: int = 60
    reuse_detection_window: int = 86400
    id_token_lifetime: int = 300
    refresh_token_lifetime_days: int = 30
    signing_alg: str = "rs256"
    key_prepublish_seconds: int = 900
    login_max_failures: int = 10
    login_failure_window: int = 900
    ip_max_failures: int = 100
    login_global_max_failures: int = 1000
    bot_challenge_bits: int = 16
    otp_max_failures: int = 5
    otp_failure_window: int = 300
    otp_lockout_failures: int = 100
    trust_proxy: int = 0
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"
    phone_default_region: str = "ZA"
    sms_backend: str = "outbox"
    sms_outbox_dir: str = ""
    sms_http_url: str | None = None
    sms_http_auth_header: str | None = None
    sms_clickatell_api_key: str | None = None
    sms_clickatell_url: str = "https://platform.clickatell.com/v1/message"
    sms_timeout: int = 5
    dashboard_timeout: int = 2
    reactivation_days: int = 30
    unverified_account_days: int = 7
    audit_retention_days: int = 365
    one_time_record_days: int = 30
    support_email: str | None = None
    support_phone: str | None = None
    support_hours: str | None = None
    sms_max_per_number: int = 5
    sms_max_per_ip: int = 20
    sms_max_per_account: int = 10
    sms_daily_budget: int = 1000
    sms_regions: tuple[str, ...] = ()
    mail_requests_per_ip: int = 20
    sms_second_factor: bool = True
    webauthn_rp_id: str = ""
    trust_browser_days: int = 30
    account_number_pattern: str = r"[0-9]{10}"
    account_number_check: str = "luhn"
    link_document_max_kb: int = 5120
    link_max_per_ip: int = 20
    staff_mfa: str = "phishing-resistant"
    staff_passkey_aaguids: tuple[str, ...] = ()
    staff_session_hours: int = 12
    admin_host: str | None = None
    audit_exports_per_hour: int = 10
    client_secret_overlap: int = 24
    metrics_token: str | None = None
    log_format: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def secure_cookies(self) -> bool:
        """Cookies get ``Secure`` and the ``__Host-`` prefix when the issuer is https."""
        return self.issuer.startswith("https://")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate ``IDP_*`` variables; raise :class:`ConfigError` listing every problem."""
    environ = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    values: dict[str, object] = {}
    for var, attr, parse, default in _SPEC:
        raw = environ.get(var)
        if raw is None or raw == "":
            if default is not None:
                values[attr] = default
            continue
        try:
            values[attr] = parse(raw)
        except ValueError as exc:
            problems.append(f"{var}: {exc}")
    settings = Settings(**values)  # type: ignore[arg-type]

    production = settings.env == "production"
    if production and not environ.get("IDP_SECRET_KEY"):
        problems.append("IDP_SECRET_KEY: is required when IDP_ENV=production")
    if production and not settings.issuer.startswith("https://"):
        problems.append("IDP_ISSUER: must be an https URL when IDP_ENV=production")
    if settings.smtp_host is None and (settings.smtp_username or settings.smtp_password):
        problems.append("IDP_SMTP_HOST: is required when IDP_SMTP_USERNAME or IDP_SMTP_PASSWORD is set")
    if settings.sms_backend == "http" and not settings.sms_http_url:
        problems.append("IDP_SMS_HTTP_URL: is required when IDP_SMS_BACKEND=http")
    if settings.sms_backend == "clickatell" and not settings.sms_clickatell_api_key:
        problems.append("IDP_SMS_CLICKATELL_API_KEY: is required when IDP_SMS_BACKEND=clickatell")
    issuer_host = urlsplit(settings.issuer).hostname or ""
    if settings.webauthn_rp_id and not (issuer_host == settings.webauthn_rp_id
                                        or issuer_host.endswith("." + settings.webauthn_rp_id)):
        problems.append("IDP_WEBAUTHN_RP_ID: must be the issuer's host name or a parent domain of it")
    if settings.admin_host:
        admin_name = urlsplit("http://" + settings.admin_host).hostname or ""
        rp_id = settings.webauthn_rp_id or issuer_host
        if admin_name == issuer_host:
            problems.append("IDP_ADMIN_HOST: must differ from the issuer's host (it gives the console an origin "
                            "of its own)")
        elif not (admin_name == rp_id or admin_name.endswith("." + rp_id)):
            problems.append("IDP_ADMIN_HOST: must be under the WebAuthn RP ID (IDP_WEBAUTHN_RP_ID, by default the issuer's "
                            "host), or staff passkeys would not work there")
    if problems:
        raise ConfigError(problems)

    instance = Path(settings.instance_path or Path.cwd() / "instance").resolve()
    settings.instance_path = str(instance)
    if not settings.database_url:
        settings.database_url = f"sqlite:///{instance / 'idp.sqlite3'}"
    if not settings.outbox_dir:
        settings.outbox_dir = str(instance / "outbox")
    if not settings.log_format:
        settings.log_format = "json" if production else "text"
    if not settings.sms_outbox_dir:
        settings.sms_outbox_dir = str(instance / "sms-outbox")
    if not settings.webauthn_rp_id:
        settings.webauthn_rp_id = issuer_host
    if not settings.sms_regions:
        settings.sms_regions = (settings.phone_default_region,)
    if not settings.secret_key:
        settings.secret_key = _development_secret(instance)
        settings.warnings.append(
            "IDP_SECRET_KEY is not set: using a generated development key kept in "
            f"{instance / 'secret_key'}; set IDP_SECRET_KEY in production."
        )
    return settings


def _development_secret(instance: Path) -> str:
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_settings_or_exit(environ: dict[str, str] | None = None) -> Settings:
    """Like :func:`load_settings`, but print the problems and exit with status 2."""
    try:
        return load_settings(environ)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"configuration error: {line}", file=sys.stderr)
        raise SystemExit(2) from None
