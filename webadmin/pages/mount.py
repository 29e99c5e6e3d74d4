"""The page sites as twisted.web resources, for whichever HTTP service serves them.

``radbill serve``/``radbill web`` mount the admin at /admin/ and self-care at
/my/ (in-process backend); ``radbill selfcare`` mounts only /my/ with the API
backend. A root of its own redirects / to the first site.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from twisted.web import resource, util

from core.config import Config
from core.db.pool import DBPool
from webadmin.pages.render import Renderer
from webadmin.selfcare.backend import SelfcareBackend
from webadmin.selfcare.pages import SelfcareSite


def selfcare_site(config: Config, backend: SelfcareBackend, *,
                  secure_cookies: bool = False) -> SelfcareSite:
    p = config.pages
    return SelfcareSite(backend, Renderer(p.time_zone), default_language=p.default_language,
                        page_size=p.page_size, secure_cookies=secure_cookies)


def local_selfcare(config: Config, dbpool: DBPool, reactor: Any) -> SelfcareSite:
    from webadmin.selfcare.local import LocalSelfcare

    backend = LocalSelfcare(dbpool, reactor, config.billing.currency,
                            ZoneInfo(config.pages.time_zone), config=config)
    return selfcare_site(config, backend)


def admin_site(config: Config, dbpool: DBPool, reactor: Any, *,
               billing_status: Any = None) -> Any:
    """The admin pages over the service layer, with Disconnect through aaa.coa."""
    from aaa.coa import CoaDisconnector
    from aaa.dictionary import load_dictionary
    from billing.documents import DocumentRenderer
    from webadmin.admin.rates import RateSampler
    from webadmin.admin.site import AdminSite, Settings
    from webadmin.pages.sessions import LoginThrottle

    p, w = config.pages, config.web
    settings = Settings(currency=config.billing.currency, tz=ZoneInfo(p.time_zone),
                        session_idle=w.session_idle, session_lifetime=w.session_lifetime,
                        token_cache=w.token_cache)
    rates = RateSampler()
    rates.start(reactor)
    return AdminSite(dbpool, Renderer(p.time_zone), settings, reactor=reactor,
                     disconnector=lambda: CoaDisconnector.from_config(
                         config, dbpool, reactor, load_dictionary()),
                     billing_status=billing_status, rates=rates,
                     document_reader=DocumentRenderer(config).read,
                     throttle=LoginThrottle(limit=w.login_failures),
                     default_language=p.default_language, page_size=p.page_size,
                     secure_cookies=bool(w.tls_certificate) or w.behind_proxy)


class Root(resource.Resource):
    """/ redirects to the first mounted site; each site is a child resource."""

    def __init__(self, first: bytes) -> None:
        super().__init__()
        self.first = first

    def getChild(self, path: bytes, request: Any) -> resource.Resource:
        if path == b"":
            return util.Redirect(b"/" + self.first + b"/")
        return resource.NoResource()


def site_root(children: dict[bytes, resource.Resource]) -> resource.Resource:
    root = Root(next(iter(children)))
    for name, child in children.items():
        root.putChild(name, child)
    return root
