"""Admin operations on NAS clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aaa.admin.rows import delete_row, flush_unique
from aaa.admin.validate import (
    DESCRIPTION_MAX,
    text_field,
    validate_address,
    validate_name,
    validate_port,
    validate_secret,
    validate_vendor,
)
from core.db.models import Nas, Vendor
from core.errors import AlreadyExists, InvalidInput, NotFound


@dataclass(frozen=True)
class NasInfo:
    id: int
    name: str
    address: str
    secret: str = field(repr=False)
    vendor: str
    require_message_authenticator: bool
    coa_port: int
    description: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self, show_secret: bool = False) -> dict[str, Any]:
        """The secret is masked unless asked for, so it does not leak into logs or screens."""
        return {"name": self.name, "address": self.address,
                "secret": self.secret if show_secret else "********",
                "vendor": self.vendor,
                "require_message_authenticator": self.require_message_authenticator,
                "coa_port": self.coa_port, "description": self.description,
                "created_at": self.created_at, "updated_at": self.updated_at}





def _nas_info(row: Nas) -> NasInfo:
    return NasInfo(id=row.id, name=row.name, address=row.address, secret=row.secret,
                   vendor=Vendor(row.vendor).value,
                   require_message_authenticator=row.require_message_authenticator,
                   coa_port=row.coa_port, description=row.description,
                   created_at=row.created_at, updated_at=row.updated_at)


def _nas_row(session: Session, name: str) -> Nas:
    row = session.scalars(select(Nas).where(Nas.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"NAS {name!r} not found")
    return row


def _check_address_free(session: Session, address: str, except_id: int | None = None) -> None:
    other = session.scalars(select(Nas).where(Nas.address == address)).first()
    if other is not None and other.id != except_id:
        raise AlreadyExists(f"address {address} already belongs to NAS {other.name!r}")




def thd_add_nas(session: Session, name: str, address: str, secret: str,
                vendor: str = Vendor.GENERIC.value, coa_port: int = 3799,
                require_message_authenticator: bool = True, description: str = "") -> NasInfo:
    name = validate_name(name, "NAS")
    row = Nas(name=name, address=validate_address(address), secret=validate_secret(secret),
              vendor=validate_vendor(vendor), coa_port=validate_port(coa_port),
              require_message_authenticator=bool(require_message_authenticator),
              description=text_field(description, "description", DESCRIPTION_MAX, allow_empty=True,
                              multiline=True))
    if session.scalars(select(Nas.id).where(Nas.name == name)).first() is not None:
        raise AlreadyExists(f"NAS {name!r} already exists")
    _check_address_free(session, row.address)
    session.add(row)
    flush_unique(session, f"NAS {name!r}")
    return _nas_info(row)


NAS_FIELDS = frozenset({"address", "secret", "vendor", "coa_port",
                        "require_message_authenticator", "description"})


def thd_update_nas(session: Session, name: str, changes: Mapping[str, Any]) -> NasInfo:
    """Change only the fields present in ``changes``."""
    unknown = set(changes) - NAS_FIELDS
    if unknown:
        raise InvalidInput("cannot change NAS field(s): " + ", ".join(sorted(unknown)))
    row = _nas_row(session, name)
    if "address" in changes:
        row.address = validate_address(changes["address"])
        _check_address_free(session, row.address, except_id=row.id)
    if "secret" in changes:
        row.secret = validate_secret(changes["secret"])
    if "vendor" in changes:
        row.vendor = validate_vendor(changes["vendor"])
    if "coa_port" in changes:
        row.coa_port = validate_port(changes["coa_port"])
    if "require_message_authenticator" in changes:
        row.require_message_authenticator = bool(changes["require_message_authenticator"])
    if "description" in changes:
        row.description = text_field(changes["description"], "description", DESCRIPTION_MAX,
                                allow_empty=True, multiline=True)
    session.flush()
    return _nas_info(row)


def thd_list_nas(session: Session) -> list[NasInfo]:
    return [_nas_info(r) for r in session.scalars(select(Nas).order_by(Nas.name))]


def thd_get_nas(session: Session, name: str) -> NasInfo:
    return _nas_info(_nas_row(session, name))




def thd_remove_nas(session: Session, name: str) -> NasInfo:
    row = _nas_row(session, name)
    info = _nas_info(row)
    delete_row(session, row, f"NAS {name!r}")
    return info
