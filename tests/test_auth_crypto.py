"""Known-answer and property tests for aaa.chap, aaa.mschap and aaa.pap."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st
from pyrad.packet import AccessRequest, AuthPacket

from aaa.chap import chap_response, verify_chap
from aaa.errors import CryptoInputError
from aaa.mschap import (
    MSCHAP1Response,
    MSCHAP2Response,
    asymmetric_start_key,
    challenge_hash,
    challenge_response,
    expand_des_key,
    generate_authenticator_response,
    generate_nt_response,
    hash_nt_password_hash,
    master_key,
    mppe_keys,
    mschap1_mppe_keys,
    nt_password_hash,
    parse_mschap1_response,
    parse_mschap2_response,
    strip_domain,
    verify_mschap1,
    verify_mschap2,
)
from aaa.pap import decrypt_user_password, hash_password, needs_rehash, verify_password

h = bytes.fromhex

# --- RFC 2865 section 7.1: User Telnet to Specified Host (PAP) -----------------
PAP_SECRET = b"xyzzy5461"
PAP_AUTHENTICATOR = h("0f403f9473978057bd83d5cb98f4227a")
PAP_HIDDEN = h("0dbe708d93d413ce3196e43f782a0aee")

# --- RFC 2865 section 7.2: Framed User Authenticating with CHAP ----------------
# The Access-Request for user "flopsy"; the RFC does not give flopsy's password.
RFC2865_CHAP_PACKET = h(
    "010100472aee86f08d0d55969ca5978e0d3367a2"
    "0108666c6f707379"
    "031316e97557c316185895f293ff634407727504"
    "06c0a80110"
    "050600000014"
    "060600000002"
    "070600000001"
)

# --- RFC 2759 section 9.2 / RFC 3079 section 3.5 ----------------------------
USERNAME = b"User"
PASSWORD = "clientPass"
AUTH_CHALLENGE = h("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = h("21402324255E262A28295F2B3A337C7E")
CHALLENGE = h("D02E4386BCE91226")
PASSWORD_HASH = h("44EBBA8D5312B8D611474411F56989AE")
NT_RESPONSE = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = h("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
MASTER_KEY = h("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = h("8B7CDC149B993A1BA118CB153F56DCCB")
SEND_START_KEY_40 = h("8B7CDC149B993A1B")  # RFC 3079 3.5.1, the same key truncated


def rfc_mschap2_attr(ident: int = 0x07, nt_response: bytes = NT_RESPONSE) -> bytes:
    """Build an MS-CHAP2-Response value from the RFC 2759 9.2 vector."""
    return bytes((ident, 0)) + PEER_CHALLENGE + bytes(8) + nt_response


# ============================== PAP =========================================


def test_pap_pyrad_pwcrypt_matches_rfc2865_vector() -> None:
    """pyrad's PwCrypt hides "arctangent" to the RFC 2865 7.1 User-Password."""
    packet = AuthPacket(code=AccessRequest, secret=PAP_SECRET, authenticator=PAP_AUTHENTICATOR)
    assert packet.PwCrypt("arctangent") == PAP_HIDDEN


def test_pap_decrypt_rfc2865_vector() -> None:
    """decrypt_user_password recovers "arctangent" from the RFC 2865 7.1 packet."""
    assert decrypt_user_password(PAP_HIDDEN, PAP_SECRET, PAP_AUTHENTICATOR) == b"arctangent"


def test_pap_pyrad_pwdecrypt_agrees_on_rfc_vector() -> None:
    """pyrad's own PwDecrypt also yields "arctangent", so both agree on valid UTF-8."""
    packet = AuthPacket(code=AccessRequest, secret=PAP_SECRET, authenticator=PAP_AUTHENTICATOR)
    assert packet.PwDecrypt(PAP_HIDDEN) == "arctangent"


