"""billing: notification outbox, contacts, webhook endpoints, low-balance thresholds

Revision ID: 0322_billing_notify
Revises: 0350_billing_pass_entries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


revision = '0322_billing_notify'
down_revision = '0350_billing_pass_entries'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('claimed_until', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('sent_at', core.db.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('uid', name=op.f('uq_notification_uid')),
    **MYSQL,
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('webhook_endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=512), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('events', sa.String(length=512), nullable=False, comment='comma-separated event names, or *'),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint')),
    sa.UniqueConstraint('name', name=op.f('uq_webhook_endpoint_name')),
    **MYSQL,
    )
    op.create_table('low_balance_threshold',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False, comment='minor units'),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_low_balance_threshold_plan_id_plan'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', name=op.f('pk_low_balance_threshold')),
    **MYSQL,
    )
    op.create_table('notify_contact',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_notify_contact_subscriber_id_subscriber'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id', name=op.f('pk_notify_contact')),
    **MYSQL,
    )
    op.create_table('low_balance_state',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('notified_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_low_balance_state_account_id_billing_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_low_balance_state')),
    **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('low_balance_state')
    op.drop_table('notify_contact')
    op.drop_table('low_balance_threshold')
    op.drop_table('webhook_endpoint')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_status_next_attempt_at')

    op.drop_table('notification')
