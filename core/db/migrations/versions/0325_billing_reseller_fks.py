"""billing: foreign keys from the reseller money tables to reseller

``reseller_account`` (its balance cache: goes with the reseller), ``reseller_entry``
(its ledger: a reseller with money history cannot be removed) and ``card_batch``
(cards are money: the same) now reference ``reseller.id``. ``reseller`` is created by
the access branch (0400_access), so this revision depends on it. Rows that name a
reseller that does not exist stop the upgrade with their ids (fix or remove them
first); nothing is deleted silently.

Revision ID: 0325_billing_reseller_fks
Revises: 0324_billing_pool_alert
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0325_billing_reseller_fks'
down_revision = '0324_billing_pool_alert'
branch_labels = None
depends_on = '0400_access'

FKS = [  # (table, ondelete)
    ('reseller_account', 'CASCADE'),
    ('reseller_entry', 'RESTRICT'),
    ('card_batch', 'RESTRICT'),
]


def _orphans(table: str) -> list[int]:
    rows = op.get_bind().execute(sa.text(
        f"SELECT DISTINCT t.reseller_id FROM {table} t LEFT JOIN reseller r "
        f"ON r.id = t.reseller_id WHERE t.reseller_id IS NOT NULL AND r.id IS NULL"))
    return sorted(int(r[0]) for r in rows)


def upgrade() -> None:
    problems = [f"{table}: reseller id(s) {', '.join(map(str, ids))}"
                for table, _ in FKS if (ids := _orphans(table))]
    if problems:
        raise RuntimeError("rows refer to resellers that do not exist (" + "; ".join(problems)
                           + "); fix or remove them, then run radbill db upgrade again")
    for table, ondelete in FKS:
        with op.batch_alter_table(table) as batch:
            if table == 'reseller_account':
                batch.alter_column('reseller_id', existing_type=sa.Integer(),
                                   existing_nullable=False, comment='reseller.id',
                                   existing_comment='reseller.id (no FK: another branch)')
            batch.create_foreign_key(op.f(f'fk_{table}_reseller_id_reseller'), 'reseller',
                                     ['reseller_id'], ['id'], ondelete=ondelete)


def downgrade() -> None:
    for table, _ in reversed(FKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f'fk_{table}_reseller_id_reseller'), type_='foreignkey')
            if table == 'reseller_account':
                batch.alter_column('reseller_id', existing_type=sa.Integer(),
                                   existing_nullable=False,
                                   comment='reseller.id (no FK: another branch)',
                                   existing_comment='reseller.id')
