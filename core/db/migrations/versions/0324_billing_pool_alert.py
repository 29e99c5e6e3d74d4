"""billing: pool_alert_state (admin notification pool_high, sent once per crossing)

Revision ID: 0324_billing_pool_alert
Revises: 0323_billing_resellers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0324_billing_pool_alert'
down_revision = '0323_billing_resellers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pool_alert_state',
    sa.Column('pool_name', sa.String(length=64), nullable=False),
    sa.Column('percent', sa.String(length=8), nullable=False, comment='utilization when alerted'),
    sa.Column('notified_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('pool_name', name=op.f('pk_pool_alert_state')),
    **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('pool_alert_state')
