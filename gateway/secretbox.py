"""Reader keys at rest: AES-256-GCM under a master key kept outside the database.

The database (and its backups) then hold no usable reader key; whoever has only a dump cannot
forge events. The master key is a 32-byte file with mode 0600 (on its own volume, or replaced by
an HSM-backed file in production). The reader id is bound as associated data, so a key row copied
onto another reader's row does not decrypt.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from messages import _

VERSION = b"\x01"


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._aead = AESGCM(master_key)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> SecretBox:
        if not path.exists():
            if not create:
                raise FileNotFoundError(
                    _("master key file {path} does not exist (run `cbcc gateway init`)", path=path)
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        if path.stat().st_mode & 0o077:
            raise PermissionError(
                _("master key file {path} must be private to its owner (chmod 600)", path=path)
            )
        return cls(path.read_bytes())

    def seal(self, secret: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return VERSION + nonce + self._aead.encrypt(nonce, secret, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        if len(blob) < 1 + 12 + 16 or blob[:1] != VERSION:
            raise ValueError("not a sealed secret")
        return self._aead.decrypt(blob[1:13], blob[13:], context.encode())
