"""accounting: acct_session, acct_call, acct_spool_position

Revision ID: 0100_accounting
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = '0100_accounting'
down_revision = '0001'
branch_labels = ('accounting',)
depends_on = None


def upgrade() -> None:
    op.create_table('acct_session',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('unique_id', sa.String(length=32), nullable=False, comment='md5 of NAS, Acct-Session-Id and User-Name'),
    sa.Column('nas_id', sa.Integer(), nullable=True, comment='nas.id when it was stored'),
    sa.Column('nas_identity', sa.String(length=64), nullable=False, comment='NAS-IP-Address, NAS-Identifier or source'),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('user_name', sa.String(length=128), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=False),
    sa.Column('multi_session_id', sa.String(length=128), nullable=True),
    sa.Column('started_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False, comment='NAS event time, latest'),
    sa.Column('stopped_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_seen_at', core.db.base.UTCDateTime(), nullable=False, comment='when radbill last heard of it'),
    sa.Column('stale_deadline', core.db.base.UTCDateTime(), nullable=True, comment='open sessions only: closed as stale when passed'),
    sa.Column('interim_interval', sa.Integer(), nullable=False),
    sa.Column('start_seen', sa.Boolean(), nullable=False),
    sa.Column('session_time', sa.BigInteger(), nullable=False),
    sa.Column('input_octets', sa.BigInteger(), nullable=False),
    sa.Column('output_octets', sa.BigInteger(), nullable=False),
    sa.Column('input_packets', sa.BigInteger(), nullable=False),
    sa.Column('output_packets', sa.BigInteger(), nullable=False),
    sa.Column('framed_ip', sa.String(length=45), nullable=True),
    sa.Column('framed_ipv6_address', sa.String(length=45), nullable=True),
    sa.Column('framed_ipv6_prefix', sa.String(length=64), nullable=True),
    sa.Column('delegated_ipv6_prefix', sa.String(length=64), nullable=True),
    sa.Column('calling_station_id', sa.String(length=64), nullable=True),
    sa.Column('called_station_id', sa.String(length=64), nullable=True),
    sa.Column('nas_port', sa.BigInteger(), nullable=True),
    sa.Column('nas_port_id', sa.String(length=64), nullable=True),
    sa.Column('nas_port_type', sa.String(length=32), nullable=True),
    sa.Column('terminate_cause', sa.String(length=32), nullable=True),
    sa.Column('closed_by', sa.String(length=16), nullable=True),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_acct_session_subscriber_id_subscriber'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acct_session')),
    sa.UniqueConstraint('unique_id', name=op.f('uq_acct_session_unique_id')),
    **MYSQL,
    )
    with op.batch_alter_table('acct_session', schema=None) as batch_op:
        batch_op.create_index('ix_acct_session_subscriber_id_started_at', ['subscriber_id', 'started_at'], unique=False)
        batch_op.create_index('ix_acct_session_subscriber_id_stale_deadline', ['subscriber_id', 'stale_deadline'], unique=False)
        batch_op.create_index('ix_acct_session_nas_id_stopped_at', ['nas_id', 'stopped_at'], unique=False)
        batch_op.create_index('ix_acct_session_stale_deadline', ['stale_deadline'], unique=False)
        batch_op.create_index('ix_acct_session_started_at', ['started_at'], unique=False)

    op.create_table('acct_call',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('unique_id', sa.String(length=32), nullable=False),
    sa.Column('nas_id', sa.Integer(), nullable=True, comment='nas.id when it was stored'),
    sa.Column('nas_identity', sa.String(length=64), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('user_name', sa.String(length=128), nullable=False),
    sa.Column('session_id', sa.String(length=128), nullable=False),
    sa.Column('call_id', sa.String(length=128), nullable=True),
    sa.Column('conf_id', sa.String(length=128), nullable=True),
    sa.Column('caller', sa.String(length=64), nullable=True),
    sa.Column('callee', sa.String(length=64), nullable=True, comment='dialled number'),
    sa.Column('leg', sa.String(length=16), nullable=True),
    sa.Column('billable', sa.Boolean(), nullable=False),
    sa.Column('setup_time', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('connect_time', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('disconnect_time', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('disconnect_cause', sa.String(length=32), nullable=True),
    sa.Column('duration', sa.BigInteger(), nullable=False, comment='seconds connected'),
    sa.Column('started_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('stopped_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_seen_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_acct_call_subscriber_id_subscriber'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acct_call')),
    sa.UniqueConstraint('unique_id', name=op.f('uq_acct_call_unique_id')),
    **MYSQL,
    )
    with op.batch_alter_table('acct_call', schema=None) as batch_op:
        batch_op.create_index('ix_acct_call_subscriber_id_started_at', ['subscriber_id', 'started_at'], unique=False)
        batch_op.create_index('ix_acct_call_nas_id_started_at', ['nas_id', 'started_at'], unique=False)
        batch_op.create_index('ix_acct_call_started_at', ['started_at'], unique=False)

    op.create_table('acct_spool_position',
    sa.Column('spool_id', sa.String(length=36), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('spool_id', name=op.f('pk_acct_spool_position')),
    **MYSQL,
    )


def downgrade() -> None:
    op.drop_table('acct_spool_position')
    op.drop_table('acct_call')
    op.drop_table('acct_session')
