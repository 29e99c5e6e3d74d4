"""radbill pool ...: managed pools of addresses, prefixes, phone numbers and logins."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from pools.errors import BadRange
from pools.manage import NewPool, PlanLink
from pools.models import ItemState, OnExhausted, PoolKind
from pools.ranges import parse_pool, read_range_file, split_tokens
from radbill.cli.context import CliContext, run_as
from radbill.cli.output import add_out_argument, emit_list, emit_object
from webadmin.service import catalog

PROGRESS_FROM = 5000  # items; smaller pools are added without a bar


def register(sub: argparse._SubParsersAction) -> None:
    from radbill.cli import common_parent

    common = [common_parent()]
    pool = sub.add_parser("pool", help="address, prefix, phone number and login pools",
                          parents=common)
    psub = pool.add_subparsers(dest="pool_command", metavar="ACTION", required=True)

    add = psub.add_parser("add", help="create a pool", parents=common)
    add.add_argument("name")
    add.add_argument("--kind", required=True, choices=[k.value for k in PoolKind])
    add.add_argument("--range", dest="ranges", action="append", default=[], metavar="RANGE",
                     help="CIDR, A-B or a single value (repeat or comma-separate); for a "
                          "login pool, the pattern")
    add.add_argument("--file", dest="files", action="append", default=[], metavar="FILE",
                     help="ranges, one or more per line ('#' comments)")
    add.add_argument("--exclude", action="append", default=[], metavar="RANGE",
                     help="addresses, CIDRs, A-B ranges or numbers left out")
    add.add_argument("--prefix-length", type=int, default=None, metavar="N",
                     help="length of each prefix handed out (ipv6, pd)")
    add.add_argument("--pattern", default=None,
                     help="login pools: user{00000}, pin{######} or vpn-{??????}")
    add.add_argument("--nas-group", default=None, help="serve only NASes of this pool group")
    add.add_argument("--framed-pool-name", default=None,
                     help="the NAS's own name for the pool, sent in Framed-Pool")
    add.add_argument("--description", default="")
    add_out_argument(add)
    add.set_defaults(func=cmd_add)

    lst = psub.add_parser("list", help="pools with size, used, free and percent",
                          parents=common)
    add_out_argument(lst)
    lst.set_defaults(func=cmd_list)

    show = psub.add_parser("show", help="one pool in detail", parents=common)
    show.add_argument("name")
    add_out_argument(show)
    show.set_defaults(func=cmd_show)

    st = psub.add_parser("set", help="change a pool's NAS group, Framed-Pool name, description",
                         parents=common)
    st.add_argument("name")
    st.add_argument("--nas-group", default=None, help="'' serves every NAS again")
    st.add_argument("--framed-pool-name", default=None, help="'' sends the pool's own name")
    st.add_argument("--description", default=None)
    add_out_argument(st)
    st.set_defaults(func=cmd_set)

    rm = psub.add_parser("remove", help="delete a pool without live leases", parents=common)
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    leases = psub.add_parser("leases", help="offered, leased, static and issued items",
                             parents=common)
    leases.add_argument("name")
    leases.add_argument("--state", action="append", default=None,
                        choices=[s.value for s in ItemState if s is not ItemState.FREE])
    leases.add_argument("--limit", type=int, default=None)
    add_out_argument(leases)
    leases.set_defaults(func=cmd_leases)

    assign = psub.add_parser("assign", help="reserve an identifier for a subscriber for good",
                             parents=common)
    assign.add_argument("pool")
    assign.add_argument("login")
    assign.add_argument("value", nargs="?", default=None,
                        help="the identifier (default: the one it had, else the LRU free one)")
    add_out_argument(assign)
    assign.set_defaults(func=cmd_assign)

    release = psub.add_parser("release", help="end static assignments (by login or value)",
                              parents=common)
    release.add_argument("pool")
    release.add_argument("who", metavar="LOGIN|VALUE")
    release.set_defaults(func=cmd_release)

    attach = psub.add_parser("attach", help="let a plan draw from a pool", parents=common)
    attach.add_argument("plan")
    attach.add_argument("pool")
    attach.add_argument("--priority", type=int, default=100, help="lower is tried first")
    attach.add_argument("--nas-allocates", action="store_true",
                        help="send Framed-Pool and let the NAS pick the address")
    attach.add_argument("--on-exhausted", choices=[o.value for o in OnExhausted],
                        default=OnExhausted.REJECT.value,
                        help="when full: reject, or accept with Framed-Pool")
    attach.set_defaults(func=cmd_attach)

    detach = psub.add_parser("detach", help="stop a plan drawing from a pool", parents=common)
    detach.add_argument("plan")
    detach.add_argument("pool")
    detach.set_defaults(func=cmd_detach)

    group = psub.add_parser("nas-group", help="put a NAS in a pool group (or list the groups)",
                            parents=common)
    group.add_argument("nas", nargs="?", default=None)
    group.add_argument("group", nargs="?", default=None, help="'' takes the NAS out")
    group.set_defaults(func=cmd_nas_group)


def add_pool_argument(parser: argparse.ArgumentParser) -> None:
    """``--pool P`` (repeatable) for ``radbill plan add|set``."""
    parser.add_argument("--pool", dest="pools", action="append", default=None, metavar="POOL",
                        help="a pool the plan draws addresses from (repeat for more; "
                             "on 'set' the list replaces the plan's pools, '' clears it)")


def _run(args: argparse.Namespace, fn: Any, *a: Any, **kw: Any) -> Any:
    """A service-layer operation (webadmin.service.catalog) as the CLI's caller."""
    return run_as(args, fn, *a, **kw)


