"""Helpers shared by the host (CPython) tests: keys generated once per session, sample claims.

RSA key generation costs tens of milliseconds (3072-bit: more), so keys are cached by role.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustcore import cbor_det, cose, keys, revocation, trust_list
from trustcore.timeutil import parse_iso_utc

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

NOW = parse_iso_utc("2026-06-01T00:00:00Z")
T2024 = parse_iso_utc("2024-01-01T00:00:00Z")
T2025 = parse_iso_utc("2025-01-01T00:00:00Z")
T2035 = parse_iso_utc("2035-01-01T00:00:00Z")
T2044 = parse_iso_utc("2044-01-01T00:00:00Z")
UID = bytes.fromhex("04a1b2c3d4e5f6")


@functools.cache
def rsa_key(role: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    return keys.generate_rsa(bits)


@functools.cache
def p256_key(role: str) -> ec.EllipticCurvePrivateKey:
    return keys.generate_p256()


def root_key() -> rsa.RSAPrivateKey:
    return rsa_key("root", 3072)


def clear_pem(key: keys.PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, only for handing a test key to pycose/cwt in memory."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def claims(**over: Any) -> dict[int, Any]:
    """A valid claims map for issuer 'a' (serials 1000…99999); ``k<N>=value`` overrides key N."""
    m: dict[int, Any] = {
        1: 1,
        2: 1001,
        3: "CB-00001001",
        4: "Nguyễn Thị Hương",
        5: "000.00.36.H40",
        6: "Phòng Tổ chức cán bộ",
        7: "Trưởng phòng",
        8: "Chuyên viên chính",
        9: T2025,
        10: T2035,
        11: UID,
        12: 1,
    }
    for k, v in over.items():
        m[int(k[1:])] = v
    return m


def record(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "serial": 1001,
        "staff": "CB-00001001",
        "name": "Nguyễn Thị Hương",
        "agency": "000.00.36.H40",
        "unit": "Phòng Tổ chức cán bộ",
        "position": "Trưởng phòng",
        "title": "Chuyên viên chính",
        "issued_at": "2025-01-01T00:00:00Z",
        "expires_at": "2035-01-01T00:00:00Z",
        "uid": "04A1B2C3D4E5F6",
        "gen": 1,
    }
    r.update(over)
    return r


@dataclass(frozen=True)
class Setup:
    root: rsa.RSAPrivateKey
    issuer: rsa.RSAPrivateKey
    entry: trust_list.IssuerEntry
    trust_blob: bytes
    trust: trust_list.TrustList
    crl: revocation.RevocationList


@functools.cache
def setup() -> Setup:
    """Root, one RSA issuer 'a' (serials 1000…99999, keys valid 2024–2044), trust list seq 5."""
    root = root_key()
    issuer = rsa_key("a")
    entry = trust_list.IssuerEntry(issuer.public_key(), T2024, T2044, 1000, 100000, "Sở Nội vụ tỉnh Nam Định")
    es_entry = trust_list.IssuerEntry(
        p256_key("es").public_key(), T2024, T2044, 200000, 300000, "Văn phòng Chính phủ"
    )
    blob = trust_list.build(root, 5, NOW - 86400, [entry, es_entry])
    loaded = trust_list.load(blob, root.public_key())
    assert loaded.trust_list is not None
    crl_loaded = revocation.load(revocation.build(root, 1, NOW, [1005]), root.public_key())
    assert crl_loaded.crl is not None
    return Setup(root, issuer, entry, blob, loaded.trust_list, crl_loaded.crl)


def mint_raw(key: keys.PrivateKey, claim_map: dict[Any, Any]) -> bytes:
    return cose.sign1(cbor_det.dumps(claim_map), key)


@functools.cache
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))
    return data
