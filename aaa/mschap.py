"""MS-CHAPv2 (RFC 2759) and MS-CHAPv1 (RFC 2433) verification, MPPE keys (RFC 3079, 2548).

The server side of MS-CHAPv2 over RADIUS (RFC 2548): the NAS forwards the
peer's response in MS-CHAP-Challenge / MS-CHAP2-Response, and the server
answers with MS-CHAP2-Success (which proves to the peer that the server knew
the password too) plus the MPPE keys the NAS needs to encrypt the PPP link.

MD4 and single DES come from pycryptodome: hashlib's ``md4`` is gone with
OpenSSL 3 (legacy provider), and the protocol fixes the algorithms.

Like CHAP, MS-CHAPv2 needs the NT hash (MD4 of the UTF-16LE password) on the
server; it is password-equivalent, so it must be stored as carefully as a
cleartext password.

MPPE keys on the wire
---------------------
MS-MPPE-Send-Key and MS-MPPE-Recv-Key (RFC 2548 sections 2.4.2/2.4.3) are
salt-encrypted with the shared secret and the Request Authenticator, and the
plaintext is a Key-Length octet, the key, and zero padding to a multiple of
16. pyrad does all of that for attributes declared with ``encrypt=2`` in the
dictionary (``Packet.SaltCrypt`` adds the salt with its high bit set, the
length prefix and the padding). So the caller assigns the raw 16-octet keys
returned by :func:`mppe_keys` to the reply and must not add a length octet
or padding itself; FreeRADIUS likewise sends 16-octet keys for 128-bit MPPE.
The reply must be built with ``request.CreateReply()`` so that the salt
encryption uses the Request Authenticator.

Send and Recv are named from the NAS's (the authenticator's) point of view:
MS-MPPE-Send-Key encrypts traffic from the NAS to the peer (RFC 2548
2.4.2). :func:`mppe_keys` returns them in that orientation, matching
FreeRADIUS ``mppe_chap2_gen_keys128`` (send = IsSend, IsServer = Magic3) and
[MS-CHAP] 3.1.5.1. A swapped pair leaves the link unable to decrypt.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from Crypto.Cipher import DES
from Crypto.Hash import MD4

from aaa.errors import CryptoInputError

__all__ = [
    "AUTHENTICATOR_CHALLENGE_LENGTH",
    "MPPE_ENCRYPTION_POLICY_ALLOWED",
    "MPPE_ENCRYPTION_POLICY_REQUIRED",
    "MPPE_ENCRYPTION_TYPES_40_OR_128",
    "MPPE_ENCRYPTION_TYPES_128",
    "MSCHAP1_CHALLENGE_LENGTH",
    "MSCHAP1_RESPONSE_LENGTH",
    "MSCHAP2_RESPONSE_LENGTH",
    "MSCHAP1Response",
    "MSCHAP2Response",
    "asymmetric_start_key",
    "challenge_hash",
    "challenge_response",
    "expand_des_key",
    "generate_authenticator_response",
    "generate_nt_response",
    "hash_nt_password_hash",
    "master_key",
    "mppe_keys",
    "mschap1_mppe_keys",
    "nt_password_hash",
    "parse_mschap1_response",
    "parse_mschap2_response",
    "strip_domain",
    "verify_mschap1",
    "verify_mschap2",
]

#: MS-CHAP-Challenge value length for MS-CHAPv2 (RFC 2548 2.3.2, RFC 2759 4).
AUTHENTICATOR_CHALLENGE_LENGTH: Final = 16
PEER_CHALLENGE_LENGTH: Final = 16
NT_RESPONSE_LENGTH: Final = 24
NT_HASH_LENGTH: Final = 16
#: MS-CHAP2-Response value: Ident 1, Flags 1, Peer-Challenge 16, Reserved 8,
#: Response 24 (RFC 2548 section 2.3.2).
MSCHAP2_RESPONSE_LENGTH: Final = 50
#: MS-CHAPv1 (RFC 2548 2.3.1/2.3.2): an 8-octet MS-CHAP-Challenge, and an MS-CHAP-Response of
#: Ident 1, Flags 1, LM-Response 24, NT-Response 24.
MSCHAP1_CHALLENGE_LENGTH: Final = 8
MSCHAP1_RESPONSE_LENGTH: Final = 50
#: Flags bit 0 of MS-CHAP-Response: the NT-Response field is valid (RFC 2548 2.1.3).
MSCHAP1_USE_NT: Final = 0x01

#: MS-MPPE-Encryption-Policy values (RFC 2548 2.4.4), sent as 4-octet integers.
MPPE_ENCRYPTION_POLICY_ALLOWED: Final = 1
MPPE_ENCRYPTION_POLICY_REQUIRED: Final = 2
#: MS-MPPE-Encryption-Types bit masks (RFC 2548 2.4.5): 0x02 = 40-bit RC4,
#: 0x04 = 128-bit RC4, 0x08 = 56-bit RC4. FreeRADIUS offers 0x06 by default
#: and 0x04 when strong encryption is required.
MPPE_ENCRYPTION_TYPES_128: Final = 0x04
MPPE_ENCRYPTION_TYPES_40_OR_128: Final = 0x06

# RFC 2759 section 8.7 (GenerateAuthenticatorResponse).
_AUTH_MAGIC1: Final = b"Magic server to client signing constant"
_AUTH_MAGIC2: Final = b"Pad to make it do more than one iteration"

# RFC 3079 section 3.4 (GetMasterKey, GetAsymmetricStartKey).
_MPPE_MAGIC1: Final = b"This is the MPPE Master Key"
_MPPE_MAGIC2: Final = (
    b"On the client side, this is the send key; on the server side, it is the receive key."
)
_MPPE_MAGIC3: Final = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHS_PAD1: Final = b"\x00" * 40
_SHS_PAD2: Final = b"\xf2" * 40


def _require_length(name: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise CryptoInputError(f"{name} must be {length} octets, got {len(value)}")


def _md4(data: bytes) -> bytes:
    # MD4 is fixed by RFC 2759 (NtPasswordHash); there is no choice of algorithm.
    return MD4.new(data).digest()  # noqa: S303


def _sha1(*parts: bytes) -> bytes:
    # SHA-1 is fixed by RFC 2759 / RFC 3079; there is no choice of algorithm.
    digest = hashlib.sha1()  # noqa: S324
    for part in parts:
        digest.update(part)
    return digest.digest()


def nt_password_hash(password: str) -> bytes:
    """MD4 of the UTF-16LE password (RFC 2759 8.3 NtPasswordHash).

    ``surrogatepass`` keeps lone surrogates encodable as Windows would store
    them in a WCHAR string, instead of raising on odd database contents.
    """
    return _md4(password.encode("utf-16-le", "surrogatepass"))


def hash_nt_password_hash(nt_hash: bytes) -> bytes:
    """MD4 of the NT hash (RFC 2759 8.4), input to the authenticator response and MPPE."""
    _require_length("NT password hash", nt_hash, NT_HASH_LENGTH)
    return _md4(nt_hash)


def strip_domain(username: bytes) -> bytes:
    """Drop a ``DOMAIN\\`` prefix from a user name.

    RFC 2759 8.2 hashes "only the user name (as presented by the peer and
    excluding any prepended domain name)", and Windows peers send
    ``DOMAIN\\user`` as their name, so the server must strip it too or every
    Windows login with a domain fails. Windows forbids ``\\`` in user names,
    so splitting at the last backslash (as pppd does; FreeRADIUS's
    with_ntdomain_hack splits at the first) only differs for names no
    Windows peer can send.
    """
    return username.rpartition(b"\\")[2]


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: bytes) -> bytes:
    """The 8-octet challenge the NT-Response answers (RFC 2759 8.2 ChallengeHash).

    The user name is passed through :func:`strip_domain` here, not left to
    the caller, because RFC 2759 defines ChallengeHash on the stripped name
    and both the NT-Response check and the authenticator response must agree
    on it; stripping is idempotent, so callers that already stripped are fine.
    """
    _require_length("Peer-Challenge", peer_challenge, PEER_CHALLENGE_LENGTH)
    _require_length("MS-CHAP-Challenge", authenticator_challenge, AUTHENTICATOR_CHALLENGE_LENGTH)
    return _sha1(peer_challenge, authenticator_challenge, strip_domain(username))[:8]


def expand_des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 octets with odd parity in each low bit.

    DES ignores the parity bits, but setting them keeps the keys valid for
    DES implementations that check parity.
    """
    _require_length("DES key", key7, 7)
    bits = int.from_bytes(key7, "big")
    out = bytearray()
    for i in range(8):
        seven = (bits >> (49 - 7 * i)) & 0x7F
        octet = seven << 1
        # Odd parity: make the total number of set bits odd.
        if bin(seven).count("1") % 2 == 0:
            octet |= 1
        out.append(octet)
    return bytes(out)


