"""Generate the amendment-1 trust-list vectors (a national-size list) with independent libraries.

Run from the repository root:  uv run python tests/vectors/national/generate.py

Nothing here uses the project's CBOR or COSE code: keys come from ``cryptography``, kids are
hashed from the DER SubjectPublicKeyInfo with ``hashlib``, payloads are encoded by ``cbor2``
(canonical) and signed by **pycose** (the 192-entry list and the small cases) and **python-cwt**
(the 256-entry list padded to exactly 128 KiB). Keys are made in memory and discarded; only the
root COSE_Key and the signed lists are written, with ``manifest.json``:

- ``root``: the pinned root COSE_Key (RSA-3072);
- ``trust_cases``: ``file`` offered to a reader that holds ``held`` (a file of this folder, or
  none), ``expect`` the status, ``count`` the entries held afterwards, ``lookup`` kids (hex) whose
  ``[serial_lo, serial_hi]`` (or null when absent) the held list must give.

A refused list leaves the held one in place (``count`` is then the held list's).
The host loader (``provisioning.trust_list``) must agree with every case before anything is
written; the reader's store is checked by tests/test_trust_national.py.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cwt import COSE, COSEKey
from pycose.algorithms import RsaPkcs1Sha256
from pycose.headers import KID, Algorithm
from pycose.keys import CoseKey
from pycose.messages import Sign1Message

HERE = Path(__file__).resolve().parent
ROOT_DIR = HERE.parents[2]
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

NBF = 1704067200  # 2024-01-01
EXP = 2335219200  # 2044-01-01
IAT = 1780272000  # 2026-06-01
LIMIT = 131072


def kid_of(pub: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()[:8]


def cose_key(pub: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> dict[int, Any]:
    if isinstance(pub, rsa.RSAPublicKey):
        n = pub.public_numbers().n
        return {1: 3, -1: n.to_bytes((n.bit_length() + 7) // 8, "big"), -2: b"\x01\x00\x01"}
    nums = pub.public_numbers()
    return {1: 2, -1: 1, -2: nums.x.to_bytes(32, "big"), -3: nums.y.to_bytes(32, "big")}


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pycose_sign(payload: bytes, key: rsa.RSAPrivateKey) -> bytes:
    msg = Sign1Message(phdr={Algorithm: RsaPkcs1Sha256, KID: kid_of(key.public_key())}, payload=payload)
    msg.key = CoseKey.from_pem_private_key(pem(key).decode())
    out: bytes = msg.encode()
    return out


def cwt_sign(payload: bytes, key: rsa.RSAPrivateKey) -> bytes:
    kid = kid_of(key.public_key())
    signer = COSEKey.from_pem(pem(key), alg="RS256", kid=kid)
    out: bytes = COSE.new().encode_and_sign(payload, signer, protected={1: -257, 4: kid})
    return out


def entry(pub: Any, lo: int, hi: int, name: str) -> dict[int, Any]:
    return {1: kid_of(pub), 2: cose_key(pub), 3: NBF, 4: EXP, 5: lo, 6: hi, 7: name}


def payload(seq: int, entries: list[dict[int, Any]], **extra: Any) -> bytes:
    m: dict[Any, Any] = {1: 1, 2: seq, 3: IAT, 4: entries}
    for k, v in extra.items():
        m[int(k[1:])] = v
    out: bytes = cbor2.dumps(m, canonical=True)
    return out


PROVINCES = [
    "Bộ Nội vụ",
    "Văn phòng Chính phủ",
    "Bộ Tài chính",
    "Bộ Công an",
    "Bộ Quốc phòng",
    "UBND tỉnh Nam Định",
    "UBND Thành phố Hồ Chí Minh",
    "UBND Thành phố Hà Nội",
    "UBND tỉnh Điện Biên",
    "UBND tỉnh Cà Mau",
    "UBND tỉnh Quảng Ninh",
    "UBND Thành phố Đà Nẵng",
]


def authority(i: int) -> str:
    return f"{PROVINCES[i % len(PROVINCES)]} — khóa {i:03d}"


def main() -> None:
    from trustcore import keys as host_keys
    from trustcore import trust_list

    print("generating keys (256 RSA-2048, 257 P-256, 2 RSA-3072) …", file=sys.stderr)
    root = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    other = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    issuers = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(256)]
    ecs = [ec.generate_private_key(ec.SECP256R1()) for _ in range(257)]
    span = 10_000_000
    big = [entry(k.public_key(), i * span, (i + 1) * span, authority(i)) for i, k in enumerate(issuers)]

    files: dict[str, bytes] = {}
    cases: list[dict[str, Any]] = []

    def put(name: str, data: bytes) -> str:
        assert name not in files
        files[name] = data
        return name

    def case(
        name: str,
        file: str,
        expect: str,
        held: str | None,
        count: int,
        lookup: list[tuple[bytes, list[int] | None]],
    ) -> None:
        cases.append(
            {
                "name": name,
                "file": file,
                "held": held,
                "expect": expect,
                "count": count,
                "lookup": [k.hex() for k, _ in lookup],
                "ranges": [r for _, r in lookup],
            }
        )

    def look(i: int) -> tuple[bytes, list[int]]:
        return kid_of(issuers[i].public_key()), [i * span, (i + 1) * span]

    absent = (kid_of(other.public_key()), None)

    # 192 issuers signed by pycose (≈ 70 KB): the national list
    l192 = put("trust_ok_192_pycose.cbor", pycose_sign(payload(10, big[:192]), root))
    case("ok_192_pycose", l192, "ok", None, 192, [look(0), look(95), look(191), (look(200)[0], None), absent])
    # 256 issuers signed by python-cwt, padded by an unknown key to exactly 128 KiB
    base = cwt_sign(payload(11, big, k99=b""), root)
    pad = LIMIT - len(base)
    for _ in range(4):
        blob = cwt_sign(payload(11, big, k99=b"\x00" * pad), root)
        pad += LIMIT - len(blob)
    assert len(blob) == LIMIT, len(blob)
    l256 = put("trust_ok_256_cwt_128k.cbor", blob)
    case("ok_256_cwt_exactly_128k", l256, "ok", None, 256, [look(0), look(200), look(255)])
    # one byte more: too large, whatever it says (a reader looks at its size first)
    over = cwt_sign(payload(12, big, k99=b"\x00" * (pad + 1)), root)
    assert len(over) == LIMIT + 1
    case(
        "too_large_128k_plus_1",
        put("trust_too_large_128k_plus_1.cbor", over),
        "too_large",
        l192,
        192,
        [look(0), (look(200)[0], None)],
    )
    # 257 entries (P-256 keys, ≈ 40 KB): too many
    e257 = [entry(k.public_key(), i * 10, i * 10 + 10, f"Đơn vị {i}") for i, k in enumerate(ecs)]
    case(
        "too_large_257_entries",
        put("trust_too_large_257_entries.cbor", pycose_sign(payload(12, e257), root)),
        "too_large",
        l192,
        192,
        [look(0)],
    )
    ok256ec = put("trust_ok_256_p256_entries.cbor", pycose_sign(payload(12, e257[:256]), root))
    case("ok_256_p256_entries", ok256ec, "ok", None, 256, [(kid_of(ecs[255].public_key()), [2550, 2560])])
    # cut in the middle of the stream (the download that ends early; the file that is short)
    b192 = files[l192]
    case(
        "malformed_truncated_mid_stream",
        put("trust_malformed_truncated_mid_stream.cbor", b192[: len(b192) // 2]),
        "malformed",
        l192,
        192,
        [look(0)],
    )
    # one payload byte changed half-way: the streamed hash catches it
    flip = bytearray(b192)
    flip[len(b192) // 2] ^= 0x01
    case(
        "bad_signature_byte_in_stream",
        put("trust_bad_signature_byte_in_stream.cbor", bytes(flip)),
        "bad_signature",
        l192,
        192,
        [look(0)],
    )
    case(
        "unknown_root_192",
        put("trust_unknown_root_192.cbor", pycose_sign(payload(12, big[:192]), other)),
        "unknown_root",
        l192,
        192,
        [look(0)],
    )
    # list-level rules
    a, b, c = big[0], big[1], big[2]
    dup = [a, b, {**a, 5: 900 * span, 6: 901 * span}]
    case(
        "malformed_duplicate_kid",
        put("trust_malformed_duplicate_kid.cbor", pycose_sign(payload(12, dup), root)),
        "malformed",
        l192,
        192,
        [look(0)],
    )
    ov = [a, {**b, 5: span // 2}]  # b starts inside a's range
    case(
        "malformed_overlapping_ranges",
        put("trust_malformed_overlapping_ranges.cbor", pycose_sign(payload(12, ov), root)),
        "malformed",
        l192,
        192,
        [look(1)],
    )
    inside = [{**a, 5: 0, 6: 100 * span}, {**b, 5: 5 * span, 6: 6 * span}, c]
    case(
        "malformed_range_inside_another",
        put("trust_malformed_range_inside_another.cbor", pycose_sign(payload(12, inside), root)),
        "malformed",
        l192,
        192,
        [],
    )
    shared_other = [a, {**b, 5: a[5], 6: a[6]}]  # same range, another authority
    case(
        "malformed_shared_range_two_authorities",
        put(
            "trust_malformed_shared_range_two_authorities.cbor", pycose_sign(payload(12, shared_other), root)
        ),
        "malformed",
        l192,
        192,
        [],
    )
    rollover = [a, {**b, 5: a[5], 6: a[6], 7: a[7]}, c]  # one authority's old and new key
    case(
        "ok_shared_range_rollover",
        put("trust_ok_shared_range_rollover.cbor", pycose_sign(payload(12, rollover), root)),
        "ok",
        l192,
        3,
        [look(0), (kid_of(issuers[1].public_key()), [0, span]), look(2), (look(100)[0], None)],
    )
    unsorted = [c, a, b]  # entry order is free (the contract fixes none): the reader sorts its index
    case(
        "ok_unsorted_entries",
        put("trust_ok_unsorted_entries.cbor", pycose_sign(payload(12, unsorted), root)),
        "ok",
        l192,
        3,
        [look(0), look(1), look(2)],
    )
    # seq against the held 192-entry list (seq 10)
    case(
        "rollback_seq_9",
        put("trust_rollback_seq_9.cbor", pycose_sign(payload(9, big[:3]), root)),
        "rollback",
        l192,
        192,
        [look(150)],
    )
    case("noop_same_seq", l192, "noop", l192, 192, [look(150)])

    # A credential signed by issuer 100 (pycose), checked against the 192-issuer list.
    uid = bytes.fromhex("04a1b2c3d4e5f6")
    serial = 100 * span + 4242
    claims = {1: 1, 2: serial, 3: "CB-NAT-0100", 4: "Nguyễn Thị Hương", 5: "000.00.31.H26",
              6: "Phòng Tổ chức cán bộ", 7: "", 8: "Chuyên viên", 9: IAT - 86400, 10: IAT + 86400 * 3650,
              11: uid, 12: 1}  # fmt: skip
    cred = put("cred_ok_issuer_100.cbor", pycose_sign(cbor2.dumps(claims, canonical=True), issuers[100]))
    cred_cases = [{"name": "ok_issuer_100_of_192", "file": cred, "trust": l192, "uid": uid.hex(), "now": IAT,
                   "expect": "ok", "serial": serial, "staff": "CB-NAT-0100"},
                  {"name": "unknown_issuer_in_3_entry_list", "file": cred, "trust": "trust_ok_unsorted_entries.cbor",
                   "uid": uid.hex(), "now": IAT, "expect": "unknown_issuer", "serial": serial,
                   "staff": "CB-NAT-0100"}]  # fmt: skip

    # The host loader must agree before anything is written.
    root_pub = root.public_key()
    for c_ in cases:
        held_seq = None
        if c_["held"]:
            held = trust_list.load(files[c_["held"]], root_pub)
            assert held.status == "ok" and held.trust_list is not None
            held_seq = held.trust_list.seq
        got = trust_list.load(files[c_["file"]], root_pub, held_seq)
        assert got.status == c_["expect"], (c_["name"], got.status, got.detail)

    for old in HERE.glob("*.cbor"):
        old.unlink()
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    (HERE / "root.cose_key").write_bytes(cbor2.dumps(cose_key(root_pub), canonical=True))
    assert host_keys.kid_of(root_pub) == kid_of(root_pub)
    from trustcore import credential as host_credential

    for cc in cred_cases:
        tl = trust_list.load(files[cc["trust"]], root_pub).trust_list
        assert tl is not None
        v = host_credential.verify(files[cc["file"]], tl, uid, cc["now"])
        assert (v.reason, v.serial) == (cc["expect"], cc["serial"]), (cc["name"], v)
    manifest = {"root": "root.cose_key", "trust_cases": cases, "credential_cases": cred_cases}
    (HERE / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(files)} lists and {len(cases)} cases to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
