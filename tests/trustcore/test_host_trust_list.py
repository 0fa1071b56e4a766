"""Trust list v1: build, load statuses, entry rules, seq monotonicity and the publisher's state file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.host import T2024, T2044, p256_key, root_key, rsa_key, setup

from trustcore import cbor_det, cose, keys, signed_object, trust_list
from trustcore.errors import TrustcoreError


def entry(role: str, lo: int, hi: int, name: str = "Sở Nội vụ") -> trust_list.IssuerEntry:
    return trust_list.IssuerEntry(rsa_key(role).public_key(), T2024, T2044, lo, hi, name)


def test_build_and_load() -> None:
    root = root_key()
    e1, e2 = entry("a", 1000, 100000), entry("b", 100000, 200000, "Sở Nội vụ TP Hồ Chí Minh")
    blob = trust_list.build(root, 9, 1234, [e1, e2])
    res = trust_list.load(blob, root.public_key())
    assert res.status == "ok" and res.trust_list is not None
    tl = res.trust_list
    assert (tl.seq, tl.iat) == (9, 1234)
    got = tl.get(e1.kid)
    assert got is not None and got.name == "Sở Nội vụ" and (got.serial_lo, got.serial_hi) == (1000, 100000)
    assert tl.get(b"\x00" * 8) is None
    msg = cose.parse_sign1(blob, trust_list.MAX_SIZE)
    assert msg.kid == keys.kid_of(root.public_key()) and msg.alg == cose.ALG_RS256


@pytest.mark.parametrize(
    ("held", "status"), [(None, "ok"), (0, "ok"), (8, "ok"), (9, "noop"), (10, "rollback"), (100, "rollback")]
)
def test_seq_statuses(held: int | None, status: str) -> None:
    root = root_key()
    blob = trust_list.build(root, 9, 0, [entry("a", 1, 2)])
    res = trust_list.load(blob, root.public_key(), held)
    assert res.status == status
    assert (res.trust_list is not None) == (status in ("ok", "noop"))


def test_envelope_statuses() -> None:
    root = root_key()
    payload = trust_list.build_payload(1, 0, [entry("a", 1, 2)])
    blob = cose.sign1(payload, root)
    pub = root.public_key()
    assert trust_list.load(blob, pub).status == "ok"
    assert trust_list.load(cose.sign1(payload, rsa_key("other-root", 3072)), pub).status == "unknown_root"
    es = cose.sign1(payload, p256_key("es"), kid=keys.kid_of(pub))
    assert trust_list.load(es, pub).status == "unsupported_alg"
    assert trust_list.load(blob[:-1] + bytes([blob[-1] ^ 1]), pub).status == "bad_signature"
    assert trust_list.load(blob + b"\x00", pub).status == "malformed"
    assert trust_list.load(b"\xd2" + b"\x00" * 20000, pub).status == "malformed"


def _signed(payload_obj: object) -> bytes:
    return cose.sign1(cbor_det.dumps(payload_obj), root_key())


def test_payload_rules() -> None:
    pub = root_key().public_key()
    good = entry("a", 1, 2).to_map()
    ok_cases = [
        {1: 1, 2: 1, 3: 0, 4: []},
        {1: 1, 2: 1, 3: 0, 4: [good], 99: "future"},
        {1: 1, 2: 1, 3: 0, 4: [{**good, 8: "unknown entry key"}]},
    ]
    for p in ok_cases:
        assert trust_list.load(_signed(p), pub).status == "ok", p
    bad_entries = [
        {**good, 1: keys.kid_of(rsa_key("b").public_key())},
        {**good, 5: 2, 6: 2},
        {**good, 3: 5, 4: 5},
        {**good, 3: -1},
        {**good, 7: b"name"},
        {k: v for k, v in good.items() if k != 6},
        {**good, 2: {1: 3, -1: b"\x80" * 128, -2: b"\x01\x00\x01"}},
    ]
    bad_cases: list[object] = [
        [1, 1, 0, []],
        {1: 2, 2: 1, 3: 0, 4: []},
        {1: True, 2: 1, 3: 0, 4: []},
        {1: 1, 2: -1, 3: 0, 4: []},
        {1: 1, 2: 1, 3: 0, 4: {}},
        {1: 1, 2: 1, 3: 0, 4: [good, good]},
        *({1: 1, 2: 1, 3: 0, 4: [e]} for e in bad_entries),
    ]
    for p in bad_cases:
        assert trust_list.load(_signed(p), pub).status == "malformed", p


def test_es256_entries_are_listed() -> None:
    tl = setup().trust
    es_kid = keys.kid_of(p256_key("es").public_key())
    got = tl.get(es_kid)
    assert got is not None and got.alg == "ES256"


def test_publisher_checks() -> None:
    root = root_key()
    with pytest.raises(TrustcoreError, match="overlap"):
        trust_list.build(root, 1, 0, [entry("a", 1, 100), entry("b", 50, 200)])
    with pytest.raises(TrustcoreError, match="twice"):
        trust_list.build(root, 1, 0, [entry("a", 1, 100), entry("a", 100, 200)])
    with pytest.raises(TrustcoreError, match="2\\^53"):
        trust_list.build(root, 1, 0, [entry("a", 1, 2**53 + 1)])
    # amendment 1: 128 KiB (a 20-entry list with long names is fine now, 180 of them are not)
    trust_list.build(root, 1, 0, [entry(f"k{i}", i * 10, i * 10 + 10, "Sở " + "x" * 700) for i in range(20)])
    big = [entry(f"k{i % 20}", i * 10, i * 10 + 10, "Sở " + "x" * 700 + str(i)) for i in range(180)]
    with pytest.raises(TrustcoreError, match="twice"):
        trust_list.build(root, 1, 0, big)


def test_seq_state_file(tmp_path: Path) -> None:
    state = tmp_path / "trust-list.seq"
    assert signed_object.read_last_seq(state) is None
    assert signed_object.choose_seq(state, None) == 1
    assert signed_object.choose_seq(state, 7) == 7
    signed_object.record_seq(state, 7)
    assert signed_object.choose_seq(state, None) == 8
    for lower in (7, 3, 0):
        with pytest.raises(TrustcoreError, match="not above"):
            signed_object.choose_seq(state, lower)
    assert signed_object.choose_seq(state, 8) == 8
    state.write_text("garbage")
    with pytest.raises(TrustcoreError, match="damaged"):
        signed_object.choose_seq(state, None)


def test_issuer_json_round_trip(tmp_path: Path) -> None:
    e = entry("a", 1000, 100000, "Sở Nội vụ tỉnh Nam Định")
    (tmp_path / "issuer.json").write_text(trust_list.issuer_json(e), encoding="utf-8")
    back = trust_list.issuer_from_json(tmp_path)
    assert back == e
    doc = json.loads((tmp_path / "issuer.json").read_text(encoding="utf-8"))
    assert doc["kid"] == e.kid.hex() and doc["alg"] == "RS256" and doc["nbf"] == "2024-01-01T00:00:00Z"
    doc["kid"] = "00" * 8
    (tmp_path / "bad.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(TrustcoreError, match="does not match"):
        trust_list.issuer_from_json(tmp_path / "bad.json")
