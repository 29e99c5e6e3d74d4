"""Running a money-moving handler exactly once per Idempotency-Key (or payment reference)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from core.errors import InvalidInput
from webadmin.api.declare import Created
from webadmin.service import idempotency

REFUSED = "_refused"  # a stored answer that is a refusal (see once_refusable)


async def once_refusable(ctx: Any, body: BaseModel, answer: Callable[[Any], Any], fn: Any,
                         *args: Any) -> Created:
    """:func:`once` for operations whose refusal must still commit (a card activation's
    wrong-PIN counters): a result with ``ok`` false is stored as the key's answer, so the
    transaction commits its counters, and is raised as the domain's error afterwards (and on
    every replay of the key). Raising inside the key's transaction would roll the counters
    back: a fresh key per guess would then never lock anyone out."""

    def stored(result: Any) -> Any:
        if getattr(result, "ok", True):
            return answer(result)
        return {REFUSED: True, "serial": result.serial, "reason": str(result.refused)}

    out = await once(ctx, body, stored, fn, *args)
    data = out.data
    if isinstance(data, dict) and data.get(REFUSED):
        from billing.cards import REFUSAL_TEXT, CardRefused, Refusal

        raise CardRefused(f"card {data['serial']}: {REFUSAL_TEXT[Refusal(data['reason'])]}")
    return out


async def once(ctx: Any, body: BaseModel, answer: Callable[[Any], Any], fn: Any,
               *args: Any) -> Created:
    """With a key: the first answer, whatever happens around it. Without one the body's
    ``reference`` makes the domain operation idempotent (posting it again changes nothing)."""

    def status(result: Any) -> int:
        created = (result.get("recorded", True) if isinstance(result, dict)
                   else getattr(result, "created", True))
        return 201 if created else 200

    key = ctx.idempotency_key
    if key is None:
        if getattr(body, "reference", None) is None:
            raise InvalidInput("give an Idempotency-Key header or a reference",
                               field="Idempotency-Key")
        result = await ctx.run(fn, *args)
        return Created(answer(result), status(result))
    endpoint = fn.__name__
    hashed = idempotency.request_hash(endpoint, body.model_dump())
    try:
        stored = await ctx.api.dbpool.run(idempotency.thd_once, ctx.caller, key, endpoint,
                                          hashed, status, answer, fn, *args)
    except IntegrityError:
        replay = await ctx.api.dbpool.run(idempotency.thd_replay, ctx.caller, key, hashed)
        if replay is None:  # the first attempt rolled back: nothing was done; try once more
            stored = await ctx.api.dbpool.run(idempotency.thd_once, ctx.caller, key, endpoint,
                                              hashed, status, answer, fn, *args)
        else:
            stored = replay
    if stored.replayed:
        ctx.extra_headers["Idempotent-Replayed"] = "true"
    return Created(stored.response, stored.status)
