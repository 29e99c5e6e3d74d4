"""accounting: acct_session.session_key (Acct-Session-Id reuse across NAS reboots)

Rows stored before this revision get their key computed from their own columns, as
accounting.records.session_unique_id does for new packets, so a session open during the
upgrade goes on in the same row. Only open sessions and those closed within the last two
days are keyed (in batches of 1,000): older history never receives packets again, and
keying it would make the upgrade of a large table take hours.

Revision ID: 0110_acct_session_key
Revises: 0100_accounting
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0110_acct_session_key'
down_revision = '0100_accounting'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('acct_session') as batch:
        batch.add_column(sa.Column(
            'session_key', sa.String(length=32), nullable=True,
            comment="md5 of acct_unique's parts: NAS, User-Name, Acct-Session-Id, NAS-Port(-Id)"))
        batch.create_index('ix_acct_session_session_key', ['session_key'], unique=False)
    _backfill(op.get_bind())


def session_key(nas_id: object, identity: object, session_id: object, user: object,
                port_id: object, port: object) -> str:
    """accounting.records.session_unique_id as of this revision (frozen here on purpose)."""
    parts = ("s", nas_id, identity, session_id, user, "" if port_id is None else port_id,
             "" if port is None else port)
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.md5(joined.encode("utf-8", "surrogateescape"),
                       usedforsecurity=False).hexdigest()


def _backfill(conn: sa.Connection) -> None:
    table = sa.table('acct_session', sa.column('id'), sa.column('nas_id'),
                     sa.column('nas_identity'), sa.column('session_id'), sa.column('user_name'),
                     sa.column('nas_port_id'), sa.column('nas_port'), sa.column('stopped_at'),
                     sa.column('session_key'))
    since = (datetime.now(UTC) - timedelta(days=2)).replace(tzinfo=None)
    last = 0
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c.nas_id, table.c.nas_identity, table.c.session_id,
                      table.c.user_name, table.c.nas_port_id, table.c.nas_port)
            .where(table.c.id > last,
                   sa.or_(table.c.stopped_at.is_(None), table.c.stopped_at >= since))
            .order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        conn.execute(sa.update(table).where(table.c.id == sa.bindparam('rid'))
                     .values(session_key=sa.bindparam('key')),
                     [{'rid': r.id, 'key': session_key(
                         r.nas_id, r.nas_identity, r.session_id, r.user_name,
                         r.nas_port_id, r.nas_port)} for r in rows])
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('acct_session') as batch:
        batch.drop_index('ix_acct_session_session_key')
        batch.drop_column('session_key')
