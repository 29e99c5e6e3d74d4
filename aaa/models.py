"""aaa's own table: PAP verifiers that survive a restart (Alembic branch ``aaa``, 0700).

A row holds HMAC-SHA256(key, subscriber id, stored credential, password) for the last
password that passed the slow check (argon2, or a legacy hash). The key is not in the
database (``radius.pap_key_file``, aaa.pap_key), so the table alone lets nobody check a
guess; see README "PAP verifiers" for what the key adds. The stored credential is part
of the message, so a changed password makes the row useless by construction; no code
path has to remember to delete it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime, utcnow


class PapVerifier(Base):
    __tablename__ = "pap_verifier"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), comment="hex HMAC-SHA256 under the PAP key")
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
