"""What the generic admin templates draw: tables of cells, form fields, pagers, actions.

Handlers turn service-layer dataclasses into these (text already formatted
for the visitor's locale), so one list template, one form template and one
confirmation template serve every object; autoescaping does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from webadmin.pages.site import PageRequest, with_query


@dataclass(frozen=True)
class Cell:
    text: Any
    href: str = ""
    cls: str = ""
    num: bool = False


@dataclass(frozen=True)
class Column:
    label: str
    num: bool = False


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    id: str = "rows"


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str = "text"
    choices: Sequence[tuple[str, str]] | None = None
    hint: str = ""
    rows: int = 0
    required: bool = False


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    cls: str = "button secondary"


@dataclass
class Paging:
    """Offset paging that fetched one row more than shown, to know whether a next page exists."""

    page: int
    size: int
    first: int = 0
    last: int = 0
    prev_href: str = ""
    next_href: str = ""

    @classmethod
    def of(cls, req: PageRequest, size: int) -> Paging:
        return cls(req.int_arg("page", 1, lo=1, hi=100_000), size)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def done(self, req: PageRequest, base: str, got: int) -> Paging:
        self.first = self.offset + 1 if got else 0
        self.last = self.offset + min(got, self.size)
        query = {k: v for k, v in req.query.items() if k != "page"}
        if self.page > 1:
            self.prev_href = with_query(base, {**query, "page": self.page - 1})
        if got > self.size:
            self.next_href = with_query(base, {**query, "page": self.page + 1})
        return self


def yes_no(_: Any, value: bool) -> str:
    return _("yes") if value else _("no")
