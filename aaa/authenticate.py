"""Which authentication method a request uses, and whether its credentials hold.

Attributes are read raw by code (pyrad keys undecoded values by code), so a
User-Name or password that is not valid UTF-8 cannot raise in a decoder.
"""

from __future__ import annotations

import hmac
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from pyrad.packet import Packet
from twisted.python.failure import Failure

from aaa import chap, mschap
from aaa.credentials import SubscriberAuth
from aaa.errors import CryptoInputError, Shed
from aaa.legacy_passwords import verify_legacy
from aaa.maybe import Maybe
from aaa.outcome import Outcome
from aaa.pap import decrypt_user_password, verify_password
from aaa.slowqueue import Priority
from aaa.throttle import FailureThrottle
from aaa.verifier import PasswordVerifier, SlowCheck

log = logging.getLogger(__name__)

USER_PASSWORD = 2
CHAP_PASSWORD = 3
NAS_PORT = 5
NAS_PORT_ID = 87
CHAP_CHALLENGE = 60
EAP_MESSAGE = 79
MICROSOFT = 311
MS_CHAP_RESPONSE = (MICROSOFT, 1)
MS_CHAP_CHALLENGE = (MICROSOFT, 11)
MS_CHAP2_RESPONSE = (MICROSOFT, 25)

EAP_TYPES = {1: "Identity", 4: "MD5-Challenge", 13: "EAP-TLS", 21: "EAP-TTLS",
             25: "PEAP", 26: "MS-CHAP-V2", 43: "EAP-FAST", 52: "EAP-PWD"}


@dataclass
class AuthResult:
    outcome: Outcome
    method: str
    attributes: list[tuple[str, object]] = field(default_factory=list)
    detail: str = ""


def raw(pkt: Packet, key: int | tuple[int, int]) -> bytes | None:
    values = OrderedDict.get(pkt, key)
    return values[0] if values else None


def detect_method(pkt: Packet) -> str:
    if raw(pkt, USER_PASSWORD) is not None:
        return "pap"
    if raw(pkt, CHAP_PASSWORD) is not None:
        return "chap"
    if raw(pkt, MS_CHAP2_RESPONSE) is not None:
        return "mschapv2"
    if raw(pkt, MS_CHAP_RESPONSE) is not None:
        return "mschapv1"
    if raw(pkt, EAP_MESSAGE) is not None:
        return "eap"
    return "none"


def eap_method_name(pkt: Packet) -> str:
    """Name the EAP method a request carries, for the log line that explains the reject."""
    data = b"".join(OrderedDict.get(pkt, EAP_MESSAGE, []))
    if len(data) >= 5 and data[0] == 2:  # EAP-Response
        return "EAP-" + EAP_TYPES.get(data[4], f"type {data[4]}").removeprefix("EAP-")
    return "EAP"


class PasswordUpgrade(Protocol):
    """Stores an argon2 hash for a subscriber verified by NT hash (see _pap)."""

    def __call__(self, sub: SubscriberAuth, password: str) -> None: ...


def port_key(client: object, pkt: Packet) -> tuple[str, bytes] | None:
    """The NAS port a request came in on, for the per-port throttle; None when not named."""
    port = raw(pkt, NAS_PORT_ID) or raw(pkt, NAS_PORT)
    if port is None or client is None:
        return None
    return (str(getattr(client, "name", client)), port)


