"""Self-care through the service layer: a subscriber's own account, usage and password.

Every function takes the subscriber from the caller (``caller.subscriber``, set
by a self-care login), never from the request, so a subscriber reaches its own
rows only. ``thd_login_secrets`` is for a ``selfcare-frontend`` token opening a
subscriber's session; the password check itself runs outside the transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from aaa.admin.subscribers import LoginSecrets
from aaa.admin.subscribers import thd_login_secrets as _login_secrets
from webadmin.errors import Forbidden
from webadmin.roles import Caller


def own_login(caller: Caller) -> str:
    if caller.role != "subscriber" or not caller.subscriber:
        raise Forbidden(f"{caller.role} is not a self-care subscriber")
    return caller.subscriber


def thd_login_secrets(session: Session, caller: Caller, login: str) -> LoginSecrets | None:
    """What checking a subscriber's password needs (a self-care front end logging it in)."""
    caller.require("selfcare.login")
    return _login_secrets(session, login)