def test_pap_decrypt_keeps_non_utf8_octets_pyrad_drops_them() -> None:
    """Non-UTF-8 passwords survive decrypt_user_password but not pyrad's PwDecrypt."""
    packet = AuthPacket(code=AccessRequest, secret=PAP_SECRET, authenticator=PAP_AUTHENTICATOR)
    hidden = packet.PwCrypt(b"pass\xff")
    assert decrypt_user_password(hidden, PAP_SECRET, PAP_AUTHENTICATOR) == b"pass\xff"
    assert packet.PwDecrypt(hidden) == "pass"  # the lossy behaviour we avoid


def test_pap_decrypt_multi_block() -> None:
    """A password longer than one 16-octet block round-trips through pyrad's PwCrypt."""
    password = b"a-rather-long-password-of-forty-octets!!"
    packet = AuthPacket(code=AccessRequest, secret=PAP_SECRET, authenticator=PAP_AUTHENTICATOR)
    hidden = packet.PwCrypt(password)
    assert len(hidden) == 48
    assert decrypt_user_password(hidden, PAP_SECRET, PAP_AUTHENTICATOR) == password


@pytest.mark.parametrize("length", [0, 1, 15, 17, 31, 144, 256])
def test_pap_decrypt_rejects_bad_lengths(length: int) -> None:
    """User-Password of length 0, > 128 or not a multiple of 16 raises CryptoInputError."""
    with pytest.raises(CryptoInputError):
        decrypt_user_password(bytes(length), PAP_SECRET, PAP_AUTHENTICATOR)


def test_pap_decrypt_accepts_max_length() -> None:
    """A 128-octet User-Password (the RFC 2865 maximum) is accepted."""
    assert decrypt_user_password(bytes(128), PAP_SECRET, PAP_AUTHENTICATOR) is not None


def test_pap_decrypt_rejects_bad_authenticator() -> None:
    """A Request Authenticator that is not 16 octets raises CryptoInputError."""
    with pytest.raises(CryptoInputError):
        decrypt_user_password(PAP_HIDDEN, PAP_SECRET, PAP_AUTHENTICATOR[:15])


@given(
    password=st.binary(min_size=1, max_size=128).filter(lambda p: not p.endswith(b"\x00")),
    secret=st.binary(min_size=1, max_size=64),
    authenticator=st.binary(min_size=16, max_size=16),
)
def test_pap_decrypt_inverts_pyrad_pwcrypt(
    password: bytes, secret: bytes, authenticator: bytes
) -> None:
    """decrypt_user_password inverts pyrad's PwCrypt for any password without trailing NUL."""
    packet = AuthPacket(code=AccessRequest, secret=secret, authenticator=authenticator)
    hidden = packet.PwCrypt(password)
    assert decrypt_user_password(hidden, secret, authenticator) == password


# ============================== argon2 ======================================


def test_argon2_round_trip() -> None:
    """A freshly hashed password verifies and needs no rehash."""
    stored = hash_password("s3cret-Pässword")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(stored, "s3cret-Pässword".encode())
    assert not needs_rehash(stored)


def test_argon2_wrong_password_false() -> None:
    """A wrong password returns False rather than raising."""
    stored = hash_password("s3cret")
    assert verify_password(stored, b"s3creT") is False
    assert verify_password(stored, b"") is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$invalid",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=65536,t=3,p=4$\u00e9\u00e9$\u00e9",
    ],
)
def test_argon2_malformed_hash_false(stored: str) -> None:
    """A malformed or foreign stored hash makes verify False and needs_rehash True."""
    assert verify_password(stored, b"s3cret") is False
    assert needs_rehash(stored) is True


def test_argon2_null_hash_false() -> None:
    """A NULL hash column (None) is treated as unusable, not as a crash."""
    assert verify_password(None, b"s3cret") is False  # type: ignore[arg-type]
    assert needs_rehash(None) is True  # type: ignore[arg-type]


