"""radbill cluster status: the nodes sharing this database, and which one runs each singleton."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from core.cluster.status import thd_cluster_status
from core.db.base import utcnow
from radbill.cli.context import CliContext
from radbill.cli.output import add_out_argument, emit_list, emit_object


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from radbill.cli import common_parent

    cluster = sub.add_parser("cluster", help="nodes and singleton leadership",
                             parents=[common_parent()])
    csub = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    status = csub.add_parser("status", help="nodes, their last heartbeat and who runs what",
                             parents=[common_parent()])
    add_out_argument(status)
    status.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    ctx = CliContext(args)
    try:
        st = ctx.run(thd_cluster_status, utcnow(), ctx.config.cluster.lease_seconds)
    finally:
        ctx.close()
    if args.out != "text":
        emit_object(asdict(st), args.out, "cluster")
        return 0
    nodes: list[dict[str, Any]] = [
        {"node": n.node, "alive": n.alive, "workers": len(n.members),
         "heartbeat_at": n.heartbeat_at, "pids": ",".join(str(m.pid) for m in n.members)}
        for n in st.nodes]
    emit_list(nodes, ["node", "alive", "workers", "heartbeat_at", "pids"], "text", "nodes",
              "node")
    print(file=sys.stdout)
    singles = [{"singleton": s.name, "node": s.node, "member": s.member,
                "expires_at": s.expires_at, "generation": s.generation} for s in st.singletons]
    emit_list(singles, ["singleton", "node", "member", "expires_at", "generation"], "text",
              "singletons", "singleton")
    return 0
