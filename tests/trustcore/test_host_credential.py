"""RECORD.json → claims, minting, and each of the nine checks built live (not from vectors)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from support.host import NOW, T2024, T2025, T2044, UID, claims, mint_raw, p256_key, record, rsa_key, setup

from trustcore import cbor_det, cbor_strict, cose, credential, keys, trust_list
from trustcore.errors import TrustcoreError


def verify(blob: bytes, *, uid: bytes = UID, now: int = NOW, crl: bool = False) -> credential.Verdict:
    s = setup()
    return credential.verify(blob, s.trust, uid, now, s.crl if crl else None)


# ---- record → claims -------------------------------------------------------------------------


def test_record_to_claims() -> None:
    c = credential.claims_from_record(record(groups=["toà nhà A"]))
    assert c == claims(k13=["toà nhà A"])
    assert c[credential.IAT] == T2025 and c[credential.UID] == UID


def test_text_is_nfc_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hương")
    assert decomposed != "Nguyễn Thị Hương"
    c = credential.claims_from_record(record(name=decomposed, unit=unicodedata.normalize("NFD", "Phòng")))
    assert c[credential.NAME] == "Nguyễn Thị Hương"
    assert unicodedata.is_normalized("NFC", c[credential.UNIT])


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"serial": 2**53}, "serial"),
        ({"serial": -1}, "serial"),
        ({"serial": "1001"}, "serial"),
        ({"serial": True}, "serial"),
        ({"uid": "04a1b2c3d4"}, "4, 7 or 10"),
        ({"uid": "zz"}, "hexadecimal"),
        ({"issued_at": "2025-01-01T00:00:00"}, "UTC offset"),
        ({"issued_at": "2025-01-01T00:00:00.5Z"}, "fractional"),
        ({"issued_at": "yesterday"}, "ISO 8601"),
        ({"expires_at": "2024-01-01T00:00:00Z"}, "before"),
        ({"name": ""}, "empty"),
        ({"staff": 12}, "string"),
        ({"groups": "nv"}, "groups"),
        ({"groups": ["ok", 3]}, "groups"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_record_validation(over: dict[str, Any], message: str) -> None:
    with pytest.raises(TrustcoreError, match=message):
        credential.claims_from_record(record(**over))


def test_record_missing_field() -> None:
    r = record()
    del r["gen"]
    with pytest.raises(TrustcoreError, match="missing"):
        credential.claims_from_record(r)


def test_record_times_accept_offsets(tmp_path: Path) -> None:
    c = credential.claims_from_record(record(issued_at="2025-01-01T07:00:00+07:00"))
    assert c[credential.IAT] == T2025
    p = tmp_path / "r.json"
    p.write_text(json.dumps(record(), ensure_ascii=False), encoding="utf-8")
    assert credential.load_record(p) == claims()
    p.write_text("{", encoding="utf-8")
    with pytest.raises(TrustcoreError, match="JSON"):
        credential.load_record(p)


# ---- minting -----------------------------------------------------------------------------------


def test_mint_produces_a_valid_credential() -> None:
    blob = credential.mint(claims(), setup().issuer)
    assert len(blob) <= credential.MAX_SIZE
    msg = cose.parse_sign1(blob, credential.MAX_SIZE)
    assert msg.kid == keys.kid_of(setup().issuer.public_key()) and msg.alg == cose.ALG_RS256
    assert cbor_strict.decode(msg.payload) == claims()
    v = verify(blob)
    assert (v.reason, v.serial, v.staff, v.valid) == ("ok", 1001, "CB-00001001", True)


def test_mint_refuses_what_readers_would_refuse() -> None:
    with pytest.raises(TrustcoreError, match="at most 1024"):
        credential.mint(claims(k6="x" * 800), setup().issuer)
    with pytest.raises(TrustcoreError, match="valid credential payload"):
        credential.mint(claims(k11=b"\x01\x02"), setup().issuer)


# ---- the nine checks, in order -----------------------------------------------------------------


def test_each_reason() -> None:
    s = setup()
    a = s.issuer
    cases: list[tuple[str, bytes, dict[str, Any]]] = [
        ("malformed", b"\xd2\x84", {}),
        ("malformed", mint_raw(a, claims(k1=2)), {}),
        ("unsupported_alg", mint_raw(p256_key("es"), claims(k2=200001)), {}),
        ("unknown_issuer", mint_raw(rsa_key("stranger"), claims()), {}),
        ("bad_signature", mint_raw(a, claims()).replace(b"CB-00001001", b"CB-00001002"), {}),
        ("issuer_not_valid", mint_raw(a, claims(k9=T2024 - 1)), {}),
        ("issuer_not_valid", mint_raw(a, claims(k9=T2044, k10=T2044 + 10)), {}),
        ("serial_out_of_range", mint_raw(a, claims(k2=100000)), {}),
        ("serial_out_of_range", mint_raw(a, claims(k2=999)), {}),
        ("not_yet_valid", mint_raw(a, claims(k9=NOW + 301)), {}),
        ("ok", mint_raw(a, claims(k9=NOW + 300)), {}),
        ("expired", mint_raw(a, claims(k10=NOW)), {}),
        ("ok", mint_raw(a, claims(k10=NOW + 1)), {}),
        ("uid_mismatch", mint_raw(a, claims()), {"uid": UID[:-1] + b"\x00"}),
        ("revoked", mint_raw(a, claims(k2=1005)), {"crl": True}),
        ("ok", mint_raw(a, claims(k2=1005)), {}),
        ("ok", mint_raw(a, claims(k2=1006)), {"crl": True}),
    ]
    for want, blob, opts in cases:
        v = verify(blob, **opts)
        assert v.reason == want, (want, v)
        assert v.reason in credential.REASONS
        if want == "malformed":
            assert v.serial is None and v.staff is None
        else:
            assert v.serial is not None and v.staff is not None


def test_es256_issuer_kid_with_rs256_alg_is_bad_signature() -> None:
    s = setup()
    es_kid = keys.kid_of(p256_key("es").public_key())
    blob = cose.sign1(cbor_det.dumps(claims()), s.issuer, kid=es_kid)
    assert verify(blob).reason == "bad_signature"


def test_empty_trust_list_knows_no_issuer() -> None:
    blob = mint_raw(setup().issuer, claims())
    v = credential.verify(blob, trust_list.EMPTY, UID, NOW)
    assert (v.reason, v.serial) == ("unknown_issuer", 1001)
