"""audit events are append-only

The database refuses to change or delete an audit event (checklist 79), whoever asks, with two
exceptions: erasure may take the network address out of an event (POPIA), and events older than
a permit in audit_purge_permits may be deleted (retention writes one in its own transaction).

Revision ID: a34ad7274cbd
Revises: 4eb1db3f3085
Create Date: 2026-11-23 18:17:00.088927

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a34ad7274cbd'
down_revision = '4eb1db3f3085'
branch_labels = None
depends_on = None

_KEPT = ("id", "at", "event", "outcome", "user_id", "actor_id", "client_id")

POSTGRESQL = f"""
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    IF EXISTS (SELECT 1 FROM audit_purge_permits WHERE before > now()) THEN
      RETURN NULL;
    END IF;
  ELSIF EXISTS (SELECT 1 FROM audit_purge_permits WHERE OLD.at < before) THEN
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  ELSIF TG_OP = 'UPDATE' AND NEW.ip_address IS NULL
        AND ({", ".join("NEW." + c for c in _KEPT)}, NEW.detail::text)
            IS NOT DISTINCT FROM ({", ".join("OLD." + c for c in _KEPT)}, OLD.detail::text) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
"""

_NO_PERMIT = "NOT EXISTS (SELECT 1 FROM audit_purge_permits WHERE OLD.at < before)"
SQLITE = (
    f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events WHEN {_NO_PERMIT}
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events WHEN {_NO_PERMIT}
  AND NOT (NEW.ip_address IS NULL AND {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in (*_KEPT, "detail"))})
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END""",
)


def upgrade():
    op.create_table('audit_purge_permits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('before', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_purge_permits'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL)
    else:
        for statement in SQLITE:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")
    op.drop_table('audit_purge_permits')
