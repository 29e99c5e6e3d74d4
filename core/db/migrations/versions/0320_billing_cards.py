"""billing: prepaid cards (batches, cards, PIN attempts); ledger_entry.method

Revision ID: 0320_billing_cards
Revises: 0310_billing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0320_billing_cards'
down_revision = '0310_billing'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('card_attempt',
    sa.Column('scope', sa.String(length=160), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_start', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('locked_until', core.db.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_card_attempt')),
    **MYSQL,
    )
    op.create_table('card_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False, comment='minor units credited per card'),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('validity_days', sa.Integer(), nullable=True, comment='voucher subscriber lifetime from first use'),
    sa.Column('expires_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('reseller_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_card_batch_plan_id_plan'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_batch')),
    sa.UniqueConstraint('name', name=op.f('uq_card_batch_name')),
    **MYSQL,
    )
    op.create_table('card',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=32), nullable=False),
    sa.Column('pin_hash', sa.String(length=128), nullable=False, comment='sha256$salt$hex of the PIN'),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.String(length=255), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('activated_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('activated_via', sa.String(length=16), nullable=True, comment='operator|selfcare|api|radius'),
    sa.Column('activated_from', sa.String(length=64), nullable=True),
    sa.Column('valid_until', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('ledger_entry_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['card_batch.id'], name=op.f('fk_card_batch_id_card_batch'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_card_subscriber_id_subscriber'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card')),
    sa.UniqueConstraint('serial', name=op.f('uq_card_serial')),
    **MYSQL,
    )
    op.create_index('ix_card_batch_id_id', 'card', ['batch_id', 'id'], unique=False)
    op.create_index('ix_card_valid_until', 'card', ['valid_until'], unique=False)
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('method', sa.String(length=32), nullable=True, comment='payments: manual|card|import|gateway:<name>'))
        batch_op.create_index('ix_ledger_entry_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entry_created_at')
        batch_op.drop_column('method')
    op.drop_index('ix_card_valid_until', table_name='card')
    op.drop_index('ix_card_batch_id_id', table_name='card')
    op.drop_table('card')
    op.drop_table('card_batch')
    op.drop_table('card_attempt')
