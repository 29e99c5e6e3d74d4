"""billing: usage_delta (usage pushed by accounting, stored until rated)

Revision ID: 0300_billing_usage
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0300_billing_usage'
down_revision = '0001'
branch_labels = ('billing',)
depends_on = None


def upgrade() -> None:
    op.create_table('usage_delta',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('seconds', sa.BigInteger(), nullable=False),
    sa.Column('octets_in', sa.BigInteger(), nullable=False),
    sa.Column('octets_out', sa.BigInteger(), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=True),
    sa.Column('caller', sa.String(length=64), nullable=True),
    sa.Column('total_seconds', sa.BigInteger(), nullable=False),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('period_start', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('period_end', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_usage_delta_subscriber_id_subscriber'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_delta')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_usage_delta_idempotency_key')),
    **MYSQL,
    )
    with op.batch_alter_table('usage_delta', schema=None) as batch_op:
        batch_op.create_index('ix_usage_delta_subscriber_id_period_end', ['subscriber_id', 'period_end'], unique=False)


def downgrade() -> None:
    op.drop_table('usage_delta')
