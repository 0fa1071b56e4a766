"""Generate the shared test vectors for credential-v1: credentials, trust lists, revocation lists.

Run from the repository root:  uv run python tests/vectors/generate.py

Every key is made fresh in memory and forgotten: only public objects are written (the pinned root
COSE_Key and signed CBOR objects). ``manifest.json`` lists each case with a fixed ``now`` and the
expected answer, so the vectors stay valid forever; the host verifier (``trustcore``) and the
reader's verifier (``firmware``) must both give exactly these answers. Before writing anything the
script checks every case with the host verifier and stops if one disagrees.

Conventions the cases rely on (see trustcore/credential.py and trustcore/signed_object.py):
- credential checks run in the order of credential-v1 §2, skew 300 s;
- ``serial``/``staff`` are expected whenever the payload parsed, else null;
- a trust list that fails to load means an EMPTY trust list (so credentials give unknown_issuer);
- signed-object statuses are checked envelope → alg → kid → signature → payload schema → seq.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HERE = Path(__file__).resolve().parent
ROOT_DIR = HERE.parents[1]
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

from trustcore import cbor_det, cose, credential, keys, revocation, trust_list  # noqa: E402
from trustcore.timeutil import parse_iso_utc  # noqa: E402

SKEW = credential.SKEW
NOW = parse_iso_utc("2026-06-01T00:00:00Z")
T2015 = parse_iso_utc("2015-01-01T00:00:00Z")
T2020 = parse_iso_utc("2020-01-01T00:00:00Z")
T2023_06 = parse_iso_utc("2023-06-01T00:00:00Z")
T2024 = parse_iso_utc("2024-01-01T00:00:00Z")
T2025 = parse_iso_utc("2025-01-01T00:00:00Z")
T2026 = parse_iso_utc("2026-01-01T00:00:00Z")
T2035 = parse_iso_utc("2035-01-01T00:00:00Z")
T2044 = parse_iso_utc("2044-01-01T00:00:00Z")
T2045 = parse_iso_utc("2045-01-01T00:00:00Z")
TRUST_IAT = parse_iso_utc("2026-05-01T00:00:00Z")
CRL_IAT = parse_iso_utc("2026-05-15T00:00:00Z")

UID7 = bytes.fromhex("04a1b2c3d4e5f6")
UID4 = bytes.fromhex("8e3f12a0")
UID10 = bytes.fromhex("0811223344556677889a")
MAX_SERIAL = (1 << 53) - 1
REVOKED = [1005, 1500, 100007, MAX_SERIAL]

TAG18 = b"\xd2"


def dumps(obj: Any) -> bytes:
    return cbor_det.dumps(obj)


def head(major: int, n: int) -> bytes:
    """A CBOR head in shortest form (for hand-assembled, deliberately odd objects)."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


def bstr(b: bytes) -> bytes:
    return head(2, len(b)) + b


def tstr_raw(b: bytes) -> bytes:
    return head(3, len(b)) + b


def sign_bytes(key: keys.PrivateKey, alg: int, data: bytes) -> bytes:
    if alg == cose.ALG_RS256:
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == -37:  # PS256
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def protected_for(alg: int | str | None, kid: bytes | None, extra: dict[int, Any] | None = None) -> bytes:
    m: dict[int, Any] = {}
    if alg is not None:
        m[1] = alg
    if kid is not None:
        m[4] = kid
    m.update(extra or {})
    return dumps(m)


def assemble(
    protected: bytes,
    payload: bytes,
    signature: bytes,
    *,
    unprotected: bytes = b"\xa0",
    prefix: bytes = TAG18 + b"\x84",
    suffix: bytes = b"",
) -> bytes:
    return prefix + bstr(protected) + unprotected + bstr(payload) + bstr(signature) + suffix


def signed(
    payload: bytes,
    key: keys.PrivateKey,
    *,
    alg: int | None = None,
    kid: bytes | None = None,
    protected: bytes | None = None,
    sign_alg: int | None = None,
    sig: Callable[[bytes], bytes] | None = None,
    **layout: Any,
) -> bytes:
    """A COSE_Sign1 over ``payload`` with any protected header; the signature is always genuine
    for the bytes given (unless ``sig`` replaces it), so only the intended defect remains."""
    alg = cose.alg_for(key) if alg is None else alg
    kid = keys.kid_of(key.public_key()) if kid is None else kid
    protected = protected_for(alg, kid) if protected is None else protected
    tbs = cose.sig_structure(protected, payload)
    signature = sig(tbs) if sig is not None else sign_bytes(key, alg if sign_alg is None else sign_alg, tbs)
    return assemble(protected, payload, signature, **layout)


# ---- raw RSA for malformed-padding signatures (negative vectors only) -------------------------

DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")
DIGEST_INFO_SHA256_NO_NULL = bytes.fromhex("302f300b06096086480165030402010420")


