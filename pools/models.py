"""Pool tables: pools, their declared ranges, one row per identifier, plan and NAS-group links.

One row per identifier (``pool_item``) carries its own state and holder, so an
identifier can never have two holders: there is only one holder column. The
UNIQUE (kind, value) constraint makes every identifier exist once across all
pools of a kind, so two pools can never hand out the same address either,
whatever the code above does. The ``free`` index (pool, state,
last_released_at) makes "the least recently used free item" a single index
seek, whatever the pool's size or fill level.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, UTCDateTime, utcnow

# Never-used items sort first in the free index; a real value, not NULL, so
# SQLite and MariaDB order and index it the same way.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class PoolKind(enum.StrEnum):
    IPV4 = "ipv4"  # Framed-IP-Address
    IPV6 = "ipv6"  # Framed-IPv6-Prefix (RFC 3162)
    PD = "pd"  # Delegated-IPv6-Prefix (RFC 4818)
    PHONE = "phone"  # E.164 numbers (DIDs)
    LOGIN = "login"  # generated logins


LEASED_KINDS = frozenset({PoolKind.IPV4, PoolKind.IPV6, PoolKind.PD})


class ItemState(enum.StrEnum):
    FREE = "free"
    OFFERED = "offered"  # sent in an Access-Accept, waiting for Accounting-Start
    LEASED = "leased"  # confirmed by accounting, extended by Interim-Update
    STATIC = "static"  # reserved for one subscriber, never handed to anyone else
    ISSUED = "issued"  # a generated login handed out


LIVE_STATES = (ItemState.OFFERED, ItemState.LEASED)


class OnExhausted(enum.StrEnum):
    REJECT = "reject"
    FRAMED_POOL = "framed-pool"  # accept with Framed-Pool and let the NAS allocate


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=12,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Pool(Base):
    __tablename__ = "pool"
    __table_args__ = MYSQL

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[PoolKind] = mapped_column(_enum(PoolKind, "pool_kind"))
    prefix_length: Mapped[int | None] = mapped_column(
        Integer, default=None, comment="length of each prefix handed out (ipv6, pd)")
    ranges: Mapped[list[str]] = mapped_column(JSON, default=list,
                                              comment="ranges as the operator gave them")
    excluded: Mapped[list[str]] = mapped_column(JSON, default=list)
    pattern: Mapped[str | None] = mapped_column(String(128), default=None,
                                                comment="login pools: user{00000}, x{????}")
    next_seq: Mapped[int] = mapped_column(BigInteger, default=1,
                                          comment="login pools: next sequential number")
    size: Mapped[int] = mapped_column(
        BigInteger, default=0, comment="identifiers in it (for logins: the pattern's capacity)")
    nas_group: Mapped[str | None] = mapped_column(
        String(64), default=None, comment="only NASes of this group use the pool; NULL = all")
    framed_pool_name: Mapped[str | None] = mapped_column(
        String(64), default=None, comment="the NAS's name for it in Framed-Pool; NULL = name")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PoolRange(Base):
    """The declared space of a pool as [first, last] keys, so overlaps are one indexed query.

    Keys are 32 zero-padded hex digits of the integer value (an IPv4 or IPv6
    address, or an E.164 number), which sort as the numbers do.
    """

    __tablename__ = "pool_range"
    __table_args__ = (Index("ix_pool_range_family_first", "family", "first_key"), MYSQL)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id", ondelete="CASCADE"), index=True)
    family: Mapped[str] = mapped_column(String(8), comment="ip4, ip6 or phone")
    first_key: Mapped[str] = mapped_column(String(32))
    last_key: Mapped[str] = mapped_column(String(32))


class PoolItem(Base):
    __tablename__ = "pool_item"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_pool_item_kind_value"),
        Index("ix_pool_item_free", "pool_id", "state", "last_released_at"),
        Index("ix_pool_item_holder", "holder", "pool_id"),
        Index("ix_pool_item_expiry", "state", "expires_at"),
        Index("ix_pool_item_nas", "nas_id"),
        MYSQL,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id", ondelete="CASCADE"))
    kind: Mapped[PoolKind] = mapped_column(_enum(PoolKind, "pool_kind"),
                                           comment="copy of pool.kind for the unique key")
    value: Mapped[str] = mapped_column(String(64), comment="canonical text of the identifier")
    state: Mapped[ItemState] = mapped_column(_enum(ItemState, "pool_item_state"),
                                             default=ItemState.FREE)
    holder: Mapped[str | None] = mapped_column(
        String(128), default=None,
        comment="login holding it, or that held it last (kept when free, for stickiness)")
    device: Mapped[str | None] = mapped_column(String(64), default=None,
                                               comment="Calling-Station-Id of the holder")
    # No foreign key: the hot path would lock the nas row on every allocation.
    nas_id: Mapped[int | None] = mapped_column(Integer, default=None)
    acct_session_id: Mapped[str | None] = mapped_column(String(64), default=None)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_released_at: Mapped[datetime] = mapped_column(UTCDateTime, default=NEVER)


class PlanPool(Base):
    """Which pools a plan draws from, in which order, and how."""

    __tablename__ = "plan_pool"
    __table_args__ = MYSQL

    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id", ondelete="CASCADE"),
                                         primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pool.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)
    priority: Mapped[int] = mapped_column(Integer, default=100, comment="lower is tried first")
    nas_allocates: Mapped[bool] = mapped_column(
        Boolean, default=False, comment="send Framed-Pool and let the NAS pick the address")
    on_exhausted: Mapped[OnExhausted] = mapped_column(_enum(OnExhausted, "pool_on_exhausted"),
                                                      default=OnExhausted.REJECT)


class NasPoolGroup(Base):
    """A NAS's pool group; pools with a nas_group serve only the NASes of that group."""

    __tablename__ = "nas_pool_group"
    __table_args__ = MYSQL

    nas_id: Mapped[int] = mapped_column(ForeignKey("nas.id", ondelete="CASCADE"),
                                        primary_key=True)
    group_name: Mapped[str] = mapped_column(String(64), index=True)
