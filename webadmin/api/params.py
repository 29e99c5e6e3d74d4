"""Parameter parsing shared by endpoints: times given like the CLI's (--since 2h)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core.db.base import utcnow
from core.errors import InvalidInput

RELATIVE = re.compile(r"^(\d{1,9})\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, field: str) -> datetime | None:
    """'2024-03-04', '2024-03-04T10:00', ISO with offset (UTC if none), or an age: '2h', '7d'."""
    if text is None:
        return None
    value = text.strip()
    match = RELATIVE.match(value.lower())
    if match:
        return utcnow() - timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: expected a date/time like 2024-03-04 or "
                           "2024-03-04T10:00, or an age like 30m, 2h, 7d", field=field) from None
    if not 1970 <= parsed.year <= 9000:
        raise InvalidInput(f"{field}: year out of range", field=field)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
