"""The retention job (idp/services/retention.py, ``idp retention run``): what is no longer needed is
deleted, and nothing that is still needed."""
from __future__ import annotations

from datetime import timedelta

from idp.extensions import db
from idp.models import ActionToken, AuditEvent, AuditPurgePermit, OutboundMail, Token, User
from idp.models.types import utcnow
from idp.services import accounts, audit, closure, retention, tokens
from idp.services import action_tokens as links
from tests.support.oidc import PASSWORD

LONG_AGO = timedelta(days=400)


def _user(email: str, *, verified: bool, age: timedelta = LONG_AGO, **changes) -> int:
    user = accounts.create_user(email, PASSWORD, name="Resident", email_verified=verified)
    user.created_at = utcnow() - age
    for name, value in changes.items():
        setattr(user, name, value)
    db.session.commit()
    return user.id


def _emails() -> set[str]:
    return set(db.session.scalars(db.select(User.email)))


def test_only_old_plain_unconfirmed_registrations_are_deleted(ctx):
    stale = _user("stale@example.org", verified=False)
    links.issue(stale, links.VERIFY_EMAIL, data={"email": "stale@example.org"})
    _user("recent@example.org", verified=False, age=timedelta(days=2))
    _user("confirmed@example.org", verified=True)
    _user("staff@example.org", verified=False, roles=["support"])
    _user("texted@example.org", verified=False, phone_number="+27821234567", phone_verified_at=utcnow())
    _user("locked@example.org", verified=False, status="locked", lock_reason="staff")
    outcome = retention.run()
    assert outcome.unverified_accounts == 1
    assert _emails() == {"recent@example.org", "confirmed@example.org", "staff@example.org",
                         "texted@example.org", "locked@example.org"}
    assert db.session.scalar(db.select(ActionToken).where(ActionToken.user_id == stale)) is None
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "retention.pass"))
    assert event.detail["unverified_accounts"] == 1 and "stale@example.org" not in str(event.detail)


def test_a_closed_account_is_erased_once_it_can_no_longer_be_reopened(ctx):
    days = ctx.config["IDP_SETTINGS"].reactivation_days
    old = _user("closed-long-ago@example.org", verified=True, status="deactivated", lock_reason=closure.SELF_CLOSED,
                deactivated_at=utcnow() - timedelta(days=days + 1))
    _user("closed-yesterday@example.org", verified=True, status="deactivated", lock_reason=closure.SELF_CLOSED,
          deactivated_at=utcnow() - timedelta(days=1))
    _user("staff-deactivated@example.org", verified=True, status="deactivated", lock_reason="staff",
          deactivated_at=utcnow() - LONG_AGO)
    assert retention.run().closed_accounts == 1
    shell = db.session.get(User, old)
    assert shell is not None and shell.email.endswith("@erased.invalid") and shell.password_hash is None
    assert {"closed-yesterday@example.org", "staff-deactivated@example.org"} <= _emails()
    assert retention.run().closed_accounts == 0  # an erased shell is not erased again


def test_old_audit_events_go_and_recent_ones_stay(ctx):
    days = ctx.config["IDP_SETTINGS"].audit_retention_days
    audit.record("signin.success", user_id=1)
    db.session.add(AuditEvent(event="signin.failure", outcome="failure", user_id=1,
                              at=utcnow() - timedelta(days=days + 1)))
    db.session.add(AuditEvent(event="signin.failure", outcome="failure", user_id=2,
                              at=utcnow() - timedelta(days=days - 1)))
    db.session.commit()
    assert retention.run().audit_events == 1  # past the append-only guard, with a permit of its own
    assert sorted(db.session.scalars(db.select(AuditEvent.event))) == ["retention.pass", "signin.failure",
                                                                       "signin.success"]
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditPurgePermit)) == 0  # none left behind


def _token(user_id: int, *, access_age: timedelta, grant_left: timedelta | None) -> str:
    access = tokens.new_refresh_token()  # any unique string serves as the stored digest's source
    refresh = tokens.new_refresh_token() if grant_left is not None else None
    issued = {"access_token": access, "expires_in": 600, **({"refresh_token": refresh} if refresh else {})}
    tokens.save(issued, client_id="billing", user_id=user_id, scope="openid", context={},
                grant_expires_at=utcnow() + grant_left if grant_left is not None else None)
    db.session.execute(db.update(Token).where(Token.access_token_digest == tokens.digest(access))
                       .values(access_expires_at=utcnow() - access_age))
    db.session.commit()
    return access


def test_one_time_records_go_once_unusable_for_the_retention_period(ctx):
    user_id = _user("resident@example.org", verified=True)
    days = timedelta(days=ctx.config["IDP_SETTINGS"].one_time_record_days + 1)
    gone = _token(user_id, access_age=days, grant_left=-days)  # family ended long ago
    kept_family = _token(user_id, access_age=days, grant_left=timedelta(days=5))  # a rotated token's family lives
    kept_recent = _token(user_id, access_age=timedelta(minutes=5), grant_left=None)
    links.issue(user_id, links.RESET_PASSWORD)
    db.session.execute(db.update(ActionToken).values(expires_at=utcnow() - days))
    db.session.add_all([OutboundMail(recipient="a@example.org", subject="s", content_sealed="x", sent_at=utcnow() - days),
                        OutboundMail(recipient="b@example.org", subject="s", content_sealed="x")])  # still waiting
    db.session.commit()
    assert retention.run().one_time_records == 3
    left = set(db.session.scalars(db.select(Token.access_token_digest)))
    assert left == {tokens.digest(kept_family), tokens.digest(kept_recent)} and tokens.digest(gone) not in left
    assert db.session.scalar(db.select(db.func.count()).select_from(ActionToken)) == 0
    assert list(db.session.scalars(db.select(OutboundMail.recipient))) == ["b@example.org"]


def test_scheduled_passes_run_at_most_hourly_across_instances(ctx):
    _user("stale@example.org", verified=False)
    assert retention.run_if_due().unverified_accounts == 1
    _user("stale-too@example.org", verified=False)
    assert retention.run_if_due() is None  # one ran within the hour (the lock is in the shared store)
    assert "stale-too@example.org" in _emails()


def test_the_background_worker_runs_the_job(ctx):
    from idp.services import delivery_worker

    assert retention.run_if_due in delivery_worker.PERIODIC
