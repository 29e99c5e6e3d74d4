"""aaa: pap_verifier (PAP logins after a restart without argon2, issue 12)

Revision ID: 0700_pap_verifier
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0700_pap_verifier'
down_revision = '0001'
branch_labels = ('aaa',)
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pap_verifier',
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=64), nullable=False,
                  comment='hex HMAC-SHA256 under the PAP key'),
        sa.Column('verified_at', core.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'],
                                name=op.f('fk_pap_verifier_subscriber_id_subscriber'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('subscriber_id', name=op.f('pk_pap_verifier')),
        **MYSQL)


def downgrade() -> None:
    op.drop_table('pap_verifier')
