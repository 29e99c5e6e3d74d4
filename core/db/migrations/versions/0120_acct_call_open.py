"""accounting: index acct_call(stopped_at, last_seen_at) for the stale-call sweep

The sweep closes open calls not heard of for ``[accounting] stale_call_minutes``
(``stopped_at IS NULL AND last_seen_at < ...``); without this index that is a scan
of the whole call table every minute.

Revision ID: 0120_acct_call_open
Revises: 0110_acct_session_key
"""

from __future__ import annotations

from alembic import op

revision = '0120_acct_call_open'
down_revision = '0110_acct_session_key'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_acct_call_stopped_at_last_seen_at', 'acct_call',
                    ['stopped_at', 'last_seen_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_acct_call_stopped_at_last_seen_at', table_name='acct_call')