def test_argon2_non_utf8_password_false() -> None:
    """Non-UTF-8 password octets just fail to verify, no UnicodeDecodeError."""
    stored = hash_password("s3cret")
    assert verify_password(stored, b"s3cr\xffet\x80") is False


def test_argon2_needs_rehash_for_weaker_parameters() -> None:
    """A hash made with other (weaker) parameters is reported for rehashing but verifies."""
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("s3cret")
    assert verify_password(weak, b"s3cret")
    assert needs_rehash(weak)


# ============================== CHAP ========================================

CHAP_AUTHENTICATOR = RFC2865_CHAP_PACKET[4:20]
# RFC 1994 MD5(0x2a + b"flopsy-pass" + CHAP_AUTHENTICATOR), computed with
# `openssl md5` over the hand-assembled 28 octets, not with this code.
CHAP_KNOWN_RESPONSE = h("3374585183923be8bdcd6b2c5a3a10f2")


def test_chap_known_answer() -> None:
    """chap_response/verify_chap match an independently computed RFC 1994 digest."""
    assert chap_response(0x2A, b"flopsy-pass", CHAP_AUTHENTICATOR) == CHAP_KNOWN_RESPONSE
    chap_password = b"\x2a" + CHAP_KNOWN_RESPONSE
    assert verify_chap(chap_password, CHAP_AUTHENTICATOR, b"flopsy-pass") is True


def test_chap_wrong_password_false() -> None:
    """A wrong password, ident or challenge makes verify_chap return False."""
    good = b"\x2a" + CHAP_KNOWN_RESPONSE
    assert verify_chap(good, CHAP_AUTHENTICATOR, b"flopsy-pasS") is False
    assert verify_chap(b"\x2b" + CHAP_KNOWN_RESPONSE, CHAP_AUTHENTICATOR, b"flopsy-pass") is False
    assert verify_chap(good, CHAP_AUTHENTICATOR[::-1], b"flopsy-pass") is False


@pytest.mark.parametrize("length", [0, 1, 16, 18, 19])
def test_chap_wrong_length_raises(length: int) -> None:
    """A CHAP-Password that is not 17 octets raises CryptoInputError."""
    with pytest.raises(CryptoInputError):
        verify_chap(bytes(length), CHAP_AUTHENTICATOR, b"flopsy-pass")


def test_chap_short_challenge_raises() -> None:
    """A challenge shorter than RFC 2865's 5-octet CHAP-Challenge minimum raises."""
    with pytest.raises(CryptoInputError):
        verify_chap(b"\x2a" + CHAP_KNOWN_RESPONSE, b"1234", b"flopsy-pass")


def test_chap_rfc2865_packet_attribute_is_well_formed() -> None:
    """The RFC 2865 7.2 CHAP-Password (ident 0x16) is accepted and checked, not rejected."""
    # Attributes start at offset 20: User-Name (1), then CHAP-Password (3).
    assert RFC2865_CHAP_PACKET[20:22] == b"\x01\x08"
    assert RFC2865_CHAP_PACKET[22:28] == b"flopsy"
    assert RFC2865_CHAP_PACKET[28:30] == b"\x03\x13"
    chap_password = RFC2865_CHAP_PACKET[30:47]
    assert chap_password[0] == 0x16
    # The RFC does not publish flopsy's password, so only a negative check.
    assert verify_chap(chap_password, CHAP_AUTHENTICATOR, b"flopsy") is False


# ============================== MS-CHAPv2 ===================================


def test_rfc2759_password_hashes() -> None:
    """NtPasswordHash and HashNtPasswordHash match RFC 2759 9.2."""
    assert nt_password_hash(PASSWORD) == PASSWORD_HASH
    assert hash_nt_password_hash(PASSWORD_HASH) == PASSWORD_HASH_HASH


def test_rfc2759_challenge_hash() -> None:
    """ChallengeHash matches the RFC 2759 9.2 Challenge."""
    assert challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USERNAME) == CHALLENGE