def _new_pool(args: argparse.Namespace) -> NewPool:
    kind = PoolKind(args.kind)
    if kind is PoolKind.LOGIN:
        pattern = args.pattern
        if pattern is None and len(args.ranges) == 1:
            pattern = args.ranges[0]
        elif args.ranges:
            raise BadRange("login pools take one pattern (--pattern or --range)")
        if args.files:
            raise BadRange("login pools take --pattern, not --file")
        return NewPool(args.name, kind, exclude=tuple(args.exclude),
                       prefix_length=args.prefix_length, pattern=pattern,
                       nas_group=args.nas_group, framed_pool_name=args.framed_pool_name,
                       description=args.description)
    ranges: list[str | tuple[str, str]] = list(split_tokens(args.ranges))
    for path in args.files:
        ranges.extend(read_range_file(path))
    return NewPool(args.name, kind, ranges=tuple(ranges),
                   exclude=tuple(split_tokens(args.exclude)), prefix_length=args.prefix_length,
                   pattern=args.pattern, nas_group=args.nas_group,
                   framed_pool_name=args.framed_pool_name, description=args.description)


def cmd_add(args: argparse.Namespace) -> int:
    new = _new_pool(args)
    total = 0
    if new.kind is not PoolKind.LOGIN:
        # parsed here too (it is cheap) for the bar's total and to fail before connecting
        total = parse_pool(new.kind, new.ranges, new.exclude, new.prefix_length).upper_bound
    ctx = CliContext(args)
    try:
        with tqdm(total=total, unit="item", file=sys.stderr, desc=f"pool {new.name}",
                  disable=total < PROGRESS_FROM, leave=False) as bar:
            done = [0]

            def progress(n: int) -> None:
                bar.update(n - done[0])
                done[0] = n

            usage = ctx.run_as(catalog.thd_add_pool, new, progress)
    finally:
        ctx.close()
    if args.out == "text":
        print(f"pool {usage.name} added: {usage.kind.value}, {usage.size} identifiers")
    else:
        emit_object(usage.as_dict(), args.out, "pool")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        warn = ctx.config.pools.warn_utilization
        pools = ctx.run_as(catalog.thd_list_pools, warn)
    finally:
        ctx.close()
    if args.out == "text":
        rows = [{"name": u.name, "kind": u.kind.value, "size": u.size, "used": u.used,
                 "free": u.free, "percent": f"{u.percent:.1f}%",
                 "warn": f"over {warn}%" if u.warning else ""} for u in pools]
        emit_list(rows, ["name", "kind", "size", "used", "free", "percent", "warn"], "text",
                  "pools", "pool")
    else:
        emit_list([u.as_dict() for u in pools], [], args.out, "pools", "pool")
    return 0


