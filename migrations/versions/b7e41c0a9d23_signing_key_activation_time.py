"""signing key activation time (pre-publication before a rotated-in key signs)

Revision ID: b7e41c0a9d23
Revises: ced7ba61df49
Create Date: 2026-11-23 11:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e41c0a9d23'
down_revision = 'ced7ba61df49'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activates_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('signing_keys', schema=None) as batch_op:
        batch_op.drop_column('activates_at')