def challenge_response(challenge8: bytes, nt_hash: bytes) -> bytes:
    """The 24-octet NT-Response (RFC 2759 8.5 ChallengeResponse).

    The 16-octet hash is zero-padded to 21 octets and used as three 7-octet
    DES keys, each encrypting the same 8-octet challenge.
    """
    _require_length("challenge", challenge8, 8)
    _require_length("NT password hash", nt_hash, NT_HASH_LENGTH)
    padded = nt_hash + b"\x00" * 5
    return b"".join(
        # Single DES is fixed by RFC 2759; ECB on one block is its DesEncrypt() (8.6).
        DES.new(expand_des_key(padded[i : i + 7]), DES.MODE_ECB).encrypt(challenge8)  # noqa: S304
        for i in (0, 7, 14)
    )


def generate_nt_response(
    authenticator_challenge: bytes, peer_challenge: bytes, username: bytes, nt_hash: bytes
) -> bytes:
    """What the peer should have sent (RFC 2759 8.1 GenerateNTResponse)."""
    return challenge_response(
        challenge_hash(peer_challenge, authenticator_challenge, username), nt_hash
    )


def generate_authenticator_response(
    nt_hash: bytes,
    nt_response: bytes,
    peer_challenge: bytes,
    authenticator_challenge: bytes,
    username: bytes,
) -> bytes:
    """The 42-octet ``S=<40 hex>`` proof that the server knows the password (RFC 2759 8.7).

    Upper-case hex because RFC 2759 section 5 says the digits A-F MUST be
    upper-case, and peers compare the string they compute literally.
    """
    _require_length("NT-Response", nt_response, NT_RESPONSE_LENGTH)
    digest = _sha1(hash_nt_password_hash(nt_hash), nt_response, _AUTH_MAGIC1)
    challenge = challenge_hash(peer_challenge, authenticator_challenge, username)
    digest = _sha1(digest, challenge, _AUTH_MAGIC2)
    return b"S=" + digest.hex().upper().encode("ascii")