class Authenticator:
    def __init__(self, verifier: PasswordVerifier,
                 upgrade: PasswordUpgrade | None = None,
                 throttle: FailureThrottle | None = None) -> None:
        """``throttle``: wrong PAP passwords per login and per NAS port (aaa.throttle)."""
        self.verifier = verifier
        self.upgrade = upgrade
        self.throttle = throttle
        self._pending: dict[object, int] = {}  # login/port keys -> slow checks under way

    def authenticate(self, pkt: Packet, user_name: bytes,
                     sub: SubscriberAuth, client: object = None) -> Maybe[AuthResult]:
        """The result at once, or a Deferred when argon2 has to run (aaa.maybe)."""
        method = detect_method(pkt)
        try:
            if method == "pap":
                return self._pap(pkt, sub, client)
            if method == "chap":
                return self._chap(pkt, sub)
            if method == "mschapv2":
                return self._mschapv2(pkt, user_name, sub)
            if method == "mschapv1":
                return self._mschapv1(pkt, sub)
        except CryptoInputError as exc:
            return AuthResult(Outcome.MALFORMED_CREDENTIALS, method, detail=str(exc))
        if method == "none":
            return AuthResult(Outcome.NO_CREDENTIALS, method)
        name = eap_method_name(pkt)
        log.debug("rejecting %s: %s is not supported", sub.login, name)
        # The reject line (aaa.radius, rate-limited) carries this detail and the hint.
        return AuthResult(Outcome.UNSUPPORTED_METHOD, method,
                          detail=f"{name} is not supported (terminate EAP in FreeRADIUS and "
                                 "proxy the inner request: docs/migration.md)")

    def _pap(self, pkt: Packet, sub: SubscriberAuth, client: object) -> Maybe[AuthResult]:
        password = decrypt_user_password(raw(pkt, USER_PASSWORD) or b"", pkt.secret,
                                         pkt.authenticator)
        if sub.password_hash is not None:
            return self._pap_slow(sub, sub.password_hash, password, verify_password,
                                  port_key(client, pkt), upgrade=False)
        if sub.nt_hash is None and sub.legacy_hash is not None:
            return self._pap_slow(sub, sub.legacy_hash, password, verify_legacy,
                                  port_key(client, pkt), upgrade=True)
        return self._pap_by_nt_hash(password, sub)

    def _pap_slow(self, sub: SubscriberAuth, credential: str, password: bytes,
                  check: SlowCheck, port: object, upgrade: bool) -> Maybe[AuthResult]:
        """A stored hash: its verifier at once, else argon2 (or the legacy check) queued.

        A legacy hash imported from FreeRADIUS (aaa.legacy_passwords) is replaced after its
        first success (``upgrade``): argon2 and the NT hash are stored, in the background.
        """
        verifier = self.verifier
        tag = verifier.tag(sub, credential, password)  # the one HMAC of this request
        if verifier.known(sub, credential, password, tag):
            return self._pap_accepted(sub, password, upgrade)
        keys: list[object] = [("login", sub.id)]
        if port is not None:
            keys.append(port)
        throttle = self.throttle
        if verifier.known_wrong(sub, credential, password, tag):
            if throttle is not None:
                for k in keys:
                    throttle.failed(k)
            return AuthResult(Outcome.WRONG_PASSWORD, "pap", detail="refused lately")
        priority = Priority.LOGIN
        pending = self._pending
        if throttle is not None:
            if any(throttle.throttled(k) for k in keys):
                return AuthResult(Outcome.THROTTLED, "pap",
                                  detail="too many wrong passwords lately")
            if any(throttle.suspect(k) for k in keys):
                priority = Priority.SUSPECT
        # One subscriber behind a NAS port logs in once at a time: a port or login that
        # already has a check waiting is flooding, and waits behind clean logins.
        if any(k in pending for k in keys):
            priority = Priority.SUSPECT
        for k in keys:
            pending[k] = pending.get(k, 0) + 1
        try:
            d = verifier.slow(sub, credential, password, check, priority, tag)
        except Shed as exc:
            for k in keys:
                left = pending[k] - 1
                if left:
                    pending[k] = left
                else:
                    del pending[k]
            return AuthResult(Outcome.SHED, "pap", detail=str(exc))

        def settled(result: object) -> object:
            for k in keys:
                left = pending[k] - 1
                if left:
                    pending[k] = left
                else:
                    del pending[k]
            return result

        d.addBoth(settled)

        def checked(ok: bool) -> AuthResult:
            if throttle is not None:
                for k in keys:
                    if ok and k == keys[0]:
                        throttle.succeeded(k)
                    elif not ok:
                        throttle.failed(k)
            if not ok:
                return AuthResult(Outcome.WRONG_PASSWORD, "pap")
            return self._pap_accepted(sub, password, upgrade)

        def shed(f: Failure) -> AuthResult:
            f.trap(Shed)
            return AuthResult(Outcome.SHED, "pap", detail=f.getErrorMessage())

        return d.addCallbacks(checked, shed)

    def _pap_accepted(self, sub: SubscriberAuth, password: bytes, upgrade: bool) -> AuthResult:
        if upgrade and self.upgrade is not None:
            try:
                self.upgrade(sub, password.decode("utf-8"))
            except UnicodeDecodeError:
                log.info("%s: legacy hash kept, the password is not UTF-8", sub.login)
        return AuthResult(Outcome.ACCEPT, "pap")

    def _pap_by_nt_hash(self, password: bytes, sub: SubscriberAuth) -> AuthResult:
        """PAP for a subscriber whose argon2 hash is still pending (a bulk import).

        Importing stores only the NT hash, which MS-CHAPv2 needs anyway (argon2
        for 10,000 rows would take minutes); the first PAP login proves the
        password, and the argon2 hash is stored from it then, by background work
        that waits behind every login in the slow queue (aaa.password_upgrade), so
        10,000 first logins at once are not 10,000 argon2 hashes at once. Until then
        the protection is that of the NT hash, which every MS-CHAP-capable subscriber
        has regardless.
        """
        if sub.nt_hash is None:
            return AuthResult(Outcome.WRONG_PASSWORD, "pap", detail="no PAP password stored")
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            return AuthResult(Outcome.WRONG_PASSWORD, "pap", detail="password is not UTF-8")
        if not hmac.compare_digest(mschap.nt_password_hash(text), sub.nt_hash):
            return AuthResult(Outcome.WRONG_PASSWORD, "pap")
        if self.upgrade is not None:
            self.upgrade(sub, text)
        return AuthResult(Outcome.ACCEPT, "pap")

    def _chap(self, pkt: Packet, sub: SubscriberAuth) -> AuthResult:
        if sub.cleartext is None:
            return AuthResult(Outcome.UNSUPPORTED_METHOD, "chap",
                              detail="CHAP is not enabled for this subscriber")
        challenge = raw(pkt, CHAP_CHALLENGE) or pkt.authenticator
        ok = chap.verify_chap(raw(pkt, CHAP_PASSWORD) or b"", challenge, sub.cleartext)
        return AuthResult(Outcome.ACCEPT if ok else Outcome.WRONG_PASSWORD, "chap")

    def _mschapv2(self, pkt: Packet, user_name: bytes, sub: SubscriberAuth) -> AuthResult:
        challenge = raw(pkt, MS_CHAP_CHALLENGE)
        if challenge is None or len(challenge) != 16:
            raise CryptoInputError("MS-CHAP2-Response without a 16-octet MS-CHAP-Challenge")
        response = mschap.parse_mschap2_response(raw(pkt, MS_CHAP2_RESPONSE) or b"")
        if sub.nt_hash is None:
            return AuthResult(Outcome.WRONG_PASSWORD, "mschapv2", detail="no NT hash stored")
        success = mschap.verify_mschap2(sub.nt_hash, user_name, challenge, response)
        if success is None:
            # MS-CHAP-Error lets the peer show "wrong password" (RFC 2759 section 6).
            error = bytes((response.ident,)) + b"E=691 R=0 C=" + challenge.hex().upper().encode() \
                + b" V=3 M=Authentication failed"
            return AuthResult(Outcome.WRONG_PASSWORD, "mschapv2",
                              attributes=[("MS-CHAP-Error", error)])
        send_key, recv_key = mschap.mppe_keys(sub.nt_hash, response.nt_response)
        return AuthResult(Outcome.ACCEPT, "mschapv2", attributes=[
            ("MS-CHAP2-Success", success),
            ("MS-MPPE-Send-Key", send_key),
            ("MS-MPPE-Recv-Key", recv_key),
            ("MS-MPPE-Encryption-Policy", 1),  # allowed
            ("MS-MPPE-Encryption-Types", 6),   # 128-bit | 40-bit
        ])

    def _mschapv1(self, pkt: Packet, sub: SubscriberAuth) -> AuthResult:
        """MS-CHAPv1 (RFC 2433) by the NT hash; MS-CHAP-MPPE-Keys for MPPE (RFC 2548 2.4.1)."""
        challenge = raw(pkt, MS_CHAP_CHALLENGE)
        if challenge is None or len(challenge) != mschap.MSCHAP1_CHALLENGE_LENGTH:
            raise CryptoInputError("MS-CHAP-Response without an 8-octet MS-CHAP-Challenge")
        response = mschap.parse_mschap1_response(raw(pkt, MS_CHAP_RESPONSE) or b"")
        if not response.uses_nt:
            return AuthResult(Outcome.UNSUPPORTED_METHOD, "mschapv1",
                              detail="MS-CHAPv1 with only an LM-Response is not supported")
        if sub.nt_hash is None:
            return AuthResult(Outcome.WRONG_PASSWORD, "mschapv1", detail="no NT hash stored")
        if not mschap.verify_mschap1(sub.nt_hash, challenge, response):
            # RFC 2433 section 6 failure packet: "E=eeeeeeeeee R=r" (v1 has no C= or V=).
            error = bytes((response.ident,)) + b"E=691 R=0"
            return AuthResult(Outcome.WRONG_PASSWORD, "mschapv1",
                              attributes=[("MS-CHAP-Error", error)])
        # Hidden like User-Password with the Request Authenticator (RFC 2548 2.4.1); pyrad's
        # encoder does not apply encrypt=1 itself, its PwCrypt does the hiding.
        hidden = pkt.PwCrypt(mschap.mschap1_mppe_keys(sub.nt_hash))
        return AuthResult(Outcome.ACCEPT, "mschapv1", attributes=[
            ("MS-CHAP-MPPE-Keys", hidden),
            ("MS-MPPE-Encryption-Policy", mschap.MPPE_ENCRYPTION_POLICY_ALLOWED),
            ("MS-MPPE-Encryption-Types", mschap.MPPE_ENCRYPTION_TYPES_40_OR_128),
        ])
