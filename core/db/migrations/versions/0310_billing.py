"""billing: accounts, ledger, tariffs, voice rates, charging sessions, allowances, events

Also marks usage deltas as rated: usage_delta.rated with (rated, id) as billing's queue.

Revision ID: 0310_billing
Revises: 0300_billing_usage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0310_billing'
down_revision = '0300_billing_usage'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tariff',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('time_price', sa.BigInteger(), nullable=False),
    sa.Column('time_unit', sa.Integer(), nullable=False),
    sa.Column('time_increment', sa.Integer(), nullable=False),
    sa.Column('price_per_mb_in', sa.BigInteger(), nullable=False),
    sa.Column('price_per_mb_out', sa.BigInteger(), nullable=False),
    sa.Column('monthly_fee', sa.BigInteger(), nullable=False),
    sa.Column('daily_fee', sa.BigInteger(), nullable=False),
    sa.Column('credit_limit', sa.BigInteger(), nullable=False),
    sa.Column('allowance_period', sa.String(length=8), nullable=True),
    sa.Column('allowance_seconds', sa.BigInteger(), nullable=False),
    sa.Column('allowance_octets', sa.BigInteger(), nullable=False),
    sa.Column('allowance_after', sa.String(length=16), nullable=False),
    sa.Column('throttle_rate_limit', sa.String(length=64), nullable=True),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_tariff_plan_id_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', name=op.f('pk_tariff')),
    **MYSQL,
    )
    op.create_table('tariff_band',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('days', sa.String(length=32), nullable=False, comment='0=Mon..6=Sun, comma separated'),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('end_minute', sa.Integer(), nullable=False, comment='<= start wraps past midnight'),
    sa.Column('time_price', sa.BigInteger(), nullable=True),
    sa.Column('price_per_mb_in', sa.BigInteger(), nullable=True),
    sa.Column('price_per_mb_out', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_tariff_band_plan_id_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tariff_band')),
    sa.UniqueConstraint('plan_id', 'name', name=op.f('uq_tariff_band_plan_id_name')),
    **MYSQL,
    )
    op.create_table('voice_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('price_per_minute', sa.BigInteger(), nullable=False),
    sa.Column('connect_fee', sa.BigInteger(), nullable=False),
    sa.Column('minimum', sa.Integer(), nullable=False),
    sa.Column('increment', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_voice_rate_plan_id_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_rate')),
    sa.UniqueConstraint('plan_id', 'prefix', name=op.f('uq_voice_rate_plan_id_prefix')),
    **MYSQL,
    )
    op.create_table('billing_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False, comment='cache of SUM(ledger_entry.amount)'),
    sa.Column('credit_limit', sa.BigInteger(), nullable=True, comment="minor units; NULL = the plan's"),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.String(length=255), nullable=False),
    sa.Column('status_changed_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('next_fee_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_billing_account_subscriber_id_subscriber'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_account')),
    sa.UniqueConstraint('subscriber_id', name=op.f('uq_billing_account_subscriber_id')),
    **MYSQL,
    )
    op.create_index('ix_billing_account_next_fee_at', 'billing_account', ['next_fee_at'], unique=False)
    op.create_index('ix_billing_account_status', 'billing_account', ['status'], unique=False)
    op.create_table('allowance_usage',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False, comment="2024-05 or 2024-05-17, tariff's zone"),
    sa.Column('seconds', sa.BigInteger(), nullable=False),
    sa.Column('octets', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_allowance_usage_account_id_billing_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'period', name=op.f('pk_allowance_usage')),
    **MYSQL,
    )
    op.create_table('billing_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_billing_event_account_id_billing_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_event')),
    **MYSQL,
    )
    op.create_index('ix_billing_event_account_id_id', 'billing_event', ['account_id', 'id'], unique=False)
    op.create_table('charging_session',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=True, comment='session|call; NULL until usage binds'),
    sa.Column('source_id', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('nas_id', sa.Integer(), nullable=True),
    sa.Column('acct_session_id', sa.String(length=128), nullable=True),
    sa.Column('user_name', sa.String(length=128), nullable=False),
    sa.Column('framed_ip', sa.String(length=45), nullable=True),
    sa.Column('destination', sa.String(length=64), nullable=True),
    sa.Column('reserved', sa.BigInteger(), nullable=False, comment='minor units held'),
    sa.Column('charged', sa.BigInteger(), nullable=False, comment='minor units charged'),
    sa.Column('rating', sa.JSON(), nullable=False),
    sa.Column('grant_seconds', sa.Integer(), nullable=True),
    sa.Column('exhausts_at', core.db.base.UTCDateTime(), nullable=True, comment='when the held money runs out, if it is short'),
    sa.Column('throttled', sa.Boolean(), nullable=False),
    sa.Column('cut_requested_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('cut_result', sa.String(length=32), nullable=True),
    sa.Column('expires_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_usage_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_charging_session_account_id_billing_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charging_session')),
    sa.UniqueConstraint('source', 'source_id', name=op.f('uq_charging_session_source_source_id')),
    **MYSQL,
    )
    op.create_index('ix_charging_session_account_id_state', 'charging_session', ['account_id', 'state'], unique=False)
    op.create_index('ix_charging_session_nas_id_acct_session_id', 'charging_session', ['nas_id', 'acct_session_id'], unique=False)
    op.create_index('ix_charging_session_state_expires_at', 'charging_session', ['state', 'expires_at'], unique=False)
    op.create_table('ledger_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False, comment='minor units; charges < 0'),
    sa.Column('idempotency_key', sa.String(length=191), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=True, comment='external payment id'),
    sa.Column('source_id', sa.String(length=64), nullable=True, comment='session or call charged'),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_ledger_entry_account_id_billing_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_entry_idempotency_key')),
    **MYSQL,
    )
    op.create_index('ix_ledger_entry_account_id_id', 'ledger_entry', ['account_id', 'id'], unique=False)
    op.add_column('usage_delta', sa.Column('rated', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_usage_delta_rated_id', 'usage_delta', ['rated', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_usage_delta_rated_id', table_name='usage_delta')
    with op.batch_alter_table('usage_delta', schema=None) as batch_op:
        batch_op.drop_column('rated')
    op.drop_table('ledger_entry')
    op.drop_table('charging_session')
    op.drop_table('billing_event')
    op.drop_table('allowance_usage')
    op.drop_table('billing_account')
    op.drop_table('voice_rate')
    op.drop_table('tariff_band')
    op.drop_table('tariff')
