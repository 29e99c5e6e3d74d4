"""cluster: cluster_member (heartbeats) and cluster_lease (singleton leadership)

Revision ID: 0500_cluster
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0500_cluster'
down_revision = '0001'
branch_labels = ('cluster',)
depends_on = None


def upgrade() -> None:
    op.create_table('cluster_member',
    sa.Column('member', sa.String(length=80), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('worker', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=120), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('started_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('heartbeat_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('member', name=op.f('pk_cluster_member')),
    **MYSQL)
    op.create_index(op.f('ix_cluster_member_node'), 'cluster_member', ['node'], unique=False)
    op.create_table('cluster_lease',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=True),
    sa.Column('member', sa.String(length=80), nullable=True),
    sa.Column('node', sa.String(length=64), nullable=True),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('acquired_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('renewed_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('expires_at', core.db.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cluster_lease')),
    **MYSQL)


def downgrade() -> None:
    op.drop_table('cluster_lease')
    op.drop_index(op.f('ix_cluster_member_node'), table_name='cluster_member')
    op.drop_table('cluster_member')
