"""Whether a connection takes the hand-rendered MariaDB statements or SQLAlchemy's own.

accounting.rawsql, billing.charging_mysql and pools.lease_sql write their SQL
text themselves because PyMySQL binds and decodes every value in Python
(docs/ARCHITECTURE.md). They run on MariaDB through PyMySQL only; any other
driver (mysqlclient, ``mysql+mysqldb://``, which binds in C) and SQLite get
the plain SQLAlchemy statements. ``RADBILL_PLAIN_SQL=1`` in the environment
forces the plain statements on PyMySQL too: the benches compare both paths
with it (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import os
from typing import Any

PLAIN = os.environ.get("RADBILL_PLAIN_SQL", "") == "1"


def hand_rendered(bind: Any) -> bool:
    """``bind``: a Connection, Engine or Session."""
    if hasattr(bind, "get_bind"):
        bind = bind.get_bind()
    dialect = bind.dialect
    return dialect.name == "mysql" and dialect.driver == "pymysql" and not PLAIN