def test_rfc2759_nt_response() -> None:
    """ChallengeResponse and GenerateNTResponse match the RFC 2759 9.2 NT-Response."""
    assert challenge_response(CHALLENGE, PASSWORD_HASH) == NT_RESPONSE
    assert generate_nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USERNAME, PASSWORD_HASH) == (
        NT_RESPONSE
    )


def test_rfc2759_authenticator_response() -> None:
    """GenerateAuthenticatorResponse yields the RFC 2759 9.2 "S=407A..." string."""
    result = generate_authenticator_response(
        PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTH_CHALLENGE, USERNAME
    )
    assert result == AUTHENTICATOR_RESPONSE
    assert len(result) == 42


def test_verify_mschap2_rfc_vector_success() -> None:
    """The RFC 2759 9.2 response verifies and yields ident + the S= authenticator response."""
    response = parse_mschap2_response(rfc_mschap2_attr(ident=0x07))
    result = verify_mschap2(PASSWORD_HASH, USERNAME, AUTH_CHALLENGE, response)
    assert result == b"\x07" + AUTHENTICATOR_RESPONSE


def test_verify_mschap2_with_domain_prefix() -> None:
    """A DOMAIN\\User name verifies like User, since RFC 2759 hashes the stripped name."""
    response = parse_mschap2_response(rfc_mschap2_attr())
    result = verify_mschap2(PASSWORD_HASH, b"EXAMPLE\\User", AUTH_CHALLENGE, response)
    assert result == b"\x07" + AUTHENTICATOR_RESPONSE


def test_verify_mschap2_wrong_password_none() -> None:
    """A wrong password, user name or challenge makes verify_mschap2 return None."""
    response = parse_mschap2_response(rfc_mschap2_attr())
    assert (
        verify_mschap2(nt_password_hash("clientpass"), USERNAME, AUTH_CHALLENGE, response) is None
    )
    assert verify_mschap2(PASSWORD_HASH, b"user", AUTH_CHALLENGE, response) is None
    assert verify_mschap2(PASSWORD_HASH, USERNAME, AUTH_CHALLENGE[::-1], response) is None


def test_verify_mschap2_bad_challenge_raises() -> None:
    """An MS-CHAP-Challenge that is not 16 octets raises CryptoInputError."""
    response = parse_mschap2_response(rfc_mschap2_attr())
    with pytest.raises(CryptoInputError):
        verify_mschap2(PASSWORD_HASH, USERNAME, AUTH_CHALLENGE[:8], response)


def test_verify_mschap2_bad_nt_hash_raises() -> None:
    """A stored NT hash that is not 16 octets raises CryptoInputError."""
    response = parse_mschap2_response(rfc_mschap2_attr())
    with pytest.raises(CryptoInputError):
        verify_mschap2(PASSWORD_HASH[:15], USERNAME, AUTH_CHALLENGE, response)


def test_parse_mschap2_response_fields() -> None:
    """parse_mschap2_response splits ident, flags, peer challenge and NT-Response."""
    response = parse_mschap2_response(rfc_mschap2_attr(ident=0xAB))
    assert response == MSCHAP2Response(
        ident=0xAB, flags=0, peer_challenge=PEER_CHALLENGE, nt_response=NT_RESPONSE
    )


@pytest.mark.parametrize("length", [0, 49, 51, 52])
def test_parse_mschap2_response_wrong_length_raises(length: int) -> None:
    """An MS-CHAP2-Response value that is not 50 octets raises CryptoInputError."""
    with pytest.raises(CryptoInputError):
        parse_mschap2_response(bytes(length))


@pytest.mark.parametrize(
    ("name", "stripped"),
    [
        (b"User", b"User"),
        (b"EXAMPLE\\User", b"User"),
        (b"A\\B\\User", b"User"),
        (b"EXAMPLE\\", b""),
        (b"user@example.com", b"user@example.com"),
    ],
)
def test_strip_domain(name: bytes, stripped: bytes) -> None:
    """strip_domain removes a backslash domain prefix and leaves realms alone."""
    assert strip_domain(name) == stripped


