"""billing: statements, invoices with per-issuer numbering, documents; ledger (account, created_at)

Revision ID: 0321_billing_statements
Revises: 0320_billing_cards
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db.base

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


revision = '0321_billing_statements'
down_revision = '0320_billing_cards'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('invoice_sequence',
    sa.Column('issuer', sa.String(length=64), nullable=False),
    sa.Column('last_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('issuer', name=op.f('pk_invoice_sequence')),
    **MYSQL,
    )
    op.create_table('document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('replaces_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('html_path', sa.String(length=255), nullable=False, comment='relative to [documents] store'),
    sa.Column('html_sha256', sa.String(length=64), nullable=False),
    sa.Column('pdf_path', sa.String(length=255), nullable=True),
    sa.Column('pdf_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', core.db.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_document_account_id_billing_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['replaces_id'], ['document.id'], name=op.f('fk_document_replaces_id_document')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document')),
    **MYSQL,
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.create_index('ix_document_account_id_id', ['account_id', 'id'], unique=False)

    op.create_table('statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False, comment='YYYY-MM in [statements] time_zone'),
    sa.Column('period_start', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('period_end', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('opening', sa.BigInteger(), nullable=False),
    sa.Column('closing', sa.BigInteger(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False, comment='service -> [entries, signed minor units]'),
    sa.Column('issued_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_statement_account_id_billing_account'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement')),
    sa.UniqueConstraint('account_id', 'period', name=op.f('uq_statement_account_id_period')),
    **MYSQL,
    )
    with op.batch_alter_table('statement', schema=None) as batch_op:
        batch_op.create_index('ix_statement_document_id', ['document_id'], unique=False)
        batch_op.create_index('ix_statement_period', ['period'], unique=False)

    op.create_table('invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=64), nullable=False),
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.Column('number_text', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('issued_at', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('due_date', core.db.base.UTCDateTime(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('vat_rate', sa.String(length=8), nullable=False, comment='percent, e.g. 20 or 7.7'),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('tax', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['billing_account.id'], name=op.f('fk_invoice_account_id_billing_account'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['statement_id'], ['statement.id'], name=op.f('fk_invoice_statement_id_statement'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice')),
    sa.UniqueConstraint('issuer', 'number', name=op.f('uq_invoice_issuer_number')),
    sa.UniqueConstraint('statement_id', name=op.f('uq_invoice_statement_id')),
    **MYSQL,
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_issued_at', ['issued_at'], unique=False)

    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_account_id_created_at', ['account_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entry_account_id_created_at')

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_issued_at')

    op.drop_table('invoice')
    with op.batch_alter_table('statement', schema=None) as batch_op:
        batch_op.drop_index('ix_statement_period')
        batch_op.drop_index('ix_statement_document_id')

    op.drop_table('statement')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_index('ix_document_account_id_id')

    op.drop_table('document')
    op.drop_table('invoice_sequence')
