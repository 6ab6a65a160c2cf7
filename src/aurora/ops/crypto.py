"""Optional backup encryption: AES-256-GCM with a key derived from a passphrase (scrypt).

The passphrase comes from `config.ops.backup_key` (env `AURORA_BACKUP_KEY`). A backup records
the KDF salt and parameters and a `key_check` token, so a wrong key is reported as such
before any blob is touched. Each blob is `MAGIC || nonce(12) || ciphertext+tag`, with the
plaintext's sha256 as associated data: a blob cannot be swapped for another one unnoticed.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from aurora.errors import CredentialsError, StoreError

MAGIC = b"AURORA-AESGCM-1\n"
_CHECK = b"aurora backup key check"
_N, _R, _P = 2**15, 8, 1


@dataclass(frozen=True)
class Cipher:
    """An AES-GCM cipher for one backup (key derived once)."""

    aead: AESGCM

    def encrypt(self, data: bytes, sha256: str) -> bytes:
        nonce = os.urandom(12)
        return MAGIC + nonce + self.aead.encrypt(nonce, data, sha256.encode())

    def decrypt(self, blob: bytes, sha256: str, what: str) -> bytes:
        if not blob.startswith(MAGIC):
            raise StoreError(f"{what}: not an encrypted Aurora blob")
        body = blob[len(MAGIC):]
        try:
            return self.aead.decrypt(body[:12], body[12:], sha256.encode())
        except InvalidTag:
            raise StoreError(f"{what}: decryption failed (corrupt blob)") from None


def new_key_record(passphrase: str) -> tuple[Cipher, dict]:
    """A cipher with a fresh salt, and the record to store in the backup manifest."""
    salt = os.urandom(16)
    cipher = _derive(passphrase, salt, _N, _R, _P)
    record = {"kdf": "scrypt", "salt": base64.b64encode(salt).decode(), "n": _N, "r": _R,
              "p": _P, "cipher": "AES-256-GCM",
              "key_check": base64.b64encode(cipher.encrypt(_CHECK, "check")).decode()}
    return cipher, record


def open_key_record(passphrase: str, record: dict) -> Cipher:
    """The cipher for an existing backup; CredentialsError if the passphrase is wrong."""
    cipher = _derive(passphrase, base64.b64decode(record["salt"]), int(record["n"]),
                     int(record["r"]), int(record["p"]))
    try:
        cipher.decrypt(base64.b64decode(record["key_check"]), "check", "key check")
    except StoreError:
        raise CredentialsError(
            "AURORA_BACKUP_KEY does not match the key this backup was encrypted with"
        ) from None
    return cipher


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> Cipher:
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
    return Cipher(AESGCM(key))