def rsa_raw(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    n = key.public_key().public_numbers().n
    k = (n.bit_length() + 7) // 8
    assert len(block) == k
    return pow(int.from_bytes(block, "big"), key.private_numbers().d, n).to_bytes(k, "big")


def block_no_null(k: int, digest: bytes) -> bytes:
    di = DIGEST_INFO_SHA256_NO_NULL + digest
    return b"\x00\x01" + b"\xff" * (k - 3 - len(di)) + b"\x00" + di


def block_garbage_after_hash(k: int, digest: bytes) -> bytes:
    di = DIGEST_INFO_SHA256 + digest + b"GARBAGE!"
    return b"\x00\x01" + b"\xff" * (k - 3 - len(di)) + b"\x00" + di


# ---- the generator ---------------------------------------------------------------------------


class Vectors:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cases: list[dict[str, Any]] = []
        self.trust_cases: list[dict[str, Any]] = []
        self.crl_cases: list[dict[str, Any]] = []
        self.sized_claims: dict[int, Any] = {}

        print("generating keys …", file=sys.stderr)
        self.root = keys.generate_rsa(3072)
        self.other_root = keys.generate_rsa(3072)
        self.a = keys.generate_rsa(2048)
        self.b = keys.generate_rsa(2048)
        self.d = keys.generate_rsa(3072)
        self.es = keys.generate_p256()
        self.past = keys.generate_rsa(2048)
        self.unknown = keys.generate_rsa(2048)
        self.unknown_es = keys.generate_p256()
        self.rsa_e3 = rsa.generate_private_key(public_exponent=3, key_size=2048)
        self.rsa_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)

        E = trust_list.IssuerEntry
        self.e_a = E(self.a.public_key(), T2024, T2044, 1000, 100000, "Sở Nội vụ tỉnh Nam Định")
        self.e_b = E(self.b.public_key(), T2024, T2044, 100000, 200000, "Sở Nội vụ Thành phố Hồ Chí Minh")
        self.e_es = E(self.es.public_key(), T2024, T2044, 200000, 300000, "Văn phòng Chính phủ (ES256)")
        self.e_past = E(self.past.public_key(), T2015, T2020, 300000, 400000, "Sở Nội vụ tỉnh Hà Tây")
        self.e_d = E(self.d.public_key(), T2024, T2044, (1 << 53) - 100000, 1 << 53, "Bộ Nội vụ")
        self.entries = [self.e_a, self.e_b, self.e_d, self.e_es, self.e_past]

    # -- files ----------------------------------------------------------------------------------

    def put(self, name: str, data: bytes) -> str:
        assert name not in self.files, name
        self.files[name] = data
        return name

    # -- trust lists ----------------------------------------------------------------------------

    def trust_payload(self, seq: int, entries: list[dict[int, Any]] | None = None, **extra: Any) -> bytes:
        m: dict[Any, Any] = {
            1: 1,
            2: seq,
            3: TRUST_IAT,
            4: entries if entries is not None else self.entry_maps(),
        }
        for k, v in extra.items():
            m[int(k.lstrip("k"))] = v
        return dumps(m)

    def entry_maps(self) -> list[dict[int, Any]]:
        return [e.to_map() for e in self.entries]

    def trust_case(self, name: str, data: bytes, expect: str, held_seq: int | None = None) -> str:
        file = self.put(f"trust_{name}.cbor", data)
        self.trust_cases.append({"name": name, "file": file, "held_seq": held_seq, "expect": expect})
        return file

    def build_trust_lists(self) -> None:
        root = self.root
        self.trust = self.put("trust.cbor", trust_list.build(root, 5, TRUST_IAT, self.entries))
        t = self.files[self.trust]
        self.trust_cases += [
            {"name": "ok_nothing_held", "file": self.trust, "held_seq": None, "expect": "ok"},
            {"name": "ok_newer_than_held", "file": self.trust, "held_seq": 4, "expect": "ok"},
            {"name": "noop_equal_seq", "file": self.trust, "held_seq": 5, "expect": "noop"},
            {"name": "ok_held_zero", "file": self.trust, "held_seq": 0, "expect": "ok"},
        ]
        self.trust_case(
            "rollback_older_seq",
            trust_list.build(root, 3, TRUST_IAT - 86400, self.entries),
            "rollback",
            held_seq=5,
        )
        self.trust_cases.append(
            {
                "name": "ok_older_seq_nothing_held",
                "file": "trust_rollback_older_seq.cbor",
                "held_seq": None,
                "expect": "ok",
            }
        )
        self.trust_removed_a = self.trust_case(
            "ok_seq6_issuer_a_removed",
            trust_list.build(root, 6, TRUST_IAT + 86400, [self.e_b, self.e_d, self.e_es, self.e_past]),
            "ok",
            held_seq=5,
        )
        self.trust_wrong_root = self.trust_case(
            "unknown_root", trust_list.build(self.other_root, 5, TRUST_IAT, self.entries), "unknown_root"
        )
        self.trust_bad_sig = self.trust_case(
            "bad_signature_flipped_bit", t[:-1] + bytes([t[-1] ^ 1]), "bad_signature"
        )
        self.trust_case(
            "bad_signature_tampered_payload",
            t.replace(b"Nam \xc4\x90\xe1\xbb\x8bnh", b"Nam D\xe1\xbb\x8bnh\x20"),
            "bad_signature",
        )
        self.trust_case(
            "unsupported_alg_es256",
            signed(self.trust_payload(5), self.es, kid=keys.kid_of(root.public_key())),
            "unsupported_alg",
        )
        self.trust_case(
            "unsupported_alg_ps256", signed(self.trust_payload(5), root, alg=-37), "unsupported_alg"
        )
        self.trust_case("malformed_truncated", t[:-10], "malformed")
        self.trust_case("malformed_trailing_garbage", t + b"\x00", "malformed")
        self.trust_case("malformed_empty", b"", "malformed")
        self.trust_case("malformed_untagged", t[1:], "malformed")
        self.trust_case("malformed_indefinite_outer_array", b"\xd2\x9f" + t[2:] + b"\xff", "malformed")
        payload = self.trust_payload(5)
        indef = b"\xbf" + payload[1:] + b"\xff"
        assert payload[0] == 0xA4
        self.trust_case("malformed_indefinite_payload_map", signed(indef, root), "malformed")
        deep = [dict(m) for m in self.entry_maps()]
        deep[0][2] = dict(deep[0][2])
        deep[0][2][99] = [1]
        self.trust_case("malformed_too_deep", signed(self.trust_payload(5, deep), root), "malformed")
        # 16 KiB was the first limit; amendment 1 allows 128 KiB (tests/vectors/national has its edges)
        self.trust_case(
            "ok_16k_unknown_key", signed(self.trust_payload(5, k99=b"\x00" * 16000), root), "ok"
        )
        self.trust_case(
            "malformed_crit_header",
            signed(
                self.trust_payload(5),
                root,
                protected=protected_for(-257, keys.kid_of(root.public_key()), {2: [99]}),
            ),
            "malformed",
        )
        self.trust_case("malformed_payload_not_map", signed(dumps([1, 5, TRUST_IAT, []]), root), "malformed")
        self.trust_case(
            "malformed_version_2",
            signed(dumps({1: 2, 2: 5, 3: TRUST_IAT, 4: self.entry_maps()}), root),
            "malformed",
        )
        self.trust_case(
            "malformed_version_bool",
            signed(dumps({1: True, 2: 5, 3: TRUST_IAT, 4: self.entry_maps()}), root),
            "malformed",
        )
        self.trust_case(
            "malformed_missing_entries", signed(dumps({1: 1, 2: 5, 3: TRUST_IAT}), root), "malformed"
        )
        dup_key = b"\xa5" + self.trust_payload(5)[1:] + dumps(2) + dumps(6)
        self.trust_case("malformed_duplicate_map_key", signed(dup_key, root), "malformed")

        def with_entry(i: int, **changes: Any) -> list[dict[int, Any]]:
            maps = self.entry_maps()
            for k, v in changes.items():
                maps[i][int(k.lstrip("k"))] = v
            return maps

        self.trust_case(
            "malformed_entry_kid_mismatch",
            signed(self.trust_payload(5, with_entry(0, k1=keys.kid_of(self.b.public_key()))), root),
            "malformed",
        )
        self.trust_case(
            "malformed_entry_serial_lo_eq_hi",
            signed(self.trust_payload(5, with_entry(0, k5=1000, k6=1000)), root),
            "malformed",
        )
        self.trust_case(
            "malformed_entry_nbf_eq_exp",
            signed(self.trust_payload(5, with_entry(0, k3=T2024, k4=T2024)), root),
            "malformed",
        )
        self.trust_case(
            "malformed_entry_name_not_text",
            signed(self.trust_payload(5, with_entry(0, k7=b"Nam Dinh")), root),
            "malformed",
        )
        self.trust_case(
            "malformed_entry_missing_exp",
            signed(self.trust_payload(5, [{k: v for k, v in self.e_a.to_map().items() if k != 4}]), root),
            "malformed",
        )
        self.trust_case(
            "malformed_duplicate_kid",
            signed(self.trust_payload(5, [self.e_a.to_map(), self.e_a.to_map()]), root),
            "malformed",
        )
        for label, weak in (("rsa_e3", self.rsa_e3), ("rsa_1024", self.rsa_1024)):
            entry = trust_list.IssuerEntry(weak.public_key(), T2024, T2044, 500000, 600000, "Khóa yếu")
            m = entry.to_map()
            numbers = weak.public_key().public_numbers()
            m[2] = {
                1: 3,
                -1: numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
                -2: numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"),
            }
            self.trust_case(
                f"malformed_entry_{label}",
                signed(self.trust_payload(5, [self.e_a.to_map(), m]), root),
                "malformed",
            )
        n_a = self.a.public_key().public_numbers().n.to_bytes(256, "big")
        lead0 = self.e_a.to_map()
        lead0[2] = {1: 3, -1: b"\x00" + n_a, -2: b"\x01\x00\x01"}
        self.trust_case(
            "malformed_entry_rsa_leading_zero", signed(self.trust_payload(5, [lead0]), root), "malformed"
        )
        e_long = self.e_a.to_map()
        e_long[2] = {1: 3, -1: n_a, -2: b"\x00\x01\x00\x01"}
        self.trust_case(
            "malformed_entry_rsa_e_leading_zero", signed(self.trust_payload(5, [e_long]), root), "malformed"
        )
        self.trust_case(
            "malformed_entry_unknown_kty",
            signed(self.trust_payload(5, with_entry(0, k2={1: 4, -1: b"\x00" * 16})), root),
            "malformed",
        )
        # Unknown keys at every level are ignored; an empty list is a valid list.
        ext = self.entry_maps()
        ext[0][99] = "mở rộng"
        ext[0][2] = dict(ext[0][2])
        ext[0][2][3] = -257  # alg label inside the COSE_Key
        ext[1]["note"] = [1, 2]
        self.trust_case(
            "ok_unknown_keys_ignored",
            signed(self.trust_payload(7, ext, k99={"x": 1}), root),
            "ok",
            held_seq=5,
        )
        self.trust_case("ok_empty_entries", trust_list.build(root, 8, TRUST_IAT, []), "ok", held_seq=5)
        self.trust_case(
            "ok_non_deterministic_encoding",
            signed(
                b"\xa4\x01\x01\x02\x1a\x00\x00\x00\x09\x04"
                + dumps(self.entry_maps())
                + b"\x03"
                + dumps(TRUST_IAT),
                root,
            ),
            "ok",
            held_seq=5,
        )

    # -- revocation lists ---------------------------------------------------------------------

    def crl_case(
        self,
        name: str,
        data: bytes,
        expect: str,
        held_seq: int | None = None,
        revoked: list[int] | None = None,
        not_revoked: list[int] | None = None,
    ) -> str:
        file = self.put(f"crl_{name}.cbor", data)
        self.crl_cases.append(
            {
                "name": name,
                "file": file,
                "held_seq": held_seq,
                "expect": expect,
                "revoked": revoked or [],
                "not_revoked": not_revoked or [],
            }
        )
        return file

    def crl_payload(self, seq: int, body: bytes, **over: Any) -> bytes:
        m: dict[Any, Any] = {0: "crl", 1: 1, 2: seq, 3: CRL_IAT, 4: body}
        for k, v in over.items():
            if v is None:
                m.pop(int(k.lstrip("k")))
            else:
                m[int(k.lstrip("k"))] = v
        return dumps(m)

    def build_crls(self) -> None:
        root = self.root
        self.crl = self.put("crl.cbor", revocation.build(root, 3, CRL_IAT, REVOKED))
        c = self.files[self.crl]
        not_revoked = [0, 1000, 1001, 1004, 1006, 1499, 1501, 100006, 100008, MAX_SERIAL - 1]
        self.crl_cases += [
            {
                "name": "ok",
                "file": self.crl,
                "held_seq": None,
                "expect": "ok",
                "revoked": REVOKED,
                "not_revoked": not_revoked,
            },
            {
                "name": "ok_newer_than_held",
                "file": self.crl,
                "held_seq": 2,
                "expect": "ok",
                "revoked": REVOKED,
                "not_revoked": not_revoked,
            },
            {
                "name": "noop_equal_seq",
                "file": self.crl,
                "held_seq": 3,
                "expect": "noop",
                "revoked": [],
                "not_revoked": [],
            },
        ]
        self.crl_case(
            "rollback_older_seq",
            revocation.build(root, 2, CRL_IAT - 86400, REVOKED[:2]),
            "rollback",
            held_seq=3,
        )
        self.crl_case(
            "ok_empty",
            revocation.build(root, 4, CRL_IAT, []),
            "ok",
            held_seq=3,
            not_revoked=[0, 1005, MAX_SERIAL],
        )
        one = [7]
        self.crl_case(
            "ok_single", revocation.build(root, 5, CRL_IAT, one), "ok", revoked=one, not_revoked=[0, 6, 8]
        )
        many = list(range(1000, 1000 + 3 * 700, 3))
        self.crl_case(
            "ok_700_serials",
            revocation.build(root, 6, CRL_IAT, many),
            "ok",
            revoked=[many[0], many[1], many[350], many[-1]],
            not_revoked=[999, 1001, 1002, many[-1] + 1, many[-1] + 3],
        )
        self.crl_case(
            "ok_unknown_key_ignored",
            signed(self.crl_payload(7, revocation.encode_serials(REVOKED), k99=["tương lai"]), root),
            "ok",
            revoked=REVOKED,
            not_revoked=[1, 1006],
        )
        self.crl_case("unknown_root", revocation.build(self.other_root, 3, CRL_IAT, REVOKED), "unknown_root")
        self.crl_case("bad_signature_flipped_bit", c[:-1] + bytes([c[-1] ^ 0x80]), "bad_signature")
        body = revocation.encode_serials(REVOKED)
        self.crl_case(
            "unsupported_alg_es256",
            signed(self.crl_payload(3, body), self.es, kid=keys.kid_of(root.public_key())),
            "unsupported_alg",
        )
        self.crl_case("malformed_truncated", c[:-1], "malformed")
        self.crl_case("malformed_trailing_garbage", c + b"\xff", "malformed")
        self.crl_case(
            "malformed_unsorted",
            signed(self.crl_payload(3, body[7:14] + body[:7] + body[14:]), root),
            "malformed",
        )
        self.crl_case(
            "malformed_duplicate_serial", signed(self.crl_payload(3, body[:7] + body), root), "malformed"
        )
        self.crl_case(
            "malformed_length_not_multiple_of_7",
            signed(self.crl_payload(3, body + b"\x00"), root),
            "malformed",
        )
        self.crl_case(
            "malformed_missing_type_tag", signed(self.crl_payload(3, body, k0=None), root), "malformed"
        )
        self.crl_case(
            "malformed_wrong_type_tag", signed(self.crl_payload(3, body, k0="trust"), root), "malformed"
        )
        self.crl_case("malformed_version_2", signed(self.crl_payload(3, body, k1=2), root), "malformed")
        self.crl_case("malformed_version_bool", signed(self.crl_payload(3, body, k1=True), root), "malformed")
        self.crl_case(
            "malformed_serial_2pow53",
            signed(self.crl_payload(3, body + (1 << 53).to_bytes(7, "big")), root),
            "malformed",
        )
        self.crl_case(
            "malformed_serials_not_bytes", signed(self.crl_payload(3, body, k4=REVOKED), root), "malformed"
        )
        self.crl_case("malformed_trust_list_as_crl", self.files[self.trust], "malformed")
        indef_body = b"\x5f" + bstr(body[:7]) + bstr(body[7:]) + b"\xff"
        p = self.crl_payload(3, b"")
        assert p.endswith(b"\x04\x40")
        self.crl_case("malformed_indefinite_bytes", signed(p[:-1] + indef_body, root), "malformed")
        self.crl_case(
            "malformed_oversize",
            signed(self.crl_payload(3, revocation.encode_serials(range(1, 2400))), root),
            "malformed",
        )

    # -- credentials ----------------------------------------------------------------------------

    def claims(self, **over: Any) -> dict[int, Any]:
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
            11: UID7,
            12: 1,
        }
        for k, v in over.items():
            key = int(k.lstrip("k"))
            if v is None:
                m.pop(key)
            else:
                m[key] = v
        return m

    def case(
        self,
        name: str,
        data: bytes,
        expect: str,
        *,
        uid: bytes = UID7,
        now: int = NOW,
        crl: bool = False,
        trust: str | None = None,
        claims: dict[int, Any] | None = None,
    ) -> None:
        """Record a credential case; serial/staff come from ``claims`` unless the case is malformed."""
        file = self.put(f"cred_{name}.cbor", data)
        c = claims if claims is not None else self.claims()
        parsed = expect != "malformed"
        self.cases.append(
            {
                "name": name,
                "file": file,
                "uid": uid.hex(),
                "now": now,
                "crl": crl,
                "trust": trust,
                "expect": expect,
                "serial": c[2] if parsed else None,
                "staff": c[3] if parsed else None,
            }
        )

    def mint(self, key: keys.PrivateKey, **over: Any) -> tuple[bytes, dict[int, Any]]:
        c = self.claims(**over)
        return cose.sign1(dumps(c), key), c

    def good(self, name: str, key: keys.PrivateKey | None = None, expect: str = "ok", **kw: Any) -> bytes:
        over = {k: v for k, v in kw.items() if k.startswith("k")}
        opts = {k: v for k, v in kw.items() if not k.startswith("k")}
        blob, c = self.mint(key or self.a, **over)
        self.case(name, blob, expect, claims=c, **opts)
        return blob

    def build_credentials(self) -> None:
        a = self.a
        # A credential minted through the real RECORD.json path.
        record = {
            "serial": 1002,
            "staff": "CB-00001002",
            "name": "Trần Văn Đức",
            "agency": "000.00.36.H40",
            "unit": "Văn phòng Sở",
            "position": "",
            "title": "Chuyên viên",
            "issued_at": "2025-01-01T00:00:00Z",
            "expires_at": "2035-01-01T00:00:00Z",
            "uid": UID7.hex().upper(),
            "gen": 2,
            "groups": ["toà nhà A", "phòng họp"],
        }
        claims = credential.claims_from_record(record)
        self.case("ok_from_record", credential.mint(claims, a), "ok", claims=claims)
        base = self.good("ok_basic")
        self.good("ok_groups", k13=["Tầng 3 – Sở Nội vụ", "nv.all"])
        self.good("ok_groups_empty", k13=[])
        self.good(
            "ok_vietnamese_diacritics",
            k4="Nguyễn Thị Ánh Tuyết",
            k6="Phòng Công chức, viên chức",
            k7="Phó Giám đốc Sở",
            k8="Chuyên viên cao cấp",
            k3="CB-ĐƯỜNG-0001",
        )
        self.good("ok_position_empty", k7="")
        self.good("ok_issuer_b", self.b, k2=150000, k3="CB-00150000", k4="Lê Hoàng Yến")
        self.good("ok_issuer_rsa3072", self.d, k2=MAX_SERIAL - 5, k3="BNV-0005", k4="Phạm Quốc Bảo")
        self.good("ok_serial_max", self.d, k2=MAX_SERIAL, k3="BNV-MAX")
        self.good("revoked_serial_max", self.d, "revoked", k2=MAX_SERIAL, k3="BNV-MAX", crl=True)
        self.good("ok_serial_lo_edge", k2=1000)
        self.good("ok_serial_hi_minus_one", k2=99999)
        self.good("ok_uid_4_bytes", k11=UID4, uid=UID4)
        self.good("ok_uid_10_bytes", k11=UID10, uid=UID10)
        ext = self.claims(k99="phiên bản sau", k14=[1, {"a": b"x"}])
        ext[-7] = 0
        ext["ghi chú"] = "khóa văn bản"  # text keys are allowed and ignored
        self.case("ok_unknown_keys_ignored", cose.sign1(dumps(ext), a), "ok", claims=ext)
        self.good("ok_depth_4", k99=[[[1]]])
        self.good("ok_iat_at_skew_edge", k9=NOW + SKEW)
        self.good("ok_last_second", k10=NOW + 1)
        self.good("ok_iat_equals_issuer_nbf", k9=T2024)
        self.good("ok_crl_not_revoked", crl=True)
        self.good("ok_revoked_serial_without_crl", k2=1005)
        self.good("ok_gen_large", k12=4294967296)
        self.good("ok_trust_seq6_other_issuer", self.b, k2=150001, trust=self.trust_removed_a)
        # Verifiers check the bytes they got: a non-canonical (but valid) payload still verifies.
        c = self.claims()
        noncanon = b"\xac" + b"".join(dumps(k) + dumps(c[k]) for k in sorted(c, reverse=True))
        noncanon = noncanon.replace(dumps(2) + dumps(1001), b"\x02\x1a\x00\x00\x03\xe9", 1)
        self.case("ok_non_deterministic_payload", signed(noncanon, a), "ok", claims=c)
        self.case(
            "ok_protected_extra_label",
            signed(dumps(c), a, protected=protected_for(-257, keys.kid_of(a.public_key()), {3: 61})),
            "ok",
        )
        kid_a = keys.kid_of(a.public_key())
        self.case(
            "ok_unprotected_not_empty", signed(dumps(c), a, unprotected=dumps({4: kid_a, 99: "x"})), "ok"
        )
        self.case(
            "ok_protected_kid_before_alg",
            signed(dumps(c), a, protected=b"\xa2\x04" + bstr(kid_a) + b"\x01\x39\x01\x00"),
            "ok",
        )
        # Exactly at the size limit, and one byte over.
        self.case("ok_size_1024", self.sized(1024), "ok", claims=self.sized_claims)
        self.case("malformed_size_1025", self.sized(1025), "malformed")

        # ---- malformed -----------------------------------------------------------------------
        M = "malformed"
        self.case("malformed_empty", b"", M)
        self.case("malformed_truncated_last_byte", base[:-1], M)
        self.case("malformed_truncated_half", base[: len(base) // 2], M)
        self.case("malformed_trailing_garbage", base + b"\x00", M)
        self.case("malformed_trailing_second_item", base + base, M)
        self.case("malformed_untagged", base[1:], M)
        self.case("malformed_wrong_tag_17", b"\xd1" + base[1:], M)
        self.case("malformed_tag18_long_form", b"\xd8\x12" + base[1:], M)
        self.case("malformed_double_tag", b"\xd2" + base, M)
        self.case("malformed_indefinite_outer_array", b"\xd2\x9f" + base[2:] + b"\xff", M)
        self.case("malformed_array_3_elements", b"\xd2\x83" + base[2:-259], M)
        self.case("malformed_array_5_elements", b"\xd2\x85" + base[2:] + b"\x40", M)
        p = dumps(c)
        self.case("malformed_indefinite_payload_map", signed(b"\xbf" + p[1:] + b"\xff", a), M)
        self.case(
            "malformed_indefinite_payload_bstr",
            signed(p, a, prefix=b"\xd2\x84", sig=None).replace(
                bstr(p), b"\x5f" + bstr(p[:10]) + bstr(p[10:]) + b"\xff", 1
            ),
            M,
        )
        name_bytes = "Nguyễn Thị Hương".encode()
        indef_name = b"\x7f" + tstr_raw(name_bytes[:5]) + tstr_raw(name_bytes[5:]) + b"\xff"
        self.case("malformed_indefinite_text", signed(p.replace(tstr_raw(name_bytes), indef_name, 1), a), M)
        self.case("malformed_duplicate_key", signed(b"\xad" + p[1:] + dumps(2) + dumps(1002), a), M)
        self.case("malformed_duplicate_key_same_value", signed(b"\xad" + p[1:] + dumps(12) + dumps(1), a), M)
        self.case("malformed_serial_text", self.mint(a, k2="1001")[0], M)
        self.case("malformed_serial_negative", self.mint(a, k2=-1)[0], M)
        self.case("malformed_serial_2pow53", self.mint(self.d, k2=1 << 53)[0], M)
        self.case("malformed_gen_bool", self.mint(a, k12=True)[0], M)
        self.case("malformed_iat_text", self.mint(a, k9="2025-01-01T00:00:00Z")[0], M)
        self.case("malformed_name_bytes", self.mint(a, k4="Nguyễn".encode())[0], M)
        self.case("malformed_staff_int", self.mint(a, k3=1001)[0], M)
        self.case("malformed_version_2", self.mint(a, k1=2)[0], M)
        self.case("malformed_version_bool", self.mint(a, k1=True)[0], M)
        self.case(
            "malformed_uid_5_bytes", self.mint(a, k11=b"\x01\x02\x03\x04\x05")[0], M, uid=b"\x01\x02\x03\x04"
        )
        self.case("malformed_uid_text", self.mint(a, k11=UID7.hex())[0], M)
        self.case("malformed_groups_not_array", self.mint(a, k13="nv.all")[0], M)
        self.case("malformed_groups_item_int", self.mint(a, k13=["nv.all", 7])[0], M)
        null_groups = self.claims()
        null_groups[13] = None
        self.case("malformed_groups_null", signed(dumps(null_groups), a), M)
        for key in (1, 2, 3, 9, 10, 11, 12):
            self.case(f"malformed_missing_key_{key}", self.mint(a, **{f"k{key}": None})[0], M)
        self.case("malformed_bad_utf8", signed(p.replace(name_bytes, b"Nguy\xff" + name_bytes[5:], 1), a), M)
        overlong = name_bytes.replace(b"N", b"\xc1\x8e", 1)
        self.case(
            "malformed_bad_utf8_overlong",
            signed(p.replace(tstr_raw(name_bytes), tstr_raw(overlong), 1), a),
            M,
        )
        surrogate = name_bytes + b"\xed\xa0\x80"
        self.case(
            "malformed_bad_utf8_surrogate",
            signed(p.replace(tstr_raw(name_bytes), tstr_raw(surrogate), 1), a),
            M,
        )
        above = name_bytes + b"\xf4\x90\x80\x80"
        self.case(
            "malformed_bad_utf8_above_10ffff",
            signed(p.replace(tstr_raw(name_bytes), tstr_raw(above), 1), a),
            M,
        )
        self.case(
            "malformed_bad_utf8_unknown_key", signed(b"\xad" + p[1:] + dumps(99) + tstr_raw(b"\xc3"), a), M
        )
        self.case("malformed_float_unknown_key", signed(b"\xad" + p[1:] + dumps(99) + b"\xf9\x3e\x00", a), M)
        self.case("malformed_undefined_unknown_key", signed(b"\xad" + p[1:] + dumps(99) + b"\xf7", a), M)
        self.case(
            "malformed_simple_value_unknown_key", signed(b"\xad" + p[1:] + dumps(99) + b"\xf8\x20", a), M
        )
        self.case("malformed_tag_in_payload", signed(b"\xad" + p[1:] + dumps(99) + b"\xc1\x00", a), M)
        self.case("malformed_tag_on_payload_map", signed(b"\xd2" + p, a), M)
        self.case("malformed_depth_5", self.mint(a, k99=[[[[1]]]])[0], M)
        self.case("malformed_map_key_bytes", signed(b"\xad" + p[1:] + bstr(b"k") + dumps(1), a), M)
        self.case("malformed_map_key_bool", signed(b"\xad" + p[1:] + b"\xf5" + dumps(1), a), M)
        self.case("malformed_payload_not_map", signed(dumps(list(c.values())), a), M)
        self.case("malformed_payload_trailing_byte", signed(p + b"\x00", a), M)
        self.case("malformed_payload_empty", signed(b"", a), M)
        self.case("malformed_map_count_lie", signed(b"\xb8\xff" + p[1:], a), M)
        self.case("malformed_reserved_info", signed(b"\xad" + p[1:] + dumps(99) + b"\x1c", a), M)
        self.case("malformed_crit_header", signed(p, a, protected=protected_for(-257, kid_a, {2: [3]})), M)
        self.case("malformed_kid_7_bytes", signed(p, a, kid=kid_a[:7]), M)
        self.case("malformed_kid_9_bytes", signed(p, a, kid=kid_a + b"\x00"), M)
        self.case(
            "malformed_kid_text", signed(p, a, protected=protected_for(-257, None, {4: kid_a.hex()})), M
        )
        self.case("malformed_kid_missing", signed(p, a, protected=protected_for(-257, None)), M)
        self.case(
            "malformed_kid_only_unprotected",
            signed(p, a, protected=protected_for(-257, None), unprotected=dumps({4: kid_a})),
            M,
        )
        self.case(
            "malformed_alg_text", signed(p, a, protected=protected_for("RS256", kid_a), sign_alg=-257), M
        )
        self.case(
            "malformed_alg_missing", signed(p, a, protected=protected_for(None, kid_a), sign_alg=-257), M
        )
        self.case("malformed_protected_empty", signed(p, a, protected=b""), M)
        self.case("malformed_protected_not_map", signed(p, a, protected=dumps([-257, kid_a])), M)
        self.case(
            "malformed_protected_trailing_byte",
            signed(p, a, protected=protected_for(-257, kid_a) + b"\x00"),
            M,
        )
        self.case(
            "malformed_protected_duplicate_label",
            signed(p, a, protected=b"\xa3\x01\x39\x01\x00\x04" + bstr(kid_a) + b"\x01\x26"),
            M,
        )
        self.case("malformed_unprotected_not_map", signed(p, a, unprotected=b"\x80"), M)
        self.case(
            "malformed_unprotected_with_float", signed(p, a, unprotected=b"\xa1\x18\x63\xfb" + b"\x00" * 8), M
        )
        self.case("malformed_unprotected_indefinite", signed(p, a, unprotected=b"\xbf\xff"), M)
        self.case("malformed_signature_text", assemble(protected_for(-257, kid_a), p, b"")[:-1] + b"\x60", M)
        self.case(
            "malformed_payload_text", assemble(protected_for(-257, kid_a), b"", b"")[:-2] + b"\x60\x40", M
        )
        self.case(
            "malformed_payload_nil", assemble(protected_for(-257, kid_a), b"", b"")[:-2] + b"\xf6\x40", M
        )

        # ---- unsupported_alg -------------------------------------------------------------
        self.good("unsupported_alg_es256", self.es, "unsupported_alg", k2=200001, k3="VPCP-200001")
        self.good("unsupported_alg_es256_unknown_key", self.unknown_es, "unsupported_alg")
        self.case("unsupported_alg_ps256", signed(p, a, alg=-37), "unsupported_alg")
        self.case("unsupported_alg_rs384_label", signed(p, a, alg=-258, sign_alg=-257), "unsupported_alg")

        # ---- unknown_issuer --------------------------------------------------------------
        self.good("unknown_issuer", self.unknown, "unknown_issuer")
        self.good("unknown_issuer_root_key", self.root, "unknown_issuer")
        self.case(
            "unknown_issuer_removed_from_trust_list", base, "unknown_issuer", trust=self.trust_removed_a
        )
        self.case("unknown_issuer_trust_list_wrong_root", base, "unknown_issuer", trust=self.trust_wrong_root)
        self.case("unknown_issuer_trust_list_bad_signature", base, "unknown_issuer", trust=self.trust_bad_sig)
        self.case(
            "unknown_issuer_trust_list_empty", base, "unknown_issuer", trust="trust_ok_empty_entries.cbor"
        )
        self.case("malformed_before_unknown_issuer", self.mint(self.unknown, k1=2)[0], M)

        # ---- bad_signature ---------------------------------------------------------------
        B = "bad_signature"
        self.case(
            "bad_signature_tampered_staff",
            base.replace(b"CB-00001001", b"CB-00001009", 1),
            B,
            claims=self.claims(k3="CB-00001009"),
        )
        self.case(
            "bad_signature_tampered_serial",
            base.replace(b"\x02\x19\x03\xe9", b"\x02\x19\x03\xea", 1),
            B,
            claims=self.claims(k2=1002),
        )
        self.case("bad_signature_flipped_bit", base[:-1] + bytes([base[-1] ^ 1]), B)
        self.case(
            "bad_signature_protected_changed",
            assemble(protected_for(-257, kid_a, {3: 61}), p, base[-256:]),
            B,
        )
        sig_a = base[-256:]
        pa = protected_for(-257, kid_a)
        self.case("bad_signature_short_255", assemble(pa, p, sig_a[1:]), B)
        self.case("bad_signature_long_257", assemble(pa, p, b"\x00" + sig_a), B)
        self.case("bad_signature_empty", assemble(pa, p, b""), B)
        n_a = a.public_key().public_numbers().n
        self.case("bad_signature_s_equals_n", assemble(pa, p, n_a.to_bytes(256, "big")), B)
        self.case("bad_signature_s_above_n", assemble(pa, p, (n_a + 1).to_bytes(256, "big")), B)
        self.case("bad_signature_all_ff", assemble(pa, p, b"\xff" * 256), B)
        self.case("bad_signature_zero", assemble(pa, p, b"\x00" * 256), B)
        self.case("bad_signature_one", assemble(pa, p, b"\x00" * 255 + b"\x01"), B)
        self.case("bad_signature_wrong_key", signed(p, self.b, kid=kid_a), B)
        self.case(
            "bad_signature_es256_issuer_kid", signed(p, a, kid=keys.kid_of(self.es.public_key())), B, claims=c
        )
        self.case("bad_signature_pss_padding", signed(p, a, sign_alg=-37), B)
        digest = hashlib.sha256(cose.sig_structure(pa, p)).digest()
        self.case(
            "bad_signature_pkcs1_digestinfo_no_null",
            assemble(pa, p, rsa_raw(a, block_no_null(256, digest))),
            B,
        )
        self.case(
            "bad_signature_pkcs1_garbage_after_hash",
            assemble(pa, p, rsa_raw(a, block_garbage_after_hash(256, digest))),
            B,
        )
        wrong_digest = hashlib.sha256(p).digest()
        proper = b"\x00\x01" + b"\xff" * (256 - 3 - 51) + b"\x00" + DIGEST_INFO_SHA256
        self.case(
            "bad_signature_signed_payload_not_sig_structure",
            assemble(pa, p, rsa_raw(a, proper + wrong_digest)),
            B,
        )
        self.case(
            "bad_signature_signed_with_external_aad",
            assemble(pa, p, sign_bytes(a, -257, dumps(["Signature1", pa, b"aad", p]))),
            B,
        )
        self.case("ok_raw_rsa_block_control", assemble(pa, p, rsa_raw(a, proper + digest)), "ok")

        # ---- issuer_not_valid / serial_out_of_range ---------------------------------------------
        self.good("issuer_not_valid_past_issuer", self.past, "issuer_not_valid", k2=300001)
        self.good("issuer_not_valid_before_nbf", expect="issuer_not_valid", k9=T2023_06)
        self.good("issuer_not_valid_iat_equals_exp", expect="issuer_not_valid", k9=T2044, k10=T2045)
        self.good("serial_out_of_range_hi", expect="serial_out_of_range", k2=100000)
        self.good("serial_out_of_range_lo", expect="serial_out_of_range", k2=999)
        self.good("serial_out_of_range_other_issuers_range", expect="serial_out_of_range", k2=150000)
        self.good("serial_out_of_range_before_time_checks", expect="serial_out_of_range", k2=5, k10=T2026)

        # ---- time --------------------------------------------------------------------------
        self.good("not_yet_valid", expect="not_yet_valid", k9=NOW + SKEW + 1)
        self.good("not_yet_valid_before_expired", expect="not_yet_valid", k9=NOW + 1000, k10=NOW - 1000)
        self.good("expired_at_exp", expect="expired", k10=NOW)
        self.good("expired_long_ago", expect="expired", k10=T2026)
        self.good("expired_before_uid_mismatch", expect="expired", k10=T2026, uid=UID4)
        self.good("expired_old_clock_ok", k10=T2026, now=T2026 - 1)

        # ---- uid / revocation --------------------------------------------------------------
        self.case("uid_mismatch", base, "uid_mismatch", uid=bytes.fromhex("04a1b2c3d4e5f7"))
        self.case("uid_mismatch_length", base, "uid_mismatch", uid=UID4)
        self.good("uid_mismatch_before_revoked", expect="uid_mismatch", k2=1005, uid=UID10, crl=True)
        self.good("revoked", expect="revoked", k2=1005, crl=True)
        self.good("revoked_issuer_b", self.b, "revoked", k2=100007, crl=True)

    def sized(self, target: int) -> bytes:
        """A genuine credential from issuer A padded (unit text) to exactly ``target`` bytes."""
        pad = 10
        while True:
            c = self.claims(k6="Phòng " + "x" * pad)
            blob = cose.sign1(dumps(c), self.a)
            if len(blob) == target:
                self.sized_claims = c
                return blob
            if len(blob) > target:
                raise RuntimeError(f"cannot hit {target} bytes")
            pad += 1

    # -- checks and output --------------------------------------------------------------------

    def self_check(self) -> None:
        """Run every case through the host verifier/loaders; any disagreement aborts the run."""
        root_pub = self.root.public_key()
        failures = []
        for tc in self.trust_cases:
            got = trust_list.load(self.files[tc["file"]], root_pub, tc["held_seq"]).status
            if got != tc["expect"]:
                failures.append(f"trust {tc['name']}: expected {tc['expect']}, got {got}")
        for cc in self.crl_cases:
            res = revocation.load(self.files[cc["file"]], root_pub, cc["held_seq"])
            if res.status != cc["expect"]:
                failures.append(f"crl {cc['name']}: expected {cc['expect']}, got {res.status}")
            for s in cc["revoked"]:
                if res.crl is None or not res.crl.is_revoked(s):
                    failures.append(f"crl {cc['name']}: {s} should be revoked")
            for s in cc["not_revoked"]:
                if res.crl is not None and res.crl.is_revoked(s):
                    failures.append(f"crl {cc['name']}: {s} should not be revoked")
        crl = revocation.load(self.files[self.crl], root_pub).crl
        for case in self.cases:
            loaded = trust_list.load(self.files[case["trust"] or self.trust], root_pub)
            trust = loaded.trust_list or trust_list.EMPTY
            v = credential.verify(
                self.files[case["file"]],
                trust,
                bytes.fromhex(case["uid"]),
                case["now"],
                crl if case["crl"] else None,
            )
            got = (v.reason, v.serial, v.staff)
            want = (case["expect"], case["serial"], case["staff"])
            if got != want:
                failures.append(f"cred {case['name']}: expected {want}, got {got}")
        names = [c["name"] for c in self.cases]
        assert len(names) == len(set(names)), "duplicate case names"
        covered = {c["expect"] for c in self.cases}
        missing = set(credential.REASONS) - covered
        if missing:
            failures.append(f"reason codes without a case: {sorted(missing)}")
        if failures:
            raise SystemExit("vector self-check failed:\n  " + "\n  ".join(failures))

    def write(self, out: Path) -> None:
        for old in list(out.glob("*.cbor")) + list(out.glob("*.cose_key")):
            old.unlink()
        (out / "root.cose_key").write_bytes(keys.cose_key_bytes(self.root.public_key()))
        for name, data in self.files.items():
            (out / name).write_bytes(data)
        manifest = {
            "root": "root.cose_key",
            "trust": self.trust,
            "crl": self.crl,
            "skew": SKEW,
            "cases": self.cases,
            "trust_cases": self.trust_cases,
            "crl_cases": self.crl_cases,
        }
        (out / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )


def main() -> None:
    v = Vectors()
    v.build_trust_lists()
    v.build_crls()
    v.build_credentials()
    v.self_check()
    v.write(HERE)
    print(
        f"wrote {len(v.cases)} credential cases, {len(v.trust_cases)} trust-list cases, "
        f"{len(v.crl_cases)} revocation-list cases to {HERE}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
