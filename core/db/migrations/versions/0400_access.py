"""access: reseller (+ subscriber/plan reseller_id), operator, api_token, api_session, audit_entry

Revision ID: 0400_access
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0400_access'
down_revision = '0001'
branch_labels = ('access',)
depends_on = None


def upgrade() -> None:
    op.create_table('reseller',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reseller')),
    sa.UniqueConstraint('name', name=op.f('uq_reseller_name')),
    **MYSQL)
    with op.batch_alter_table('subscriber') as b:
        b.add_column(sa.Column('reseller_id', sa.Integer(), nullable=True, comment="the reseller owning this subscriber; NULL = the operator's"))
        b.create_foreign_key(op.f('fk_subscriber_reseller_id_reseller'), 'reseller', ['reseller_id'], ['id'], ondelete='RESTRICT')
        b.create_index(op.f('ix_subscriber_reseller_id'), ['reseller_id'])
    with op.batch_alter_table('plan') as b:
        b.add_column(sa.Column('reseller_id', sa.Integer(), nullable=True, comment="a reseller's own plan; NULL = the operator's"))
        b.create_foreign_key(op.f('fk_plan_reseller_id_reseller'), 'reseller', ['reseller_id'], ['id'], ondelete='RESTRICT')
        b.create_index(op.f('ix_plan_reseller_id'), ['reseller_id'])
    op.create_table('operator',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('reseller_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('last_login_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['reseller_id'], ['reseller.id'], name=op.f('fk_operator_reseller_id_reseller'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator')),
    sa.UniqueConstraint('login', name=op.f('uq_operator_login')),
    **MYSQL)
    op.create_index(op.f('ix_operator_reseller_id'), 'operator', ['reseller_id'])
    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('reseller_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', core.db.base.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', core.db.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['reseller_id'], ['reseller.id'], name=op.f('fk_api_token_reseller_id_reseller'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('name', name=op.f('uq_api_token_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash')),
    **MYSQL)
    op.create_index(op.f('ix_api_token_reseller_id'), 'api_token', ['reseller_id'])
    op.create_table('api_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('via_token_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', core.db.base.UTCDateTime(), nullable=False, comment='absolute end'),
    sa.Column('last_seen_at', core.db.base.UTCDateTime(), nullable=False, comment='for the idle timeout'),
    sa.Column('ended_at', core.db.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operator.id'], name=op.f('fk_api_session_operator_id_operator'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], name=op.f('fk_api_session_subscriber_id_subscriber'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['via_token_id'], ['api_token.id'], name=op.f('fk_api_session_via_token_id_api_token'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_session_token_hash')),
    **MYSQL)
    op.create_index(op.f('ix_api_session_operator_id'), 'api_session', ['operator_id'])
    op.create_index(op.f('ix_api_session_subscriber_id'), 'api_session', ['subscriber_id'])
    op.create_index(op.f('ix_api_session_via_token_id'), 'api_session', ['via_token_id'])
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=160), nullable=False, comment='operator:LOGIN, token:NAME, cli:USER, ...'),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_key', sa.String(length=255), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry')),
    **MYSQL)
    op.create_index(op.f('ix_audit_entry_at'), 'audit_entry', ['at'])
    op.create_index(op.f('ix_audit_entry_actor'), 'audit_entry', ['actor'])
    op.create_index('ix_audit_entry_object_type_object_key', 'audit_entry', ['object_type', 'object_key'])


def downgrade() -> None:
    op.drop_table('audit_entry')
    op.drop_table('api_session')
    op.drop_table('api_token')
    op.drop_table('operator')
    with op.batch_alter_table('plan') as b:
        b.drop_constraint(op.f('fk_plan_reseller_id_reseller'), type_='foreignkey')
        b.drop_index(op.f('ix_plan_reseller_id'))
        b.drop_column('reseller_id')
    with op.batch_alter_table('subscriber') as b:
        b.drop_constraint(op.f('fk_subscriber_reseller_id_reseller'), type_='foreignkey')
        b.drop_index(op.f('ix_subscriber_reseller_id'))
        b.drop_column('reseller_id')
    op.drop_table('reseller')
