"""core: nas, plan, subscriber

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

# Binary collation: logins compare exactly, as on SQLite and as the NAS sends them.
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False, comment='IP address or CIDR'),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('vendor', sa.Enum('generic', 'mikrotik', 'cisco', 'juniper', 'accel-ppp', name='vendor', native_enum=False, length=20), nullable=False),
    sa.Column('require_message_authenticator', sa.Boolean(), nullable=False),
    sa.Column('coa_port', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nas')),
    sa.UniqueConstraint('name', name=op.f('uq_nas_name')),
    **MYSQL,
    )
    op.create_table('plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('rate_limit', sa.String(length=64), nullable=True, comment='rx/tx as in 10M/10M'),
    sa.Column('session_timeout', sa.Integer(), nullable=True),
    sa.Column('idle_timeout', sa.Integer(), nullable=True),
    sa.Column('interim_interval', sa.Integer(), nullable=True),
    sa.Column('simultaneous_use', sa.Integer(), nullable=True),
    sa.Column('framed_protocol', sa.String(length=16), nullable=True),
    sa.Column('extra_reply', sa.JSON(), nullable=False, comment='[[attribute, value], ...] added to every Access-Accept'),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan')),
    sa.UniqueConstraint('name', name=op.f('uq_plan_name')),
    **MYSQL,
    )
    op.create_table('subscriber',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=128), nullable=False),
    sa.Column('status', sa.Enum('active', 'blocked', 'disabled', name='subscriber_status', native_enum=False, length=20), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=True, comment='argon2, for PAP'),
    sa.Column('nt_hash', sa.String(length=32), nullable=True, comment='hex MD4 of UTF-16LE, for MS-CHAP'),
    sa.Column('chap_enabled', sa.Boolean(), nullable=False),
    sa.Column('cleartext_password', sa.String(length=255), nullable=True, comment='kept only when chap_enabled'),
    sa.Column('static_ip', sa.String(length=45), nullable=True),
    sa.Column('description', sa.Text().with_variant(sa.String(length=1024), 'mysql'), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_subscriber_plan_id_plan'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriber')),
    sa.UniqueConstraint('login', name=op.f('uq_subscriber_login')),
    sa.UniqueConstraint('static_ip', name=op.f('uq_subscriber_static_ip')),
    **MYSQL,
    )
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriber_plan_id'), ['plan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriber_updated_at'), ['updated_at'], unique=False)



def downgrade() -> None:
    op.drop_table('subscriber')
    op.drop_table('plan')
    op.drop_table('nas')
