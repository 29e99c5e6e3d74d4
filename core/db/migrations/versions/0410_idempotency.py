"""access: api_idempotency (the first answer of each money-moving API request, by key)

Revision ID: 0410_idempotency
Revises: 0400_access
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0410_idempotency'
down_revision = '0400_access'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_idempotency',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=160), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False,
              comment='SHA-256 of the request'),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_idempotency')),
    **MYSQL)
    op.create_index('uq_api_idempotency_actor_key', 'api_idempotency', ['actor', 'key'],
                    unique=True)
    op.create_index(op.f('ix_api_idempotency_created_at'), 'api_idempotency', ['created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_api_idempotency_created_at'), table_name='api_idempotency')
    op.drop_index('uq_api_idempotency_actor_key', table_name='api_idempotency')
    op.drop_table('api_idempotency')
