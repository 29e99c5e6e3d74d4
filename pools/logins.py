"""Login pools: new logins from a pattern, never one a subscriber or an earlier batch has.

A pattern is literal text around one placeholder:

- ``{00000}``: a sequence, zero-padded to the placeholder's width
  (``user{00000}`` gives user00001, user00002, ...);
- ``{#####}``: random digits;
- ``{??????}``: random lowercase letters and digits, without the look-alikes
  0/o, 1/l/i (``vpn-{??????}`` gives vpn-k7q2mz ...).

Every login handed out becomes an ``issued`` pool item: the UNIQUE (kind,
value) key keeps two batches (or two pools) from issuing the same login, and
existing subscriber logins are skipped.
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Subscriber
from core.errors import InvalidInput, NotFound
from pools.errors import BadRange, LoginSpaceExhausted
from pools.lease import ITEM
from pools.models import NEVER, ItemState, Pool, PoolItem, PoolKind

RANDOM_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
MAX_COUNT = 100_000
LITERAL = re.compile(r"^[A-Za-z0-9._@+-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_LOGIN = 128


@dataclass(frozen=True)
class LoginPattern:
    prefix: str
    suffix: str
    mode: str  # "seq", "digits" or "alnum"
    width: int

    @property
    def capacity(self) -> int:
        if self.mode == "seq":
            return 10 ** self.width - 1  # 1 .. 99..9
        if self.mode == "digits":
            return 10 ** self.width
        return len(RANDOM_ALPHABET) ** self.width

    def sequential(self, n: int) -> str:
        return f"{self.prefix}{n:0{self.width}d}{self.suffix}"

    def random(self, rng: random.Random) -> str:
        alphabet = "0123456789" if self.mode == "digits" else RANDOM_ALPHABET
        return self.prefix + "".join(rng.choice(alphabet) for _ in range(self.width)) \
            + self.suffix


def parse_pattern(text: str) -> LoginPattern:
    """Check a pattern; raise BadRange saying what a valid one looks like."""
    found = PLACEHOLDER.findall(text)
    example = "e.g. 'user{00000}' (sequence), 'pin{######}' or 'vpn-{??????}' (random)"
    if len(found) != 1:
        raise BadRange(f"pattern {text!r} needs exactly one {{...}} placeholder, {example}")
    body = found[0]
    prefix, _, rest = text.partition("{")
    suffix = rest.partition("}")[2]
    if not LITERAL.match(prefix) or not LITERAL.match(suffix):
        raise BadRange(f"pattern {text!r}: text around the placeholder may hold letters, "
                       "digits and . _ @ + - only")
    if not body or len(set(body)) != 1 or body[0] not in "0#?":
        raise BadRange(f"pattern {text!r}: the placeholder is all 0, all # or all ?, {example}")
    width = len(body)
    if not 1 <= width <= 12:
        raise BadRange(f"pattern {text!r}: the placeholder is 1 to 12 characters wide")
    if len(prefix) + width + len(suffix) > MAX_LOGIN:
        raise BadRange(f"pattern {text!r} makes logins longer than {MAX_LOGIN} characters")
    mode = {"0": "seq", "#": "digits", "?": "alnum"}[body[0]]
    return LoginPattern(prefix, suffix, mode, width)


def _taken(session: Session, candidates: list[str]) -> set[str]:
    taken: set[str] = set()
    for i in range(0, len(candidates), 1000):
        part = candidates[i:i + 1000]
        taken.update(session.scalars(select(Subscriber.login).where(Subscriber.login.in_(part))))
        taken.update(session.scalars(select(PoolItem.value).where(
            PoolItem.kind == PoolKind.LOGIN, PoolItem.value.in_(part))))
    return taken


def thd_generate_logins(session: Session, pool_name: str, count: int,
                        rng: random.Random | None = None) -> list[str]:
    """Issue ``count`` new logins from a login pool; all or none."""
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"--count must be 1..{MAX_COUNT}")
    pool = session.scalars(select(Pool).where(Pool.name == pool_name)
                           .with_for_update()).one_or_none()
    if pool is None:
        raise NotFound(f"no pool named {pool_name!r}")
    if PoolKind(pool.kind) is not PoolKind.LOGIN or not pool.pattern:
        raise InvalidInput(f"pool {pool.name} is a {pool.kind} pool, not a login pool")
    pattern = parse_pattern(pool.pattern)
    rng = rng or secrets.SystemRandom()
    chosen: list[str] = []
    if pattern.mode == "seq":
        seq = int(pool.next_seq)
        while len(chosen) < count:
            if seq > pattern.capacity:
                raise LoginSpaceExhausted(
                    f"pattern {pool.pattern!r} has no more unused logins "
                    f"({count - len(chosen)} short)")
            numbers = range(seq, min(seq + max(2 * count, 100), pattern.capacity + 1))
            batch = [pattern.sequential(n) for n in numbers]
            taken = _taken(session, batch)
            for n, login in zip(numbers, batch, strict=True):
                seq = n + 1
                if login not in taken:
                    chosen.append(login)
                    if len(chosen) == count:
                        break
        pool.next_seq = seq
    else:
        wanted: set[str] = set()
        for _ in range(50):
            need = count - len(wanted)
            batch = list({pattern.random(rng) for _ in range(2 * need + 10)} - wanted)
            taken = _taken(session, batch)
            for login in batch:
                if login not in taken:
                    wanted.add(login)
                    if len(wanted) == count:
                        break
            if len(wanted) == count:
                break
        if len(wanted) < count:
            raise LoginSpaceExhausted(f"pattern {pool.pattern!r} is too crowded to find "
                                      f"{count} unused logins; use a wider placeholder")
        chosen = sorted(wanted)
    now = utcnow()
    for i in range(0, len(chosen), 5000):
        session.execute(insert(ITEM), [
            {"pool_id": pool.id, "kind": PoolKind.LOGIN, "value": login,
             "state": ItemState.ISSUED, "assigned_at": now, "last_released_at": NEVER}
            for login in chosen[i:i + 5000]])
    return chosen
