"""Signing keys: generation, encrypted storage, the kid rule, and COSE_Key export/import.

Root keys are RSA-3072 and issuer keys RSA-2048 (e = 65537, credential-v1 §1); P-256 keys exist only
so that tests can produce ``unsupported_alg`` objects. Private keys are stored only as encrypted
PKCS#8 PEM. The kid of a key is the first 8 bytes of SHA-256 over its DER SubjectPublicKeyInfo, so
anyone holding the public key can recompute it and nobody can choose it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustcore import cbor_det, cbor_strict
from trustcore.errors import N_, TemplatedError, TrustcoreError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

RSA_E = 65537
ROOT_BITS = 3072
ISSUER_BITS = 2048
RSA_ALLOWED_BITS = (2048, 3072)
KID_LEN = 8
COSE_KEY_MAX_SIZE = 1024

KTY_EC2 = 2
KTY_RSA = 3
CRV_P256 = 1


class KeyFormatError(TemplatedError, ValueError):
    """A COSE_Key that is not one of the shapes credential-v1 allows."""


def generate_rsa(bits: int) -> rsa.RSAPrivateKey:
    """A fresh RSA key with e = 65537 and a 2048- or 3072-bit modulus."""
    if bits not in RSA_ALLOWED_BITS:
        raise TrustcoreError(N_("RSA keys must be 2048 or 3072 bits, not {bits}"), bits=bits)
    return rsa.generate_private_key(public_exponent=RSA_E, key_size=bits)


def generate_p256() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (ES256; optional in the contract and not accepted by our verifiers)."""
    return ec.generate_private_key(ec.SECP256R1())


_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, _SPKI)


def kid_of(public_key: PublicKey) -> bytes:
    """kid = SHA-256(DER SubjectPublicKeyInfo)[:8] (credential-v1 §1)."""
    return hashlib.sha256(spki_der(public_key)).digest()[:KID_LEN]


