"""billing: reseller balances with the operator, their ledger, wholesale rates per plan

Revision ID: 0323_billing_resellers
Revises: 0322_billing_notify
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0323_billing_resellers'
down_revision = '0322_billing_notify'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reseller_account',
    sa.Column('reseller_id', sa.Integer(), nullable=False, comment='reseller.id'),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False, comment='cache of SUM(reseller_entry.amount)'),
    sa.Column('credit_limit', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('reseller_id', name=op.f('pk_reseller_account')),
    **MYSQL,
    )
    op.create_table('reseller_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('reseller_id', sa.Integer(), nullable=False, comment='reseller.id'),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='topup|draw|adjustment'),
    sa.Column('amount', sa.BigInteger(), nullable=False, comment='minor units; draws < 0'),
    sa.Column('idempotency_key', sa.String(length=191), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reseller_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_reseller_entry_idempotency_key')),
    **MYSQL,
    )
    op.create_index('ix_reseller_entry_created_at', 'reseller_entry', ['created_at'], unique=False)
    op.create_index('ix_reseller_entry_reseller_id_id', 'reseller_entry', ['reseller_id', 'id'], unique=False)

    op.create_table('plan_wholesale',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('percent', sa.String(length=8), nullable=False, comment='of each payment the reseller owes the operator'),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_plan_wholesale_plan_id_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', name=op.f('pk_plan_wholesale')),
    **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('plan_wholesale')
    op.drop_index('ix_reseller_entry_reseller_id_id', table_name='reseller_entry')
    op.drop_index('ix_reseller_entry_created_at', table_name='reseller_entry')
    op.drop_table('reseller_entry')
    op.drop_table('reseller_account')
