"""legacy: subscriber.legacy_hash (FreeRADIUS password hashes kept until the next login)

Revision ID: 0600_legacy_hash
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0600_legacy_hash'
down_revision = '0001'
branch_labels = ('legacy',)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriber') as batch:
        batch.add_column(sa.Column(
            'legacy_hash', sa.String(length=255), nullable=True,
            comment='imported FreeRADIUS hash (libpass form), replaced at the next PAP login'))


def downgrade() -> None:
    with op.batch_alter_table('subscriber') as batch:
        batch.drop_column('legacy_hash')