def _uint_bytes(value: int, length: int | None = None) -> bytes:
    return value.to_bytes(length if length is not None else max(1, (value.bit_length() + 7) // 8), "big")


def cose_key_map(public_key: PublicKey) -> dict[int, Any]:
    """The COSE_Key map (RFC 9052 §7): RSA {1:3, -1:n, -2:e}; EC2 P-256 {1:2, -1:1, -2:x, -3:y}.

    Integers are big-endian without leading zero bytes; EC coordinates are always 32 bytes.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {1: KTY_RSA, -1: _uint_bytes(numbers.n), -2: _uint_bytes(numbers.e)}
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        point = public_key.public_numbers()
        return {1: KTY_EC2, -1: CRV_P256, -2: _uint_bytes(point.x, 32), -3: _uint_bytes(point.y, 32)}
    raise TrustcoreError(N_("only RSA and P-256 public keys can be exported as COSE_Key"))


def cose_key_bytes(public_key: PublicKey) -> bytes:
    """The COSE_Key in deterministic CBOR: the pinned-root file format (``root.cose_key``)."""
    return cbor_det.dumps(cose_key_map(public_key))


def public_key_from_cose(obj: object) -> PublicKey:
    """Rebuild a public key from a decoded COSE_Key map, accepting only what readers accept.

    RSA: -1 (n) and -2 (e) bstr, e exactly 65537 (encoded 01 00 01), n of 256 or 384 bytes with no
    leading zero byte (so exactly 2048 or 3072 bits). EC2: crv 1 (P-256), x and y of 32 bytes each,
    and the point must be on the curve. Other labels (kid, alg, key_ops, ...) are ignored.
    """
    if not isinstance(obj, dict):
        raise KeyFormatError(N_("COSE_Key is not a map"))
    kty = obj.get(1)
    if kty == KTY_RSA and not isinstance(kty, bool):
        n, e = obj.get(-1), obj.get(-2)
        if not isinstance(n, bytes) or not isinstance(e, bytes):
            raise KeyFormatError(N_("RSA COSE_Key needs n (-1) and e (-2) as byte strings"))
        if e != _uint_bytes(RSA_E):
            raise KeyFormatError(N_("RSA public exponent must be 65537"))
        if len(n) * 8 not in RSA_ALLOWED_BITS or n[0] < 0x80:
            raise KeyFormatError(N_("RSA modulus must be exactly 2048 or 3072 bits, without a leading zero"))
        try:
            return rsa.RSAPublicNumbers(RSA_E, int.from_bytes(n, "big")).public_key()
        except ValueError as exc:
            raise KeyFormatError(N_("RSA key rejected: {reason}"), reason=str(exc)) from None
    if kty == KTY_EC2 and not isinstance(kty, bool):
        crv, x, y = obj.get(-1), obj.get(-2), obj.get(-3)
        if crv != CRV_P256 or isinstance(crv, bool):
            raise KeyFormatError(N_("EC2 COSE_Key must be on P-256 (crv 1)"))
        if not isinstance(x, bytes) or not isinstance(y, bytes) or len(x) != 32 or len(y) != 32:
            raise KeyFormatError(N_("EC2 COSE_Key needs 32-byte x (-2) and y (-3)"))
        try:
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
        except ValueError:
            raise KeyFormatError(N_("EC2 point is not on P-256")) from None
    raise KeyFormatError(N_("unsupported COSE_Key type (kty must be 3 RSA or 2 EC2)"))


def load_cose_key(data: bytes) -> PublicKey:
    """Parse a CBOR COSE_Key file (strictly, ≤ 1024 bytes) into a public key."""
    if len(data) > COSE_KEY_MAX_SIZE:
        raise KeyFormatError(N_("COSE_Key file larger than 1024 bytes"))
    try:
        obj = cbor_strict.decode(data)
    except cbor_strict.CborStrictError as exc:
        raise KeyFormatError(N_("COSE_Key is not valid CBOR: {reason}"), reason=exc) from None
    return public_key_from_cose(obj)


def public_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, _SPKI)


def encrypted_pem(private_key: PrivateKey, passphrase: bytes) -> bytes:
    """Encrypted PKCS#8 PEM (cryptography's best available encryption). Clear text is not offered."""
    if not passphrase:
        raise TrustcoreError(N_("refusing to write a private key without a passphrase"))
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def write_new_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Create ``path`` exclusively (never overwrite); private files get mode 0600 from the start."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o600 if private else 0o644)
    except FileExistsError:
        raise TrustcoreError(N_("{path} already exists; refusing to overwrite it"), path=path) from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_private_key(path: Path, private_key: PrivateKey, passphrase: bytes) -> None:
    write_new_file(path, encrypted_pem(private_key, passphrase), private=True)


def load_private_key(path: Path, get_passphrase: Callable[[], bytes]) -> PrivateKey:
    """Load an RSA or P-256 private key from PEM, asking for the passphrase only if it is encrypted.

    A clear-text key made by another tool is still accepted (the CLI warns about it); a wrong
    passphrase, or a key readers could not use (RSA other than 2048/3072-bit with e = 65537), is a
    clean ``TrustcoreError``.
    """
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise TrustcoreError(
            N_("cannot read private key {path}: {reason}"), path=path, reason=exc.strerror
        ) from None
    encrypted = b"ENCRYPTED" in pem
    try:
        key = serialization.load_pem_private_key(pem, password=get_passphrase() if encrypted else None)
    except (ValueError, TypeError):
        if encrypted:
            raise TrustcoreError(
                N_("cannot decrypt {path}: wrong passphrase or damaged key file"), path=path
            ) from None
        raise TrustcoreError(N_("{path} is not a PEM private key"), path=path) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.public_key().public_numbers().e != RSA_E or key.key_size not in RSA_ALLOWED_BITS:
            raise TrustcoreError(N_("{path}: RSA keys must have e = 65537 and 2048 or 3072 bits"), path=path)
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise TrustcoreError(N_("{path}: only RSA and P-256 private keys are supported"), path=path)


def is_encrypted_pem(path: Path) -> bool:
    try:
        return b"ENCRYPTED" in path.read_bytes()
    except OSError:
        return False
