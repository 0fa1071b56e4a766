"""Every case of tests/vectors/manifest.json through the host verifier and list loaders.

The firmware tests read the same manifest under MicroPython; both sides must give these answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.host import VECTORS, manifest

from trustcore import credential, keys, revocation, signed_object, trust_list

M = manifest()


def _root() -> keys.PublicKey:
    return keys.load_cose_key((VECTORS / M["root"]).read_bytes())


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


@pytest.mark.parametrize("case", M["cases"], ids=_ids(M["cases"]))
def test_credential_case(case: dict[str, Any]) -> None:
    root = _root()
    loaded = trust_list.load((VECTORS / (case["trust"] or M["trust"])).read_bytes(), root)
    trust = loaded.trust_list if loaded.status == "ok" and loaded.trust_list else trust_list.EMPTY
    crl = None
    if case["crl"]:
        crl = revocation.load((VECTORS / M["crl"]).read_bytes(), root).crl
        assert crl is not None
    v = credential.verify(
        (VECTORS / case["file"]).read_bytes(), trust, bytes.fromhex(case["uid"]), case["now"], crl
    )
    assert (v.reason, v.serial, v.staff) == (case["expect"], case["serial"], case["staff"])


@pytest.mark.parametrize("case", M["trust_cases"], ids=_ids(M["trust_cases"]))
def test_trust_list_case(case: dict[str, Any]) -> None:
    res = trust_list.load((VECTORS / case["file"]).read_bytes(), _root(), case["held_seq"])
    assert res.status == case["expect"]


@pytest.mark.parametrize("case", M["crl_cases"], ids=_ids(M["crl_cases"]))
def test_crl_case(case: dict[str, Any]) -> None:
    res = revocation.load((VECTORS / case["file"]).read_bytes(), _root(), case["held_seq"])
    assert res.status == case["expect"]
    for s in case["revoked"]:
        assert res.crl is not None and res.crl.is_revoked(s)
    for s in case["not_revoked"]:
        assert res.crl is None or not res.crl.is_revoked(s)


def test_manifest_covers_everything() -> None:
    assert M["skew"] == credential.SKEW
    assert {c["expect"] for c in M["cases"]} == set(credential.REASONS)
    assert {c["expect"] for c in M["trust_cases"]} == set(signed_object.STATUSES)
    assert {c["expect"] for c in M["crl_cases"]} == set(signed_object.STATUSES)
    names = [c["name"] for c in M["cases"]]
    assert len(names) == len(set(names))
    for c in M["cases"]:
        assert c["uid"] == c["uid"].lower() and isinstance(c["now"], int)
        assert (c["serial"] is None) == (c["expect"] == "malformed") == (c["staff"] is None)
    wanted = {
        "ok_groups",
        "ok_vietnamese_diacritics",
        "ok_unknown_keys_ignored",
        "unsupported_alg_es256",
        "malformed_truncated_last_byte",
        "malformed_size_1025",
        "malformed_trailing_garbage",
        "malformed_indefinite_payload_map",
        "malformed_duplicate_key",
        "malformed_serial_text",
        "malformed_missing_key_12",
        "malformed_bad_utf8",
        "bad_signature_tampered_staff",
    }
    assert wanted <= set(names)
    trust = trust_list.load((VECTORS / M["trust"]).read_bytes(), _root())
    assert trust.trust_list is not None and trust.trust_list.seq == 5
    algs = sorted(e.alg for e in trust.trust_list.entries.values())
    assert algs.count("RS256") >= 2 and "ES256" in algs
    assert any(e.exp < min(c["now"] for c in M["cases"]) for e in trust.trust_list.entries.values())


def test_every_vector_file_is_referenced_and_public() -> None:
    referenced = {M["root"], M["trust"], M["crl"]}
    for group in ("cases", "trust_cases", "crl_cases"):
        for c in M[group]:
            referenced.add(c["file"])
            if c.get("trust"):
                referenced.add(c["trust"])
    on_disk = {p.name for p in VECTORS.iterdir() if p.suffix in (".cbor", ".cose_key")}
    assert on_disk == referenced
    for p in VECTORS.iterdir():
        if p.is_file():
            assert b"PRIVATE KEY" not in p.read_bytes() or p.name == "generate.py", p
