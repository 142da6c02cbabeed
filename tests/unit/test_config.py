"""Configuration is validated at start with one line per bad value, never echoing it."""
import pytest

from idp.config import ConfigError, load_settings


def test_defaults_are_embedded(tmp_path):
    settings = load_settings({"IDP_INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    assert settings.redis_url is None
    assert (tmp_path / "secret_key").exists()
    assert any("IDP_SECRET_KEY" in w for w in settings.warnings)
    # The generated development key is kept: a restart signs with the same key.
    assert load_settings({"IDP_INSTANCE_PATH": str(tmp_path)}).secret_key == settings.secret_key


def test_each_bad_value_is_named_once_without_its_value(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings({"IDP_INSTANCE_PATH": str(tmp_path), "IDP_SMTP_PORT": "hunter2-port",
                       "IDP_ISSUER": "ftp://x", "IDP_PASSWORD_MIN_LENGTH": "3",
                       "IDP_DATABASE_URL": "mysql://u:sekrit@h/db"})
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "IDP_ISSUER", "IDP_DATABASE_URL", "IDP_SMTP_PORT", "IDP_PASSWORD_MIN_LENGTH"]
    assert "hunter2" not in str(info.value) and "sekrit" not in str(info.value)


def test_production_requires_secret_and_https(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings({"IDP_ENV": "production", "IDP_INSTANCE_PATH": str(tmp_path),
                       "IDP_ISSUER": "http://id.example.gov.za"})
    assert {p.split(":")[0] for p in info.value.problems} == {"IDP_SECRET_KEY", "IDP_ISSUER"}


def test_postgres_urls_use_psycopg3(tmp_path):
    settings = load_settings({"IDP_INSTANCE_PATH": str(tmp_path),
                              "IDP_DATABASE_URL": "postgresql://127.0.0.1/idp"})
    assert settings.database_url == "postgresql+psycopg://127.0.0.1/idp"


def test_cli_prints_one_line_per_problem_and_exits_2(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    idp = str(Path(sys.executable).with_name("idp"))
    result = subprocess.run([idp, "db", "upgrade"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "IDP_INSTANCE_PATH": str(tmp_path),
                                 "IDP_SMTP_PORT": "0"})
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: IDP_SMTP_PORT: must be between 1 and 65535"


def test_sms_and_passkey_settings_are_checked_together(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings({"IDP_INSTANCE_PATH": str(tmp_path), "IDP_PHONE_DEFAULT_REGION": "XX",
                       "IDP_SMS_BACKEND": "http", "IDP_ISSUER": "https://id.capetown.gov.za",
                       "IDP_WEBAUTHN_RP_ID": "evil.example", "IDP_SMS_CLICKATELL_API_KEY": " "})
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "IDP_PHONE_DEFAULT_REGION", "IDP_SMS_CLICKATELL_API_KEY", "IDP_SMS_HTTP_URL", "IDP_WEBAUTHN_RP_ID"]


def test_passkeys_default_to_the_issuer_host_and_may_use_a_parent_domain(tmp_path):
    base = {"IDP_INSTANCE_PATH": str(tmp_path), "IDP_ISSUER": "https://id.capetown.gov.za"}
    assert load_settings(base).webauthn_rp_id == "id.capetown.gov.za"
    assert load_settings({**base, "IDP_WEBAUTHN_RP_ID": "capetown.gov.za"}).webauthn_rp_id == "capetown.gov.za"
    with pytest.raises(ConfigError):
        load_settings({**base, "IDP_SMS_BACKEND": "clickatell"})  # no API key
