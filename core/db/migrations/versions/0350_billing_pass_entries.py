"""billing: one ledger entry per account per charging transaction; usage_delta keeps its cost

usage_delta.charged is what the delta cost, usage_delta.ledger_batch names the
ledger entry that carries it (usage:<account id>:<ledger_batch>, the sum of the
account's deltas in that transaction). Entries written before this revision keep
their per-delta keys (usage:<delta id>); their deltas get charged filled in from
them and ledger_batch NULL.

Revision ID: 0350_billing_pass_entries
Revises: 0321_billing_statements
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0350_billing_pass_entries'
down_revision = '0321_billing_statements'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usage_delta') as batch:
        batch.add_column(sa.Column('charged', sa.BigInteger(), server_default='0',
                                   nullable=False))
        batch.add_column(sa.Column('ledger_batch', sa.BigInteger(), nullable=True))
    # Deltas charged before: one entry each, keyed usage:<delta id>.
    op.execute("UPDATE usage_delta SET charged = -(SELECT amount FROM ledger_entry e "
               "WHERE e.idempotency_key = 'usage:' || usage_delta.id) WHERE rated = 1 AND "
               "EXISTS (SELECT 1 FROM ledger_entry e WHERE e.idempotency_key = 'usage:' || "
               "usage_delta.id)" if op.get_bind().dialect.name == "sqlite" else
               "UPDATE usage_delta d JOIN ledger_entry e ON e.idempotency_key = "
               "CONCAT('usage:', d.id) SET d.charged = -e.amount WHERE d.rated = 1")


def downgrade() -> None:
    with op.batch_alter_table('usage_delta') as batch:
        batch.drop_column('ledger_batch')
        batch.drop_column('charged')
