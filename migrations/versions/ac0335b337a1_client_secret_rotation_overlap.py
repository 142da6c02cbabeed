"""client secret rotation overlap: the previous secret's digest and until when it still works

Revision ID: ac0335b337a1
Revises: b7e41c0a9d23
Create Date: 2026-11-23 11:19:27.175083

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'ac0335b337a1'
down_revision = 'b7e41c0a9d23'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_digest', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret_digest')