@dataclass(frozen=True, slots=True)
class MSCHAP2Response:
    """Decoded MS-CHAP2-Response attribute value (RFC 2548 section 2.3.2).

    The Reserved octets are not kept: RFC 2548 says they MUST be zero, but
    rejecting non-zero ones would only break odd peers without any gain.
    """

    ident: int
    flags: int
    peer_challenge: bytes
    nt_response: bytes


def parse_mschap2_response(attr: bytes) -> MSCHAP2Response:
    """Split the 50-octet MS-CHAP2-Response VSA value; anything else is malformed."""
    _require_length("MS-CHAP2-Response", attr, MSCHAP2_RESPONSE_LENGTH)
    return MSCHAP2Response(
        ident=attr[0],
        flags=attr[1],
        peer_challenge=bytes(attr[2:18]),
        nt_response=bytes(attr[26:50]),
    )


def verify_mschap2(
    nt_hash: bytes,
    username: bytes,
    authenticator_challenge: bytes,
    response: MSCHAP2Response,
) -> bytes | None:
    """Check the peer's NT-Response; on success return the MS-CHAP2-Success value.

    Returning the success value (Ident octet + ``S=...``) rather than True
    keeps the ident and authenticator response from being recomputed or
    mismatched by the caller. None means a wrong password (Access-Reject);
    malformed inputs raise CryptoInputError. ``username`` is the User-Name
    as received; the domain prefix is stripped per RFC 2759.
    """
    expected = generate_nt_response(
        authenticator_challenge, response.peer_challenge, username, nt_hash
    )
    if not hmac.compare_digest(expected, response.nt_response):
        return None
    auth_response = generate_authenticator_response(
        nt_hash, response.nt_response, response.peer_challenge, authenticator_challenge, username
    )
    return bytes((response.ident,)) + auth_response


