"""Helpers shared by the pools tests: demo rows, and the CLI with the pool commands registered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import Nas, Plan, Subscriber
from core.db.pool import DBPool
from pools.manage import NewPool, thd_add_pool
from pools.models import ItemState, PoolItem, PoolKind

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def add_pool(dbpool: DBPool, name: str, kind: PoolKind, *ranges: str,
             prefix_length: int | None = None, exclude: Sequence[str] = (),
             pattern: str | None = None, nas_group: str | None = None) -> None:
    dbpool.run_sync(thd_add_pool, NewPool(name, kind, ranges=tuple(ranges),
                                          exclude=tuple(exclude), prefix_length=prefix_length,
                                          pattern=pattern, nas_group=nas_group))


def thd_demo_rows(session: Session, logins: Sequence[str] = ("alice", "bob", "carol"),
                  plan: str = "home", nases: Sequence[str] = ("nas1", "nas2")
                  ) -> dict[str, int]:
    """A plan, NASes and subscribers on that plan; returns their ids by name."""
    ids: dict[str, int] = {}
    p = Plan(name=plan)
    session.add(p)
    session.flush()
    ids[plan] = p.id
    for i, name in enumerate(nases):
        n = Nas(name=name, address=f"127.0.0.{i + 1}", secret="testing123",
                require_message_authenticator=False)
        session.add(n)
        session.flush()
        ids[name] = n.id
    for login in logins:
        s = Subscriber(login=login, plan_id=p.id)
        session.add(s)
        session.flush()
        ids[login] = s.id
    return ids


def thd_states(session: Session, pool_name: str | None = None) -> dict[str, tuple[str, str | None]]:
    """value -> (state, holder) for every item (of one pool)."""
    from pools.models import Pool

    query = select(PoolItem.value, PoolItem.state, PoolItem.holder)
    if pool_name is not None:
        query = query.join(Pool, Pool.id == PoolItem.pool_id).where(Pool.name == pool_name)
    return {r.value: (ItemState(r.state).value, r.holder) for r in session.execute(query)}


def thd_count(session: Session, state: ItemState) -> int:
    return int(session.scalar(select(func.count()).select_from(PoolItem)
                              .where(PoolItem.state == state)) or 0)


def cli_main(argv: Sequence[str]) -> int:
    """radbill's CLI, in-process."""
    import radbill.cli as cli

    return cli.main(list(argv))
