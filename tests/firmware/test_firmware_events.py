"""Sealed event records: what the reader publishes can be checked by the gateway with nothing
but standard libraries (cbor2, hmac), and any change to a record, its number or its reader is
detected."""

from __future__ import annotations

import hashlib
import hmac

import cbor2
import events
import hmac_sha256
import pytest
from support.micropython_runner import run_snippet

KEY = bytes(range(32))


def _tap(seq_hint: int = 0) -> bytes:
    return events.record(events.KIND_TAP, 1_790_000_000 + seq_hint, events.TQ_SYNCED, 3, 123456, {
        events.DECISION: "grant", events.REASON: "ok", events.SERIAL: 2000001,
        events.STAFF: "CB-01-0012345", events.TECH: "desfire", events.ANTI_CLONE: True,
        events.DOOR: "Cổng chính", events.DIRECTION: "in", events.DETAIL: None,
    })  # fmt: skip


def _gateway_check(reader_id: str, payload: bytes) -> tuple[int, dict[int, object]]:
    ver, seq, rec, tag = cbor2.loads(payload)
    assert ver == 1
    rid = reader_id.encode()
    want = hmac.new(KEY, b"cbcc-ev1" + bytes([len(rid)]) + rid + seq.to_bytes(8, "big") + rec, hashlib.sha256)
    assert hmac.compare_digest(want.digest(), tag)
    return seq, cbor2.loads(rec)


def test_sealed_record_verifies_with_standard_libraries() -> None:
    rec = _tap()
    payload = events.seal(hmac_sha256.Hmac(KEY), "reader-01", 42, rec)
    seq, m = _gateway_check("reader-01", payload)
    assert seq == 42
    assert m[events.KIND] == "tap" and m[events.DOOR] == "Cổng chính"
    assert events.DETAIL not in m  # None fields are left out
    assert events.open_sealed(hmac_sha256.Hmac(KEY), "reader-01", payload) == (42, m)


@pytest.mark.parametrize("change", ["reader", "seq", "record", "mac", "key"])
def test_any_change_is_detected(change: str) -> None:
    mac = hmac_sha256.Hmac(KEY)
    payload = events.seal(mac, "reader-01", 7, _tap())
    reader = "reader-01"
    if change == "reader":
        reader = "reader-02"
    elif change == "seq":
        v = cbor2.loads(payload)
        payload = cbor2.dumps([v[0], 8, v[2], v[3]])
    elif change == "record":
        v = cbor2.loads(payload)
        payload = cbor2.dumps([v[0], v[1], v[2].replace(b"grant", b"xxxxx"), v[3]])
    elif change == "mac":
        payload = payload[:-1] + bytes([payload[-1] ^ 1])
    else:
        mac = hmac_sha256.Hmac(bytes(32))
    with pytest.raises(ValueError):
        events.open_sealed(mac, reader, payload)


def test_garbage_is_a_value_error_not_a_crash() -> None:
    mac = hmac_sha256.Hmac(KEY)
    for junk in (b"", b"\xff", cbor2.dumps([1, 2]), cbor2.dumps([True, 1, b"", b""]), cbor2.dumps({})):
        with pytest.raises(ValueError):
            events.open_sealed(mac, "reader-01", junk)


def test_micropython_seals_the_same_bytes() -> None:
    proc = run_snippet(
        "import events, hmac_sha256, binascii\n"
        "rec = events.record('tap', 1790000000, 2, 3, 123456, {10: 'grant', 16: 'Cổng chính'})\n"
        "mac = hmac_sha256.Hmac(bytes(range(32)))\n"
        "print(binascii.hexlify(events.seal(mac, 'reader-01', 42, rec)).decode())\n"
    )
    assert proc.returncode == 0, proc.stderr
    rec = events.record("tap", 1790000000, 2, 3, 123456, {10: "grant", 16: "Cổng chính"})
    assert bytes.fromhex(proc.stdout.strip()) == events.seal(hmac_sha256.Hmac(KEY), "reader-01", 42, rec)