def master_key(nt_hash_hash: bytes, nt_response: bytes) -> bytes:
    """The 16-octet MPPE master key (RFC 3079 3.4 GetMasterKey)."""
    _require_length("NT password hash hash", nt_hash_hash, NT_HASH_LENGTH)
    _require_length("NT-Response", nt_response, NT_RESPONSE_LENGTH)
    return _sha1(nt_hash_hash, nt_response, _MPPE_MAGIC1)[:16]


def asymmetric_start_key(master_key: bytes, key_len: int, is_send: bool, is_server: bool) -> bytes:
    """One direction's MPPE start key (RFC 3079 3.4 GetAsymmetricStartKey).

    The magic string depends on both flags because the server's send key
    is the client's receive key: (send, server) and (receive, client) both
    select Magic3, (receive, server) and (send, client) both select Magic2.
    """
    _require_length("MPPE master key", master_key, 16)
    if not 8 <= key_len <= 16:
        raise CryptoInputError(f"MPPE key length must be 8 to 16 octets, got {key_len}")
    magic = _MPPE_MAGIC3 if is_send == is_server else _MPPE_MAGIC2
    return _sha1(master_key, _SHS_PAD1, magic, _SHS_PAD2)[:key_len]


def mppe_keys(nt_hash: bytes, nt_response: bytes) -> tuple[bytes, bytes]:
    """(MS-MPPE-Send-Key, MS-MPPE-Recv-Key) for the Access-Accept, 16 octets each.

    Both are the server-side keys of RFC 3079 3.3: send = GetAsymmetricStartKey(
    master, 16, IsSend=TRUE, IsServer=TRUE), recv = (IsSend=FALSE, IsServer=TRUE),
    exactly as FreeRADIUS puts them into MS-MPPE-Send-Key / MS-MPPE-Recv-Key.
    """
    master = master_key(hash_nt_password_hash(nt_hash), nt_response)
    send_key = asymmetric_start_key(master, 16, is_send=True, is_server=True)
    recv_key = asymmetric_start_key(master, 16, is_send=False, is_server=True)
    return send_key, recv_key


# -- MS-CHAPv1 (RFC 2433) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MSCHAP1Response:
    """Decoded MS-CHAP-Response attribute value (RFC 2548 section 2.3.1).

    Only the NT-Response is ever checked: the LM-Response needs the LAN
    Manager hash, which radbill never stores (it is breakable in seconds).
    """

    ident: int
    flags: int
    nt_response: bytes

    @property
    def uses_nt(self) -> bool:
        return bool(self.flags & MSCHAP1_USE_NT)


def parse_mschap1_response(attr: bytes) -> MSCHAP1Response:
    """Split the 50-octet MS-CHAP-Response VSA value; anything else is malformed."""
    _require_length("MS-CHAP-Response", attr, MSCHAP1_RESPONSE_LENGTH)
    return MSCHAP1Response(ident=attr[0], flags=attr[1], nt_response=bytes(attr[26:50]))


def verify_mschap1(nt_hash: bytes, challenge: bytes, response: MSCHAP1Response) -> bool:
    """Whether the peer's NT-Response answers the 8-octet challenge (RFC 2433 A.5).

    MS-CHAPv1 has no peer challenge and does not hash the user name: the
    response is ChallengeResponse(challenge, NtPasswordHash) directly.
    """
    _require_length("MS-CHAP-Challenge", challenge, MSCHAP1_CHALLENGE_LENGTH)
    expected = challenge_response(challenge, nt_hash)
    return hmac.compare_digest(expected, response.nt_response)


def mschap1_mppe_keys(nt_hash: bytes) -> bytes:
    """The MS-CHAP-MPPE-Keys value for an MS-CHAPv1 Access-Accept (RFC 2548 2.4.1).

    8 octets of LM key, then the 16-octet NT key, from which the NAS derives
    the MPPE start keys (RFC 3079 section 2: GetStartKey(challenge,
    NtPasswordHashHash)). RFC 2548 says "NT hash", but what peers (and
    FreeRADIUS's rlm_mschap) use is the hash of the NT hash; radbill keeps no
    LM hash, so the LM key is zeros, as FreeRADIUS sends without
    LM-Password. The value is hidden like User-Password (``encrypt=1`` in the
    dictionary, done by pyrad) and padded there to 32 octets.
    """
    return b"\x00" * 8 + hash_nt_password_hash(nt_hash)
