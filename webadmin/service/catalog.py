"""NAS clients, plans with their prices, pools and leases, through the service layer.

Each operation checks its permission (and a reseller's scope for plans), calls
the owning package's ``thd_*`` function, and audits changes in the same
transaction. NAS secrets never reach the audit log (masked by ``audit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from aaa.admin import nas as admin_nas
from aaa.admin import plans as admin_plans
from billing import tariff_store
from billing.tariffs import Tariff, TariffSpec, VoiceRate
from core.errors import InvalidInput
from pools import manage as pools
from webadmin.roles import Caller
from webadmin.service import audit, scope

# -- NAS ------------------------------------------------------------------------------------


def thd_add_nas(session: Session, caller: Caller, name: str, address: str, secret: str,
                vendor: str = "generic", coa_port: int = 3799,
                require_message_authenticator: bool = True,
                description: str = "") -> admin_nas.NasInfo:
    return audit.changed(session, caller, "nas.write", "nas.add", "nas", name,
                         admin_nas.thd_add_nas, name, address, secret, vendor, coa_port,
                         require_message_authenticator, description)


def thd_list_nas(session: Session, caller: Caller) -> list[admin_nas.NasInfo]:
    caller.require("nas.read")
    return admin_nas.thd_list_nas(session)


def thd_get_nas(session: Session, caller: Caller, name: str) -> admin_nas.NasInfo:
    caller.require("nas.read")
    return admin_nas.thd_get_nas(session, name)


def thd_update_nas(session: Session, caller: Caller, name: str,
                   changes: Mapping[str, Any]) -> admin_nas.NasInfo:
    caller.require("nas.write")
    before = admin_nas.thd_get_nas(session, name)
    return audit.changed(session, caller, "nas.write", "nas.set", "nas", name,
                         admin_nas.thd_update_nas, name, changes, before=before)


def thd_remove_nas(session: Session, caller: Caller, name: str) -> admin_nas.NasInfo:
    caller.require("nas.write")
    info = admin_nas.thd_remove_nas(session, name)
    audit.record(session, caller, "nas.remove", "nas", name, info.as_dict(), None)
    return info


# -- plans ----------------------------------------------------------------------------------


def plan_view(session: Session, caller: Caller, name: str) -> dict[str, Any]:
    """The plan's service side and the pools it draws from, in the order they are tried."""
    shown = admin_plans.thd_get_plan(session, name).as_dict()
    if caller.may("pool.read") or caller.may("plan.write"):
        shown["pools"] = [link.pool for link in pools.thd_plan_pools(session, name)]
    return shown


def thd_add_plan(session: Session, caller: Caller, name: str, rate_limit: str | None = None,
                 session_timeout: int | None = None, idle_timeout: int | None = None,
                 interim_interval: int | None = None, simultaneous_use: int | None = None,
                 framed_protocol: str | None = "PPP", reply_attributes: Sequence[str] = (),
                 pools_: Sequence[str] | None = None,
                 reseller: str | None = None) -> dict[str, Any]:
    """``pools_`` in the same transaction: an unknown pool adds no plan."""
    caller.require("plan.write")
    rid = scope.scoped_reseller(session, caller, reseller)
    info = admin_plans.thd_add_plan(session, name, rate_limit, session_timeout, idle_timeout,
                                    interim_interval, simultaneous_use, framed_protocol,
                                    reply_attributes, reseller_id=rid)
    if pools_:
        _require_pool_change(caller)
        pools.thd_replace_plan_pools(session, info.name, list(pools_))
    shown = plan_view(session, caller, info.name)
    audit.record(session, caller, "plan.add", "plan", info.name, None, shown)
    return shown


def _require_pool_change(caller: Caller) -> None:
    if caller.scoped:
        raise InvalidInput("pools are the operator's; a reseller cannot attach them",
                           field="pools")
    caller.require("pool.write")


def thd_list_plans(session: Session, caller: Caller) -> list[admin_plans.PlanInfo]:
    caller.require("plan.read")
    return admin_plans.thd_list_plans(session, scope.plan_filter(caller))


def thd_get_plan(session: Session, caller: Caller, name: str) -> dict[str, Any]:
    caller.require("plan.read")
    scope.plan(session, caller, name)
    return plan_view(session, caller, name)


def thd_update_plan(session: Session, caller: Caller, name: str, changes: Mapping[str, Any],
                    pools_: Sequence[str] | None = None) -> dict[str, Any]:
    caller.require("plan.write")
    scope.plan(session, caller, name, write=True)
    before = plan_view(session, caller, name)
    domain = dict(changes)
    if "reseller" in domain:
        if caller.scoped:
            raise InvalidInput("a reseller cannot give its plans away", field="reseller")
        domain["reseller_id"] = scope.reseller_id(session, domain.pop("reseller"))
    if domain:
        admin_plans.thd_update_plan(session, name, domain)
    if pools_ is not None:
        _require_pool_change(caller)
        pools.thd_replace_plan_pools(session, name, list(pools_))
    after = plan_view(session, caller, name)
    audit.record(session, caller, "plan.set", "plan", name, before, after)
    return after


