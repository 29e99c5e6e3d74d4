"""billing: index charging_session(cut_result) for restoring captive sessions after a payment

Revision ID: 0326_billing_cut_result_index
Revises: 0325_billing_reseller_fks
"""

from __future__ import annotations

from alembic import op

revision = '0326_billing_cut_result_index'
down_revision = '0325_billing_reseller_fks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_charging_session_cut_result', 'charging_session', ['cut_result'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_charging_session_cut_result', table_name='charging_session')
