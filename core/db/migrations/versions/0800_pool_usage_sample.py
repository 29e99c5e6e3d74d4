"""pools: pool_usage_sample (pool usage over time, for the admin's report)

Revision ID: 0800_pool_usage_sample
Revises: 0200_pools
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0800_pool_usage_sample'
down_revision = '0200_pools'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pool_usage_sample',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
              nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('sampled_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('used', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    **MYSQL)
    op.create_index('ix_pool_usage_sample_at', 'pool_usage_sample', ['sampled_at', 'pool_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_pool_usage_sample_at', table_name='pool_usage_sample')
    op.drop_table('pool_usage_sample')
