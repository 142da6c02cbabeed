"""``idp users create`` and ``idp users grant-role``: refusals are clear and store nothing."""
import pytest

from idp.extensions import db
from idp.models import AuditEvent, User

GOOD_PASSWORD = "kloof-street-lantern-2026"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner(mix_stderr=False) if _mixes() else app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))

    return invoke


def _mixes() -> bool:
    import inspect

    from click.testing import CliRunner

    return "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


def _users(app):
    with app.app_context():
        return db.session.scalars(db.select(User)).all()


def test_create_user(app, cli):
    result = cli("users", "create", "--email", "Naledi.Mokoena@Example.org", "--password", GOOD_PASSWORD,
                 "--name", "Naledi Mokoena", "--verified-email")
    assert result.exit_code == 0, result.output
    assert "naledi.mokoena@example.org" in result.output
    [user] = _users(app)
    assert user.email == "naledi.mokoena@example.org"
    assert user.name == "Naledi Mokoena"
    assert user.email_verified is True
    assert user.password_hash.startswith("$argon2id$")
    assert GOOD_PASSWORD not in user.password_hash
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent)).all()
        assert [e.event for e in events] == ["user.created"]
        assert GOOD_PASSWORD not in str(events[0].detail)


def test_unverified_by_default(app, cli):
    assert cli("users", "create", "--email", "a@example.org", "--password", GOOD_PASSWORD).exit_code == 0
    assert _users(app)[0].email_verified is False


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.org", "space in@example.org", ""])
def test_bad_email_is_refused_and_nothing_stored(app, cli, email):
    result = cli("users", "create", "--email", email, "--password", GOOD_PASSWORD)
    assert result.exit_code != 0
    assert "email address" in result.output.lower() or "email address" in (result.stderr or "").lower()
    assert "Traceback" not in result.output
    assert _users(app) == []


@pytest.mark.parametrize("password", ["short", "password1234", "aaaaaaaaaaaaaaaa"])
def test_weak_password_is_refused_and_nothing_stored(app, cli, password):
    result = cli("users", "create", "--email", "weak@example.org", "--password", password)
    assert result.exit_code != 0
    message = (result.output + (result.stderr or "")).lower()
    assert message.startswith("error: ") and len(message.splitlines()[0]) > 15
    assert "Traceback" not in result.output
    assert _users(app) == []


def test_duplicate_email_is_refused(app, cli):
    assert cli("users", "create", "--email", "dup@example.org", "--password", GOOD_PASSWORD).exit_code == 0
    result = cli("users", "create", "--email", "DUP@example.org", "--password", GOOD_PASSWORD)
    assert result.exit_code != 0
    assert "already registered" in result.output + (result.stderr or "")
    assert len(_users(app)) == 1


def test_grant_role(app, cli):
    cli("users", "create", "--email", "staff@example.org", "--password", GOOD_PASSWORD)
    result = cli("users", "grant-role", "staff@example.org", "administrator")
    assert result.exit_code == 0, result.output
    assert _users(app)[0].roles == ["administrator"]
    # Granting twice keeps one copy.
    assert cli("users", "grant-role", "STAFF@example.org", "administrator").exit_code == 0
    assert cli("users", "grant-role", "staff@example.org", "support").exit_code == 0
    assert sorted(_users(app)[0].roles) == ["administrator", "support"]


def test_grant_unknown_role_is_refused(app, cli):
    cli("users", "create", "--email", "staff@example.org", "--password", GOOD_PASSWORD)
    result = cli("users", "grant-role", "staff@example.org", "superuser")
    assert result.exit_code != 0
    assert _users(app)[0].roles == []


def test_grant_role_to_unknown_account_is_refused(app, cli):
    result = cli("users", "grant-role", "nobody@example.org", "support")
    assert result.exit_code != 0
    assert "no account" in result.output + (result.stderr or "")
