"""Reports (filled in below): revenue, traffic, calls, top subscribers, pools; CSV download."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webadmin.admin.site import AdminSite


def install(site: AdminSite) -> None:
    return None
