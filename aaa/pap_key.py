"""The PAP verifier key: 32 random octets in a file only radbill reads, outside the database.

Made at the first start (mode 0600, written aside and hard-linked into place, so two
workers starting together agree on one complete key) and read at every later one. Losing
the file costs nothing but speed: every verifier stops matching, the next login of each
subscriber pays argon2 once more and writes a verifier under the new key. A copy of the
database without this file gives an attacker no faster way to test a password than argon2
(README, "PAP verifiers").
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from aaa.errors import PapKeyError

log = logging.getLogger(__name__)

KEY_BYTES = 32


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, creating the file first if it does not exist.

    Written to a temporary file and hard-linked into place, so a second worker starting
    at the same moment either finds no file or a complete one, never a half-written one.
    """
    if path.exists():
        return read_key(path)
    key = os.urandom(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise PapKeyError(f"cannot create the PAP key file {path}: {exc.strerror}") from None
    try:
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_key(path)  # another worker won the race: use its key
        except OSError as exc:
            raise PapKeyError(f"cannot create the PAP key file {path}: {exc.strerror}"
                              ) from None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("created the PAP verifier key %s (keep it with the server, not with backups "
             "of the database)", path)
    return key


def read_key(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except OSError as exc:
        raise PapKeyError(f"cannot read the PAP key file {path}: {exc.strerror}") from None
    if len(key) < KEY_BYTES:
        raise PapKeyError(f"the PAP key file {path} holds {len(key)} octets, not "
                          f"{KEY_BYTES}: delete it to make a new one (logins then pay argon2 "
                          "once more)")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the PAP key file %s is readable by others (mode %o): chmod 600 it",
                    path, stat.S_IMODE(mode))
    return key[:KEY_BYTES]
