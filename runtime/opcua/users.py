"""OPC UA users: roles, hashed passwords, and what each role may do.

    viewer    read, browse, subscribe
    operator  + write variables exposed as "operator", acknowledge and reset alarms
    engineer  + write variables exposed as "rw", reset task faults

Passwords are stored as scrypt hashes (`gridplc opcua hash-password`):

    scrypt$<log2 N>$<r>$<p>$<salt, base64>$<key, base64>

A config file never holds a password in clear text; a value that is not
such a hash is refused when the config is read.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

ROLES = ("viewer", "operator", "engineer")
RANK = {r: i for i, r in enumerate(ROLES)}

# who may write a variable of each exposure ("ro": nobody)
WRITE_ROLE = {"operator": "operator", "rw": "engineer"}
ACK_ROLE = "operator"
ALARM_RESET_ROLE = "operator"
TASK_RESET_ROLE = "engineer"

SCRYPT_LOG2_N = 15          # 32 MiB and ~0.1 s per check: slow for guessing, fine for a login
SCRYPT_R, SCRYPT_P = 8, 1
_KEY_LEN = 32


class PasswordHashError(ValueError):
    pass


def at_least(role: str, needed: str) -> bool:
    return RANK.get(role, -1) >= RANK[needed]


def hash_password(password: str, *, log2_n: int = SCRYPT_LOG2_N, salt: bytes | None = None) -> str:
    salt = os.urandom(16) if salt is None else salt
    key = _scrypt(password, salt, log2_n, SCRYPT_R, SCRYPT_P)
    b64 = lambda b: base64.b64encode(b).decode("ascii")   # noqa: E731
    return f"scrypt${log2_n}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    parts = text.split("$") if isinstance(text, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        raise PasswordHashError("not a password hash (make one with `gridplc opcua hash-password`); "
                                "passwords are never stored in clear text")
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise PasswordHashError("damaged password hash (make a new one with `gridplc opcua hash-password`)") from None
    if not (1 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16 and len(salt) >= 8 and len(key) == _KEY_LEN):
        raise PasswordHashError("password hash parameters out of range")
    return log2_n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    log2_n, r, p, salt, key = parse_hash(stored)
    return hmac.compare_digest(_scrypt(password, salt, log2_n, r, p), key)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_LEN,
                          maxmem=256 * n * r + (1 << 20))


@dataclass
class UserEntry:
    name: str
    role: str
    password_hash: str
    line: int = 0