def test_expand_des_key_odd_parity() -> None:
    """Expanded DES keys carry the 56 key bits and odd parity in every octet."""
    for key7 in (bytes(7), b"\xff" * 7, PASSWORD_HASH[:7], PASSWORD_HASH[7:14]):
        key8 = expand_des_key(key7)
        assert len(key8) == 8
        assert all(bin(octet).count("1") % 2 == 1 for octet in key8)
        bits = "".join(f"{octet:08b}"[:7] for octet in key8)
        assert int(bits, 2).to_bytes(7, "big") == key7


# ============================== MPPE (RFC 3079) =============================


def test_rfc3079_master_key() -> None:
    """GetMasterKey matches the RFC 3079 3.5.3 MasterKey."""
    assert master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY


def test_rfc3079_send_start_key_is_server_send() -> None:
    """RFC 3079's SendStartKey128 is GetAsymmetricStartKey(IsSend=TRUE, IsServer=TRUE).

    RFC 3079 3.3 derives MasterSendKey with IsServer=TRUE, so its sample
    SendStartKey is the server's send key (Magic3), which is the client's
    receive key, not the client's send key.
    """
    assert asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=True) == (
        SEND_START_KEY_128
    )
    assert asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=False) == (
        SEND_START_KEY_128
    )
    assert asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=False) != (
        SEND_START_KEY_128
    )
    assert asymmetric_start_key(MASTER_KEY, 8, is_send=True, is_server=True) == SEND_START_KEY_40


def test_mppe_keys_are_server_side_pair() -> None:
    """mppe_keys returns (server send, server recv): Send-Key == client recv, and vice versa."""
    send_key, recv_key = mppe_keys(PASSWORD_HASH, NT_RESPONSE)
    assert send_key == SEND_START_KEY_128
    assert send_key == asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=False)
    assert recv_key == asymmetric_start_key(MASTER_KEY, 16, is_send=False, is_server=True)
    assert recv_key == asymmetric_start_key(MASTER_KEY, 16, is_send=True, is_server=False)
    assert send_key != recv_key
    assert len(send_key) == len(recv_key) == 16


@pytest.mark.parametrize("key_len", [0, 7, 17, 20])
def test_asymmetric_start_key_bad_length_raises(key_len: int) -> None:
    """Key lengths outside RFC 3079's 8 to 16 octets raise CryptoInputError."""
    with pytest.raises(CryptoInputError):
        asymmetric_start_key(MASTER_KEY, key_len, is_send=True, is_server=True)


def test_mppe_key_salt_encryption_via_pyrad() -> None:
    """pyrad's SaltCrypt (encrypt=2) adds salt + length prefix + padding and round-trips."""
    send_key, _ = mppe_keys(PASSWORD_HASH, NT_RESPONSE)
    request = AuthPacket(code=AccessRequest, secret=b"testing123", authenticator=AUTH_CHALLENGE)
    reply = request.CreateReply()
    wire = reply.SaltCrypt(send_key)
    # 2 octets salt + 32 octets (1 length + 16 key + 15 padding), RFC 2548 2.4.2.
    assert len(wire) == 34
    assert wire[0] & 0x80
    assert reply.SaltDecrypt(wire) == send_key


# ============================== properties ==================================


@given(
    attr=st.binary(min_size=50, max_size=50),
    username=st.binary(max_size=64),
    challenge=st.binary(min_size=16, max_size=16),
)
def test_verify_mschap2_random_responses_return_none(
    attr: bytes, username: bytes, challenge: bytes
) -> None:
    """verify_mschap2 never raises and returns None for random 50-octet responses."""
    response = parse_mschap2_response(attr)
    assert verify_mschap2(PASSWORD_HASH, username, challenge, response) is None