def _link(link: PlanLink) -> dict[str, Any]:
    return {"plan": link.plan, "pool": link.pool, "priority": link.priority,
            "nas_allocates": link.nas_allocates, "on_exhausted": link.on_exhausted.value}


def cmd_show(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        d = ctx.run_as(catalog.thd_show_pool, args.name, ctx.config.pools.warn_utilization)
    finally:
        ctx.close()
    obj: dict[str, Any] = d.usage.as_dict()
    obj.update({"prefix_length": d.prefix_length, "ranges": list(d.ranges),
                "excluded": list(d.excluded), "pattern": d.pattern, "nas_group": d.nas_group,
                "framed_pool_name": d.framed_pool_name, "description": d.description,
                "created_at": d.created_at})
    if args.out == "text":
        obj["percent"] = f"{d.usage.percent:.1f}%"
        obj["plans"] = [f"{p.plan} (priority {p.priority}"
                        + (", NAS allocates" if p.nas_allocates else "")
                        + (", Framed-Pool when full" if p.on_exhausted is
                           OnExhausted.FRAMED_POOL else "") + ")" for p in d.plans]
    else:
        obj["plans"] = [_link(p) for p in d.plans]
    emit_object(obj, args.out, "pool")
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    d = _run(args, catalog.thd_set_pool, args.name, nas_group=args.nas_group,
             framed_pool_name=args.framed_pool_name, description=args.description)
    print(f"pool {d.usage.name}: nas group {d.nas_group or '-'}, "
          f"framed pool name {d.framed_pool_name or d.usage.name}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    removed = _run(args, catalog.thd_remove_pool, args.name)
    print(f"pool {args.name} removed ({removed} identifiers)")
    return 0


def cmd_leases(args: argparse.Namespace) -> int:
    states = [ItemState(s) for s in args.state] if args.state else None
    items = _run(args, catalog.thd_list_leases, args.name, states, args.limit)
    emit_list([i.as_dict() for i in items],
              ["value", "state", "holder", "device", "nas", "session", "expires_at"],
              args.out, "leases", "lease")
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    item = _run(args, catalog.thd_assign_static, args.pool, args.login, args.value)
    if args.out == "text":
        print(f"{item.value} of pool {item.pool} is assigned to {item.holder}")
    else:
        emit_object(item.as_dict(), args.out, "assignment")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    freed = _run(args, catalog.thd_release_static, args.pool, args.who)
    for item in freed:
        print(f"{item.value} of pool {item.pool} released from {item.holder}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    link = _run(args, catalog.thd_attach, args.plan, args.pool, priority=args.priority,
                nas_allocates=args.nas_allocates, on_exhausted=OnExhausted(args.on_exhausted))
    print(f"plan {link.plan} draws from pool {link.pool} (priority {link.priority}"
          + (", NAS allocates" if link.nas_allocates else "")
          + (", Framed-Pool when full" if link.on_exhausted is OnExhausted.FRAMED_POOL
             else "") + ")")
    return 0


def cmd_detach(args: argparse.Namespace) -> int:
    _run(args, catalog.thd_detach, args.plan, args.pool)
    print(f"plan {args.plan} no longer draws from pool {args.pool}")
    return 0


def cmd_nas_group(args: argparse.Namespace) -> int:
    if args.nas is None:
        for nas, group in _run(args, catalog.thd_nas_groups):
            print(f"{group}\t{nas}")
        return 0
    if args.group is None:
        groups = dict(_run(args, catalog.thd_nas_groups))
        print(groups.get(args.nas, "-"))
        return 0
    group = _run(args, catalog.thd_set_nas_group, args.nas, args.group)
    print(f"NAS {args.nas} is in pool group {group}" if group
          else f"NAS {args.nas} is in no pool group")
    return 0
