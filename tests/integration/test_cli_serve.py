"""``idp serve`` refuses what would not work before it binds a port: bad settings, and several
workers without a shared store."""
import os
import socket
import subprocess

from tests.support.server import IDP, TEST_SECRET
from tests.support.smtp import free_port


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_ENV="test", IDP_SECRET_KEY=TEST_SECRET, IDP_INSTANCE_PATH=str(tmp_path / "instance"))
    env.update(extra)
    return env


def _run(tmp_path, *args, **env):
    return subprocess.run([IDP, *args], env=_env(tmp_path, **env), capture_output=True, text=True, timeout=60)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_several_workers_without_redis_are_refused(tmp_path):
    port = free_port()
    result = _run(tmp_path, "serve", "--port", str(port), "--workers", "2")
    assert result.returncode == 2
    assert "IDP_REDIS_URL" in result.stderr
    assert "--workers 2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not _listening(port)


def test_bad_settings_exit_2_with_one_line_each_and_no_values(tmp_path):
    result = _run(tmp_path, "serve", "--port", str(free_port()),
                  IDP_SMTP_PORT="port-hunter2", IDP_ISSUER="ftp://nope", IDP_LOG_LEVEL="loud")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("configuration error:")]
    assert [line.split(":")[1].strip() for line in lines] == ["IDP_ISSUER", "IDP_SMTP_PORT", "IDP_LOG_LEVEL"]
    assert "hunter2" not in result.stderr and "loud" not in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_options_are_refused(tmp_path):
    result = _run(tmp_path, "serve", "--workers", "0")
    assert result.returncode == 2
    assert "--workers" in result.stderr
    result = _run(tmp_path, "serve", "--port", "70000")
    assert result.returncode == 2


def test_serve_help_lists_the_options(tmp_path):
    result = _run(tmp_path, "serve", "--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--threads"):
        assert option in result.stdout
