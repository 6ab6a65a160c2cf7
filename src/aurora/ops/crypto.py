"""Optional backup encryption: AES-256-GCM with a key derived from a passphrase (scrypt).

The passphrase comes from `config.ops.backup_key` (env `AURORA_BACKUP_KEY`). A backup records
the KDF salt and parameters and a `key_check` token, so a wrong key is reported as such
before any blob is touched. Each blob is `MAGIC || nonce(12) || ciphertext+tag`, with the
plaintext's sha256 as associated data: a blob cannot be swapped for another one unnoticed.

The encryption record comes from the backup, so it is untrusted: `check_key_record` accepts
only what `new_key_record` writes (kdf "scrypt", cipher "AES-256-GCM", strict base64, a
16-byte salt, a key-check token of its exact length, n a power of two in [2, 2**17], r in
[1, 8], p in [1, 4], so scrypt needs at most 128 * n * r = 128 MiB) and raises a one-line
StoreError naming the field otherwise. `open_key_record` checks the record before using it.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from aurora.errors import CredentialsError, StoreError

MAGIC = b"AURORA-AESGCM-1\n"
_CHECK = b"aurora backup key check"
_N, _R, _P = 2**15, 8, 1
_SALT_BYTES = 16
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_CHECK_BYTES = len(MAGIC) + _NONCE_BYTES + len(_CHECK) + _TAG_BYTES
# the scrypt parameters accepted from a record: Aurora writes n=2**15, r=8, p=1; these bounds
# keep key derivation of a crafted record to 128 * n * r = 128 MiB of memory
MAX_N, MAX_R, MAX_P = 2**17, 8, 4


@dataclass(frozen=True)
class Cipher:
    """An AES-GCM cipher for one backup (key derived once)."""

    aead: AESGCM

    def encrypt(self, data: bytes, sha256: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return MAGIC + nonce + self.aead.encrypt(nonce, data, sha256.encode())

    def decrypt(self, blob: bytes, sha256: str, what: str) -> bytes:
        if not blob.startswith(MAGIC):
            raise StoreError(f"{what}: not an encrypted Aurora blob")
        body = blob[len(MAGIC):]
        try:
            return self.aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:],
                                     sha256.encode())
        except InvalidTag:
            raise StoreError(f"{what}: decryption failed (corrupt blob)") from None


def new_key_record(passphrase: str) -> tuple[Cipher, dict]:
    """A cipher with a fresh salt, and the record to store in the backup manifest."""
    salt = os.urandom(_SALT_BYTES)
    cipher = _derive(passphrase, salt, _N, _R, _P)
    record = {"kdf": "scrypt", "salt": base64.b64encode(salt).decode(), "n": _N, "r": _R,
              "p": _P, "cipher": "AES-256-GCM",
              "key_check": base64.b64encode(cipher.encrypt(_CHECK, "check")).decode()}
    return cipher, record


@dataclass(frozen=True)
class KeyRecord:
    """A checked encryption record: decoded salt and key-check token, scrypt parameters."""

    salt: bytes
    key_check: bytes
    n: int
    r: int
    p: int


def check_key_record(record: object, where: str) -> KeyRecord:
    """The decoded `record` when every field is as `new_key_record` writes it (see the
    module docstring); StoreError "`where`: field F ..." (one line) for the first field at
    fault. `where` names the record, e.g. "URL: backup.json: the encryption record"."""
    if not isinstance(record, dict):
        raise StoreError(f"{where} is missing or not an object")
    for name, expected in (("kdf", "scrypt"), ("cipher", "AES-256-GCM")):
        if record.get(name) != expected:
            raise StoreError(f"{where}: field {name} must be {expected!r}")
    salt = _b64_field(record, "salt", _SALT_BYTES, where)
    key_check = _b64_field(record, "key_check", _KEY_CHECK_BYTES, where)
    n = _int_field(record, "n", MAX_N, where)
    if n < 2 or n & (n - 1):
        raise StoreError(f"{where}: field n must be a power of two from 2 to {MAX_N}")
    return KeyRecord(salt, key_check, n, _int_field(record, "r", MAX_R, where),
                     _int_field(record, "p", MAX_P, where))


def _b64_field(record: dict, name: str, size: int, where: str) -> bytes:
    value = record.get(name)
    if not isinstance(value, str) or len(value) > 4 * size:  # never decode a huge string
        raise StoreError(f"{where}: field {name} must be base64 of {size} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise StoreError(f"{where}: field {name} is not valid base64") from None
    if len(data) != size:
        raise StoreError(f"{where}: field {name} must be base64 of {size} bytes, "
                         f"not {len(data)}")
    return data


def _int_field(record: dict, name: str, limit: int, where: str) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise StoreError(f"{where}: field {name} must be an integer from 1 to {limit}")
    return value


def open_key_record(passphrase: str, record: object,
                    where: str = "the encryption record") -> Cipher:
    """The cipher for an existing backup. StoreError naming `where` and the field if the
    record is malformed or out of bounds (`check_key_record`, checked before any key is
    derived); CredentialsError if the passphrase is wrong."""
    checked = check_key_record(record, where)
    cipher = _derive(passphrase, checked.salt, checked.n, checked.r, checked.p)
    try:
        cipher.decrypt(checked.key_check, "check", "key check")
    except StoreError:
        raise CredentialsError(
            "AURORA_BACKUP_KEY does not match the key this backup was encrypted with"
        ) from None
    return cipher


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> Cipher:
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
    return Cipher(AESGCM(key))
