"""The issuer's DESFire master keys (docs/card-layout.md): generation, encrypted file, reader share.

Four AES-128 masters, one per role: ``amk`` (application master key, issuer only), ``read`` (read
key; every reader holds it), ``uid`` (its AN10922 derivative, key 2, is the same on every card and
unlocks GetCardUID only) and ``picc`` (PICC master, issuer only). A reader receives exactly
:meth:`CardMasterKeys.reader_share`: the read-key master and the *derived* UID key, never a master
it does not need (``card_layout.ReaderKeys`` on the device).

File format ``cbcc-card-keys/1`` (UTF-8 JSON, written once, mode 0600)::

    {"format": "cbcc-card-keys/1", "key_version": 1, "aid": "564331", "sysid": "CBCCVC",
     "kdf": {"alg": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "aead": "AES-256-GCM", "nonce": "<base64, 12 bytes>", "ciphertext": "<base64>"}

The plaintext is ``amk || read || uid || picc`` (64 bytes). The AES-256 key is scrypt(passphrase,
salt); every field except ``ciphertext`` is bound as associated data (canonical JSON), so a header
edited to weaken the KDF or to relabel the key generation does not decrypt.

Why not ``keys.encrypted_pem``: encrypted PKCS#8 is a container for *asymmetric* private keys and
``cryptography`` offers no way to put raw symmetric keys in it. The AEAD layout mirrors
``gateway/secretbox.py`` (AES-256-GCM with the context as associated data); the key comes from a
passphrase here, hence scrypt.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from messages import _
from provisioning.errors import ProvisioningError

FORMAT = "cbcc-card-keys/1"
AID = b"VC1"  # 56 43 31 as sent on the wire (card_layout.AID)
SYSID = b"CBCCVC"  # card_layout.SYSID
KEY_LEN = 16
ROLES = ("amk", "read", "uid", "picc")

SCRYPT_N = 1 << 17  # 128 MiB with r = 8: about half a second on a laptop
SCRYPT_R = 8
SCRYPT_P = 1
_N_RANGE = (1 << 14, 1 << 20)
SALT_LEN = 16
NONCE_LEN = 12
MAX_FILE = 4096


class CardKeysError(ProvisioningError):
    """A card-keys file that cannot be used (format, parameters, passphrase)."""


# ---------------------------------------------------------------- AN10922 (host side)


def _ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 — AN10922 key diversification is defined on single AES blocks (ECB of one block)
    return enc.update(block) + enc.finalize()


def _cbc_last(key: bytes, data: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    return (enc.update(data) + enc.finalize())[-16:]


def _dbl(block: bytes) -> bytes:
    n = int.from_bytes(block, "big") << 1
    if n >> 128:
        n = (n & ((1 << 128) - 1)) ^ 0x87
    return n.to_bytes(16, "big")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def an10922_aes128(master: bytes, m: bytes) -> bytes:
    """NXP AN10922 §2.2 AES-128 diversification (same as ``desfire_crypto.an10922_aes128``)."""
    if len(master) != KEY_LEN:
        raise ValueError("AES-128 master key must be 16 bytes")
    if not 1 <= len(m) <= 31:
        raise ValueError("diversification input must be 1..31 bytes")
    k1 = _dbl(_ecb(master, bytes(16)))
    k2 = _dbl(k1)
    d = b"\x01" + m
    if len(d) < 32:
        d = d + b"\x80" + bytes(31 - len(d))
        last = _xor(d[16:], k2)
    else:
        last = _xor(d[16:], k1)
    return _cbc_last(master, d[:16] + last)


def kcv(key: bytes) -> str:
    """Key check value: the first 3 bytes of AES-ECB(key, 0^16), in hex (for key ceremonies)."""
    return _ecb(key, bytes(16))[:3].hex()


# ---------------------------------------------------------------- keys


@dataclass(frozen=True)
class ReaderShare:
    """What one reader holds (``card_layout.ReaderKeys(read_master, uid_key)``)."""

    read_master: bytes
    uid_key: bytes


@dataclass(frozen=True)
class CardMasterKeys:
    amk: bytes
    read: bytes
    uid: bytes
    picc: bytes
    key_version: int = 1

    def __post_init__(self) -> None:
        values = [self.amk, self.read, self.uid, self.picc]
        if any(len(k) != KEY_LEN for k in values):
            raise CardKeysError(_("card master keys are AES-128: 16 bytes each"))
        if any(k == bytes(KEY_LEN) for k in values):
            raise CardKeysError(_("a card master key is all zeros (the factory default); refusing it"))
        if len(set(values)) != len(values):
            raise CardKeysError(_("the four card master keys must all differ (one master per role)"))
        if not 1 <= self.key_version <= 255:
            raise CardKeysError(_("key_version must be 1..255 (the DESFire key version byte)"))

    def uid_key(self) -> bytes:
        """Key 2: AN10922(M_uid, AID || SYSID), the same on every card."""
        return an10922_aes128(self.uid, AID + SYSID)

    def reader_share(self) -> ReaderShare:
        return ReaderShare(self.read, self.uid_key())

    def check_values(self) -> dict[str, str]:
        return {"amk": kcv(self.amk), "read": kcv(self.read), "uid": kcv(self.uid),
                "picc": kcv(self.picc), "uid_key": kcv(self.uid_key())}  # fmt: skip


def generate(key_version: int = 1) -> CardMasterKeys:
    amk, read, uid, picc = (os.urandom(KEY_LEN) for _ in ROLES)
    return CardMasterKeys(amk, read, uid, picc, key_version=key_version)


# ---------------------------------------------------------------- file


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise CardKeysError(_("card-keys file: {what} is not a base64 string", what=what))
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise CardKeysError(_("card-keys file: {what} is not valid base64", what=what)) from None


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    if not passphrase:
        raise CardKeysError(_("refusing an empty passphrase for the card keys"))
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def seal(keys: CardMasterKeys, passphrase: bytes, *, n: int = SCRYPT_N) -> bytes:
    """The encrypted file's bytes (``n`` is lowered only by tests)."""
    salt, nonce = os.urandom(SALT_LEN), os.urandom(NONCE_LEN)
    header: dict[str, Any] = {
        "format": FORMAT,
        "key_version": keys.key_version,
        "aid": AID.hex(),
        "sysid": SYSID.decode("ascii"),
        "kdf": {"alg": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)},
        "aead": "AES-256-GCM",
        "nonce": _b64(nonce),
    }
    key = _derive(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    plain = keys.amk + keys.read + keys.uid + keys.picc
    ct = AESGCM(key).encrypt(nonce, plain, _aad(header))
    doc = dict(header, ciphertext=_b64(ct))
    return (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode("ascii")


def _int(obj: dict[str, Any], name: str) -> int:
    v = obj.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise CardKeysError(_("card-keys file: {name} must be an integer", name=name))
    return v


def unseal(data: bytes, get_passphrase: Callable[[], bytes], *, source: str | None = None) -> CardMasterKeys:
    """Check the header strictly, then ask for the passphrase and decrypt; ``source`` names the
    file in messages."""
    source = source or _("card-keys file")
    if len(data) > MAX_FILE:
        raise CardKeysError(_("{source} is not a card-keys file (too large)", source=source))
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CardKeysError(_("{source} is not a card-keys file (not JSON)", source=source)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CardKeysError(_("{source} is not a {format} file", source=source, format=FORMAT))
    expected = {"format", "key_version", "aid", "sysid", "kdf", "aead", "nonce", "ciphertext"}
    if set(doc) != expected:
        raise CardKeysError(
            _("{source}: unexpected fields {fields}", source=source, fields=sorted(set(doc) ^ expected))
        )
    if doc["aid"] != AID.hex() or doc["sysid"] != SYSID.decode("ascii"):
        raise CardKeysError(
            _(
                "{source}: keys for another card layout (aid {aid}, sysid {sysid})",
                source=source,
                aid=doc["aid"],
                sysid=doc["sysid"],
            )
        )
    if doc["aead"] != "AES-256-GCM":
        raise CardKeysError(_("{source}: unsupported cipher {cipher!r}", source=source, cipher=doc["aead"]))
    kdf = doc["kdf"]
    if not isinstance(kdf, dict) or kdf.get("alg") != "scrypt" or set(kdf) != {"alg", "n", "r", "p", "salt"}:
        raise CardKeysError(_("{source}: unsupported key derivation", source=source))
    n, r, p = _int(kdf, "n"), _int(kdf, "r"), _int(kdf, "p")
    if not (_N_RANGE[0] <= n <= _N_RANGE[1] and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise CardKeysError(
            _("{source}: scrypt parameters out of range (n {n}, r {r}, p {p})", source=source, n=n, r=r, p=p)
        )
    salt = _unb64(kdf["salt"], "salt")
    nonce = _unb64(doc["nonce"], "nonce")
    ct = _unb64(doc["ciphertext"], "ciphertext")
    if len(salt) < SALT_LEN or len(nonce) != NONCE_LEN or len(ct) != 4 * KEY_LEN + 16:
        raise CardKeysError(_("{source}: damaged (salt, nonce or ciphertext length)", source=source))
    version = _int(doc, "key_version")
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    key = _derive(get_passphrase(), salt, n, r, p)
    try:
        plain = AESGCM(key).decrypt(nonce, ct, _aad(header))
    except InvalidTag:
        raise CardKeysError(
            _("cannot decrypt {source}: wrong passphrase or damaged file", source=source)
        ) from None
    amk, read, uid, picc = (plain[i : i + KEY_LEN] for i in range(0, 4 * KEY_LEN, KEY_LEN))
    return CardMasterKeys(amk, read, uid, picc, key_version=version)


def write_new(path: Path, keys: CardMasterKeys, passphrase: bytes, *, n: int = SCRYPT_N) -> None:
    """Create the file exclusively with mode 0600 (never overwrites)."""
    from trustcore import keys as keys_mod

    keys_mod.write_new_file(path, seal(keys, passphrase, n=n), private=True)


def load(path: Path, get_passphrase: Callable[[], bytes]) -> CardMasterKeys:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CardKeysError(
            _("cannot read card keys {path}: {reason}", path=path, reason=exc.strerror)
        ) from None
    return unseal(data, get_passphrase, source=str(path))