def thd_remove_plan(session: Session, caller: Caller, name: str) -> admin_plans.PlanInfo:
    caller.require("plan.write")
    scope.plan(session, caller, name, write=True)
    info = admin_plans.thd_remove_plan(session, name)
    audit.record(session, caller, "plan.remove", "plan", name, info.as_dict(), None)
    return info


# -- prices ---------------------------------------------------------------------------------


def thd_plan_prices(session: Session, caller: Caller, name: str) -> Tariff:
    caller.require("plan.read")
    scope.plan(session, caller, name)
    return tariff_store.thd_plan_tariff(session, name)


def _prices(session: Session, name: str) -> dict[str, object] | None:
    try:
        return tariff_store.describe_tariff(tariff_store.thd_plan_tariff(session, name))
    except Exception:
        return None


def thd_apply_prices(session: Session, caller: Caller, spec: TariffSpec,
                     create_plan: bool = False) -> tariff_store.Applied:
    caller.require("plan.write")
    if not create_plan or caller.scoped:
        scope.plan(session, caller, spec.plan_name, write=True)
    before = _prices(session, spec.plan_name)
    applied = tariff_store.thd_apply_spec(session, spec, create_plan=create_plan)
    audit.record(session, caller, "plan.prices", "plan", applied.plan, before,
                 _prices(session, applied.plan))
    return applied


def thd_import_rates(session: Session, caller: Caller, plan: str,
                     rates: list[VoiceRate]) -> int:
    caller.require("plan.write")
    scope.plan(session, caller, plan, write=True)
    count = tariff_store.thd_import_rates(session, plan, rates)
    audit.record(session, caller, "plan.rates", "plan", plan, None, {"voice_rates": count})
    return count


# -- pools ----------------------------------------------------------------------------------


def thd_add_pool(session: Session, caller: Caller, new: pools.NewPool,
                 progress: Any = None) -> pools.PoolUsage:
    return audit.changed(session, caller, "pool.write", "pool.add", "pool", new.name,
                         pools.thd_add_pool, new, progress)


def thd_list_pools(session: Session, caller: Caller, warn: int = 90) -> list[pools.PoolUsage]:
    caller.require("pool.read")
    return pools.thd_list_pools(session, warn)


def thd_show_pool(session: Session, caller: Caller, name: str,
                  warn: int = 90) -> pools.PoolDetail:
    caller.require("pool.read")
    return pools.thd_show_pool(session, name, warn)


def thd_set_pool(session: Session, caller: Caller, name: str, **changes: Any) -> Any:
    caller.require("pool.write")
    before = pools.thd_show_pool(session, name)
    return audit.changed(session, caller, "pool.write", "pool.set", "pool", name,
                         pools.thd_set_pool, name, before=before, **changes)


def thd_remove_pool(session: Session, caller: Caller, name: str) -> int:
    return audit.changed(session, caller, "pool.write", "pool.remove", "pool", name,
                         pools.thd_remove_pool, name)


def thd_list_leases(session: Session, caller: Caller, name: str,
                    states: Sequence[Any] | None = None, limit: int = 100) -> list[Any]:
    caller.require("pool.read")
    return pools.thd_list_leases(session, name, states, limit)


def thd_assign_static(session: Session, caller: Caller, pool: str, login: str,
                      value: str | None = None) -> Any:
    return audit.changed(session, caller, "pool.write", "pool.assign", "pool", pool,
                         pools.thd_assign_static, pool, login, value)


def thd_release_static(session: Session, caller: Caller, pool: str, who: str) -> Any:
    return audit.changed(session, caller, "pool.write", "pool.release", "pool", pool,
                         pools.thd_release_static, pool, who)


def thd_attach(session: Session, caller: Caller, plan: str, pool: str, **kw: Any) -> Any:
    return audit.changed(session, caller, "pool.write", "pool.attach", "plan", plan,
                         pools.thd_attach, plan, pool, **kw)


def thd_detach(session: Session, caller: Caller, plan: str, pool: str) -> None:
    audit.changed(session, caller, "pool.write", "pool.detach", "plan", plan,
                  pools.thd_detach, plan, pool)


def thd_nas_groups(session: Session, caller: Caller) -> list[tuple[str, str]]:
    caller.require("pool.read")
    return pools.thd_nas_groups(session)


def thd_set_nas_group(session: Session, caller: Caller, nas: str, group: str | None) -> Any:
    return audit.changed(session, caller, "pool.write", "nas.group", "nas", nas,
                         pools.thd_set_nas_group, nas, group)


def thd_generate_logins(session: Session, caller: Caller, pool: str, count: int) -> list[str]:
    from pools.logins import thd_generate_logins as generate

    return audit.changed(session, caller, "pool.write", "pool.logins", "pool", pool,
                         generate, pool, count)
