"""pools: pool, pool_range, pool_item, plan_pool, nas_pool_group

Revision ID: 0200_pools
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


revision = '0200_pools'
down_revision = '0001'
branch_labels = ('pools',)
depends_on = None


def upgrade() -> None:
    op.create_table('pool',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('ipv4', 'ipv6', 'pd', 'phone', 'login', name='pool_kind', native_enum=False, length=12), nullable=False),
    sa.Column('prefix_length', sa.Integer(), nullable=True, comment='length of each prefix handed out (ipv6, pd)'),
    sa.Column('ranges', sa.JSON(), nullable=False, comment='ranges as the operator gave them'),
    sa.Column('excluded', sa.JSON(), nullable=False),
    sa.Column('pattern', sa.String(length=128), nullable=True, comment='login pools: user{00000}, x{????}'),
    sa.Column('next_seq', sa.BigInteger(), nullable=False, comment='login pools: next sequential number'),
    sa.Column('size', sa.BigInteger(), nullable=False, comment="identifiers in it (for logins: the pattern's capacity)"),
    sa.Column('nas_group', sa.String(length=64), nullable=True, comment='only NASes of this group use the pool; NULL = all'),
    sa.Column('framed_pool_name', sa.String(length=64), nullable=True, comment="the NAS's name for it in Framed-Pool; NULL = name"),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool')),
    sa.UniqueConstraint('name', name=op.f('uq_pool_name')),
    **MYSQL,
    )
    op.create_table('nas_pool_group',
    sa.Column('nas_id', sa.Integer(), nullable=False),
    sa.Column('group_name', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['nas_id'], ['nas.id'], name=op.f('fk_nas_pool_group_nas_id_nas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('nas_id', name=op.f('pk_nas_pool_group')),
    **MYSQL,
    )
    with op.batch_alter_table('nas_pool_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nas_pool_group_group_name'), ['group_name'], unique=False)

    op.create_table('plan_pool',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False, comment='lower is tried first'),
    sa.Column('nas_allocates', sa.Boolean(), nullable=False, comment='send Framed-Pool and let the NAS pick the address'),
    sa.Column('on_exhausted', sa.Enum('reject', 'framed-pool', name='pool_on_exhausted', native_enum=False, length=12), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_plan_pool_plan_id_plan'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], name=op.f('fk_plan_pool_pool_id_pool'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('plan_id', 'pool_id', name=op.f('pk_plan_pool')),
    **MYSQL,
    )
    with op.batch_alter_table('plan_pool', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_pool_pool_id'), ['pool_id'], unique=False)

    # One row per identifier: its single holder column plus UNIQUE (kind, value)
    # make a double assignment impossible; ix_pool_item_free makes the next free
    # item an index seek.
    op.create_table('pool_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('ipv4', 'ipv6', 'pd', 'phone', 'login', name='pool_kind', native_enum=False, length=12), nullable=False, comment='copy of pool.kind for the unique key'),
    sa.Column('value', sa.String(length=64), nullable=False, comment='canonical text of the identifier'),
    sa.Column('state', sa.Enum('free', 'offered', 'leased', 'static', 'issued', name='pool_item_state', native_enum=False, length=12), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=True, comment='login holding it, or that held it last (kept when free, for stickiness)'),
    sa.Column('device', sa.String(length=64), nullable=True, comment='Calling-Station-Id of the holder'),
    sa.Column('nas_id', sa.Integer(), nullable=True),
    sa.Column('acct_session_id', sa.String(length=64), nullable=True),
    sa.Column('assigned_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('expires_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_released_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], name=op.f('fk_pool_item_pool_id_pool'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_item')),
    sa.UniqueConstraint('kind', 'value', name='uq_pool_item_kind_value'),
    **MYSQL,
    )
    with op.batch_alter_table('pool_item', schema=None) as batch_op:
        batch_op.create_index('ix_pool_item_expiry', ['state', 'expires_at'], unique=False)
        batch_op.create_index('ix_pool_item_free', ['pool_id', 'state', 'last_released_at'], unique=False)
        batch_op.create_index('ix_pool_item_holder', ['holder', 'pool_id'], unique=False)
        batch_op.create_index('ix_pool_item_nas', ['nas_id'], unique=False)

    op.create_table('pool_range',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('family', sa.String(length=8), nullable=False, comment='ip4, ip6 or phone'),
    sa.Column('first_key', sa.String(length=32), nullable=False),
    sa.Column('last_key', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], name=op.f('fk_pool_range_pool_id_pool'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pool_range')),
    **MYSQL,
    )
    with op.batch_alter_table('pool_range', schema=None) as batch_op:
        batch_op.create_index('ix_pool_range_family_first', ['family', 'first_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_pool_range_pool_id'), ['pool_id'], unique=False)


def downgrade() -> None:
    op.drop_table('pool_range')
    op.drop_table('pool_item')
    op.drop_table('plan_pool')
    op.drop_table('nas_pool_group')
    op.drop_table('pool')