@given(attr=st.binary(max_size=300).filter(lambda b: len(b) != 50))
def test_parse_mschap2_response_only_raises_crypto_input_error(attr: bytes) -> None:
    """parse_mschap2_response raises CryptoInputError, and nothing else, for other lengths."""
    with pytest.raises(CryptoInputError):
        parse_mschap2_response(attr)


@given(
    chap_password=st.binary(min_size=17, max_size=17),
    challenge=st.binary(min_size=5, max_size=64),
    cleartext=st.binary(max_size=64),
)
def test_verify_chap_random_input_never_raises(
    chap_password: bytes, challenge: bytes, cleartext: bytes
) -> None:
    """verify_chap returns a bool and never raises for well-sized random input."""
    assert verify_chap(chap_password, challenge, cleartext) in (True, False)


# ============================== MS-CHAPv1 ===================================
# RFC 2433 appendix B.2 (hash example, password "MyPw") and RFC 3079 section 2.5 (MS-CHAPv1
# key derivation, password "clientPass": NtPasswordHash and NtPasswordHashHash).
V1_PASSWORD = "MyPw"
V1_CHALLENGE = h("102DB5DF085D3041")
V1_PASSWORD_HASH = h("FC156AF7EDCD6C0EDDE3337D427F4EAC")
V1_NT_RESPONSE = h("4E9D3C8F9CFD385D5BF4D3246791956CA4C351AB409A3D61")


def v1_attr(flags: int = 1, nt_response: bytes = V1_NT_RESPONSE, ident: int = 5) -> bytes:
    """An MS-CHAP-Response value: ident, flags, 24-octet LM-Response (zeros), NT-Response."""
    return bytes((ident, flags)) + bytes(24) + nt_response


def test_mschap1_rfc2433_vectors() -> None:
    """NtPasswordHash and the NT-Response of RFC 2433 appendix B.2."""
    assert nt_password_hash(V1_PASSWORD) == V1_PASSWORD_HASH
    assert challenge_response(V1_CHALLENGE, V1_PASSWORD_HASH) == V1_NT_RESPONSE


def test_verify_mschap1_accepts_rfc_response_and_rejects_others() -> None:
    """The RFC 2433 response verifies; another password or challenge does not."""
    response = parse_mschap1_response(v1_attr())
    assert response == MSCHAP1Response(ident=5, flags=1, nt_response=V1_NT_RESPONSE)
    assert response.uses_nt
    assert verify_mschap1(V1_PASSWORD_HASH, V1_CHALLENGE, response)
    assert not verify_mschap1(nt_password_hash("mypw"), V1_CHALLENGE, response)
    assert not verify_mschap1(V1_PASSWORD_HASH, V1_CHALLENGE[::-1], response)
    assert not parse_mschap1_response(v1_attr(flags=0)).uses_nt


@pytest.mark.parametrize("length", [0, 49, 51])
def test_parse_mschap1_response_rejects_wrong_length(length: int) -> None:
    """An MS-CHAP-Response that is not 50 octets is malformed."""
    with pytest.raises(CryptoInputError):
        parse_mschap1_response(bytes(length))


def test_verify_mschap1_rejects_16_octet_challenge() -> None:
    """MS-CHAPv1's challenge is 8 octets; a v2-sized one is malformed, not a wrong password."""
    with pytest.raises(CryptoInputError):
        verify_mschap1(V1_PASSWORD_HASH, bytes(16), parse_mschap1_response(v1_attr()))


def test_mschap1_mppe_keys_rfc3079() -> None:
    """MS-CHAP-MPPE-Keys: 8 zero octets of LM key, then RFC 3079's NtPasswordHashHash."""
    keys = mschap1_mppe_keys(PASSWORD_HASH)  # "clientPass", as in RFC 3079 2.5
    assert keys == bytes(8) + PASSWORD_HASH_HASH
