"""National compact revocation list v1: host builder and reference, the reader (under CPython
and under the real MicroPython unix port) agreeing on every answer, statuses, hostile bodies."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import cose_key
import crl_national as fw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.host import p256_key, root_key, rsa_key
from support.micropython_runner import run_micropython

from trustcore import cbor_det, cbor_strict, cose, keys
from trustcore import crl_national as host
from trustcore.errors import TrustcoreError

LIMIT = 2**53


def fw_root(key: keys.PublicKey | None = None) -> Any:
    return cose_key.load(keys.cose_key_bytes(key or root_key().public_key()))


def full(seq: int, serials: Any, ranges: list[tuple[int, int]], **kw: Any) -> bytes:
    return host.build_full(
        root_key(), seq, 1_780_000_000, serials, [host.Range(a, b) for a, b in ranges], **kw
    )


class Reader:
    """The firmware's NationalList in a state folder, fed object files like the uplink would."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        self.folder = folder
        self.lst = fw.NationalList(fw_root(), str(folder))

    def offer(self, blob: bytes) -> str:
        p = self.folder / "in.obj"
        p.write_bytes(blob)
        status: str = self.lst.offer(str(p))
        if status != "ok":
            p.unlink()
        return status

    def reboot(self) -> str | None:
        self.lst.close()
        self.lst = fw.NationalList(fw_root(), str(self.folder))
        status: str | None = self.lst.load_held()
        return status


def random_case(rng: random.Random) -> tuple[list[tuple[int, int]], set[int]]:
    """Ranges of every kind (empty, one serial, all revoked, dense, sparse, at 0 and at 2^53)
    and a revoked set inside them."""
    ranges: list[tuple[int, int]] = []
    serials: set[int] = set()
    lo = 0
    for i in range(rng.randrange(1, 9)):
        kind = rng.choice(["empty", "one", "all", "dense", "sparse", "mixed"])
        n = rng.choice([1, 2, 7, 64, 500, 3000, 20000])
        if i == 0 and rng.random() < 0.5:
            lo = 0
        a, b = lo, lo + n
        ranges.append((a, b))
        if kind == "one":
            serials.add(rng.randrange(a, b))
        elif kind == "all":
            serials.update(range(a, b))
        elif kind == "dense":
            serials.update(s for s in range(a, b) if rng.random() < 0.3)
        elif kind == "sparse":
            serials.update(rng.sample(range(a, b), max(1, n // 1000)))
        elif kind == "mixed":
            serials.update(s for s in range(a, b) if rng.random() < 0.05)
            serials.update({a, b - 1})
        lo = b + rng.choice([0, 1, 5, 10**6, 10**12])
    if rng.random() < 0.3:
        top = (LIMIT - 300, LIMIT)
        ranges.append(top)
        serials.update(s for s in range(*top) if rng.random() < 0.2)
        serials.add(LIMIT - 1)
    return ranges, serials


def probes_for(ranges: list[tuple[int, int]], serials: set[int], rng: random.Random) -> list[int]:
    out = set(serials)
    for a, b in ranges:
        out.update(x for x in (a - 1, a, a + 1, b - 1, b, b + 1) if x >= 0)
        out.update(rng.randrange(a, b) for _ in range(20))
    out.update(rng.randrange(0, LIMIT) for _ in range(50))
    out.update({0, 1, LIMIT - 1})
    return sorted(out)


# ---- format ------------------------------------------------------------------------------------


def test_object_layout() -> None:
    blob = full(7, [5, 300, 2**40], [(0, 1000), (2**40, 2**40 + 10)])
    end = host.header_end(blob)
    msg = cose.parse_sign1(blob[:end], host.MAX_HEADER)
    assert msg.alg == cose.ALG_RS256 and msg.kid == keys.kid_of(root_key().public_key())
    payload = cbor_strict.decode(msg.payload)
    body = blob[end:]
    assert payload == {
        0: "ncrl",
        1: 1,
        2: 7,
        3: 1_780_000_000,
        4: 0,
        5: len(body),
        6: hashlib.sha256(body).digest(),
    }
    assert msg.payload == cbor_det.dumps(payload)
    assert body[:6] == b"NCRL\x01\x00" and int.from_bytes(body[7:9], "big") == 2
    parsed = host.parse_full_body(body)
    assert list(parsed.serials()) == [5, 300, 2**40]
    # each range is trimmed to its first and last revoked serial
    assert [(r.lo, r.span) for r in parsed.ranges] == [(5, 296), (2**40, 1)]


def test_delta_layout() -> None:
    base = host.load(full(3, [10, 20, 30], [(0, 100)]), root_key().public_key())
    blob = host.build_delta(root_key(), 4, 0, base, [10, 30, 40, 2**50])
    end = host.header_end(blob)
    payload = cbor_strict.decode(cose.parse_sign1(blob[:end], host.MAX_HEADER).payload)
    assert payload[4] == 1 and payload[7] == 3 and payload[8] == base.full_header.digest  # type: ignore[union-attr]
    d = host.parse_delta_body(blob[end:])
    assert d.added == {40, 2**50} and d.removed == {20}


# ---- agreement ---------------------------------------------------------------------------------


def test_edge_cases(tmp_path: Path) -> None:
    """Serial 0, a bucket where every serial is revoked, an empty range kept in the table,
    range boundaries, serials between and outside ranges, the last serial below 2^53."""
    ranges = [(0, 64), (100, 200), (1000, 1001), (5000, 9000), (LIMIT - 3, LIMIT)]
    serials = set(range(64)) | {1000, 5000, 8999, LIMIT - 1}
    blob = full(3, serials, ranges, keep_empty=True, bucket_entries=16)
    held = host.load(blob, root_key().public_key())
    assert held.full is not None and [(r.lo, r.span) for r in held.full.ranges] == [
        (0, 64), (100, 100), (1000, 1), (5000, 4000), (LIMIT - 1, 1)
    ]  # fmt: skip
    r = Reader(tmp_path / "r")
    assert r.offer(blob) == "ok"
    probes = [0, 1, 63, 64, 65, 99, 100, 150, 199, 200, 999, 1000, 1001, 4999, 5000, 5001, 8998, 8999, 9000]
    probes += [LIMIT - 3, LIMIT - 2, LIMIT - 1, LIMIT, 2**64, -1]
    for s in probes:
        assert held.is_revoked(s) == r.lst.is_revoked(s) == (s in serials), s
    empty = full(4, [], [(0, 10)])
    assert r.offer(empty) == "ok" and r.lst.count() == 0 and not r.lst.is_revoked(0)
    assert host.load(empty, root_key().public_key()).count() == 0


@pytest.mark.parametrize("seed", range(12))
def test_host_and_reader_agree(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    ranges, serials = random_case(rng)
    blob = full(1, serials, ranges, keep_empty=seed % 2 == 0, bucket_entries=rng.choice([1, 4, 64, 300]))
    held = host.load(blob, root_key().public_key())
    assert held.seq == 1 and held.count() == len(serials), held.detail
    r = Reader(tmp_path / "r")
    assert r.offer(blob) == "ok", r.lst.detail
    for s in probes_for(ranges, serials, rng):
        assert held.is_revoked(s) == r.lst.is_revoked(s) == (s in serials), s
    assert r.lst.count() == len(serials)


def test_deltas_agree_and_replace_each_other(tmp_path: Path) -> None:
    rng = random.Random(99)
    ranges = [(1000, 60000), (100000, 100050), (5 * 10**8, 5 * 10**8 + 200000)]
    serials = {s for a, b in ranges for s in range(a, b) if rng.random() < 0.08}
    blob = full(10, serials, ranges)
    held = host.load(blob, root_key().public_key())
    r = Reader(tmp_path / "r")
    assert r.offer(blob) == "ok"
    now = set(serials)
    for seq in (11, 12, 13):
        now -= set(rng.sample(sorted(now), 40))
        now |= set(rng.sample(range(1000, 60000), 300)) | {0, 99999, 2**53 - 1, rng.randrange(10**9, 10**10)}
        d = host.build_delta(root_key(), seq, 0, held, now)
        assert held.offer(d) == "ok" and r.offer(d) == "ok", (held.detail, r.lst.detail)
        assert held.seq == r.lst.seq == seq and held.count() == r.lst.count() == len(now)
        for s in probes_for(ranges, now | serials, rng):
            assert held.is_revoked(s) == r.lst.is_revoked(s) == (s in now), s
    assert r.reboot() == "ok" and r.lst.seq == 13
    assert all(r.lst.is_revoked(s) == (s in now) for s in probes_for(ranges, now | serials, rng))
    # a new full list replaces base and delta alike; the old delta's file is gone
    assert r.offer(full(14, [1000], [(1000, 2000)])) == "ok"
    assert r.lst.is_revoked(1000) and not r.lst.is_revoked(99999) and r.lst.seq == 14
    assert not (tmp_path / "r" / fw.DELTA_FILE).exists()
    assert r.reboot() == "ok" and r.lst.seq == 14


# ---- statuses ----------------------------------------------------------------------------------


def _both(held: host.NationalList, r: Reader, blob: bytes) -> str:
    a, b = held.offer(blob), r.offer(blob)
    assert a == b, (a, b, held.detail, r.lst.detail)
    return a


def test_statuses(tmp_path: Path) -> None:
    pub = root_key().public_key()
    base = full(5, range(100, 200, 3), [(0, 1000)])
    held, r = host.NationalList(pub), Reader(tmp_path / "r")
    assert _both(held, r, full(4, [1], [(0, 10)])) == "ok"
    assert _both(held, r, base) == "ok"
    assert _both(held, r, base) == "noop"
    assert _both(held, r, full(4, [1], [(0, 10)])) == "rollback"
    ref = host.load(base, pub)
    delta = host.build_delta(root_key(), 6, 0, ref, [1, 2, 3])
    # a delta for another base: other seq, or same seq with another body
    other = host.load(full(5, [7], [(0, 10)]), pub)
    assert _both(held, r, host.build_delta(root_key(), 6, 0, other, [1])) == "wrong_base"
    assert host.NationalList(pub).offer(delta) == Reader(tmp_path / "empty").offer(delta) == "wrong_base"
    end = host.header_end(delta)
    sig_flip = bytearray(delta)
    sig_flip[end - 5] ^= 1
    assert _both(held, r, bytes(sig_flip)) == "bad_signature"
    body_flip = bytearray(delta)
    body_flip[-3] ^= 0x10
    assert _both(held, r, bytes(body_flip)) == "bad_digest"
    assert _both(held, r, delta[:-1]) == "bad_length"
    assert _both(held, r, delta + b"\x00") == "bad_length"
    assert _both(held, r, b"\xd2\x84garbage") == "malformed"
    assert _both(held, r, b"") == "malformed"
    other_root = rsa_key("other-root", 3072)
    foreign = host.build_full(other_root, 9, 0, [1], [host.Range(0, 5)])
    assert _both(held, r, foreign) == "unknown_root"
    assert _both(held, r, delta) == "ok"
    assert _both(held, r, delta) == "noop"
    assert held.seq == r.lst.seq == 6
    assert _both(held, r, host.build_delta(root_key(), 8, 0, ref, [1])) == "ok"
    assert _both(held, r, delta) == "rollback"
    assert _both(held, r, full(7, [1], [(0, 10)])) == "rollback"
    assert (
        held.seq == r.lst.seq == 8 and held.is_revoked(1) and r.lst.is_revoked(1) and not r.lst.is_revoked(2)
    )


def _signed_header(payload: dict[int, Any], body: bytes, key: keys.PrivateKey | None = None) -> bytes:
    k = key or root_key()
    return cose.sign1(cbor_det.dumps(payload), k, kid=keys.kid_of(root_key().public_key())) + body


def test_header_rules(tmp_path: Path) -> None:
    body = host.build_full_body([1, 2], [host.Range(0, 9)])
    d = hashlib.sha256(body).digest()
    good = {0: "ncrl", 1: 1, 2: 3, 3: 0, 4: 0, 5: len(body), 6: d}
    held, r = host.NationalList(root_key().public_key()), Reader(tmp_path / "r")
    assert _both(held, r, _signed_header({**good, 99: "ignored"}, body)) == "ok"
    for change in (
        {0: "crl"},
        {1: 2},
        {1: True},
        {2: -1},
        {4: 2},
        {5: "9"},
        {6: d[:31]},
        {7: 1, 8: d},  # base fields in a full list
        {4: 1},  # a delta without its base
        {4: 1, 7: 4, 8: d},  # base seq not below seq
        {4: 1, 7: 2, 8: b"x"},
    ):
        p = {**good, 2: 4}
        p.update(change)
        assert _both(held, r, _signed_header(p, body)) == "malformed", change
    assert _both(held, r, _signed_header({**good, 2: 9, 5: host.MAX_FULL_BODY + 1}, body)) == "too_large"
    delta_big = {**good, 2: 9, 4: 1, 5: host.MAX_DELTA_BODY + 1, 7: 3, 8: d}
    assert _both(held, r, _signed_header(delta_big, body)) == "too_large"
    es = _signed_header(good, body, p256_key("es"))
    assert _both(held, r, es) == "unsupported_alg"


def test_stream_hashes_chunks_as_they_arrive(tmp_path: Path) -> None:
    rng = random.Random(3)
    blob = full(2, rng.sample(range(10**6), 5000), [(0, 10**6)])
    end = host.header_end(blob)
    header, body = blob[:end], blob[end:]
    chunks = [body[i : i + 2048] for i in range(0, len(body), 2048)]
    root = fw_root()

    def stream(parts: list[bytes]) -> str:
        s = fw.Stream(str(tmp_path / "in.obj"), header, root)
        for c in parts:
            if s.write(c) != "ok":
                break
        status: str = s.finish()
        return status

    assert stream(chunks) == "ok"
    r = Reader(tmp_path / "r")
    assert r.lst.offer(str(tmp_path / "in.obj")) == "ok"
    assert stream(chunks[1:2] + chunks[0:1] + chunks[2:]) == "bad_digest"
    assert stream(chunks[:3] + chunks[2:]) == "bad_length"
    assert stream(chunks[:-1]) == "bad_length"
    assert stream([*chunks[:-1], chunks[-1][:-1] + b"\x00"]) == "bad_digest"
    s = fw.Stream(str(tmp_path / "x.obj"), header[:-1] + b"\x00", root)
    assert s.status == "bad_signature" and s.finish() == "bad_signature"


# ---- hostile bodies (correctly signed) ---------------------------------------------------------


def raw_full(
    ranges: list[tuple[int, int, int, int]], buckets: list[str], count: int, w: int = 3, pad: str = ""
) -> bytes:
    """A full body from bit strings, one per bucket (no checks: for building bad ones)."""
    index, bits = [], ""
    for b in buckets:
        index.append(len(bits))
        bits += b
    index.append(len(bits))
    total = len(bits)
    bits += pad or "0" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    head = b"NCRL\x01\x00" + bytes([w]) + len(ranges).to_bytes(2, "big") + count.to_bytes(4, "big")
    head += (len(buckets)).to_bytes(4, "big") + total.to_bytes(4, "big")
    table = b"".join(
        lo.to_bytes(7, "big") + span.to_bytes(4, "big") + bytes([k]) + width.to_bytes(3, "big")
        for lo, span, k, width in ranges
    )
    return head + table + b"".join(x.to_bytes(w, "big") for x in index) + data


def rice(v: int, k: int) -> str:
    return "0" * (v >> k) + "1" + (format(v & ((1 << k) - 1), "b").zfill(k) if k else "")


def sign_body(body: bytes, seq: int = 50, kind: int = 0, base: host.Header | None = None) -> bytes:
    h = host.Header(seq, 0, kind, len(body), hashlib.sha256(body).digest())
    if base is not None:
        h = host.Header(seq, 0, kind, len(body), h.digest, base.seq, base.digest)
    return host.sign(root_key(), h, body)


GOOD_RAW = raw_full([(100, 20, 1, 10)], [rice(0, 1) + rice(3, 1), rice(9, 1)], 3)

BAD_BODIES = {
    "count": raw_full([(100, 20, 1, 10)], [rice(0, 1) + rice(3, 1), rice(9, 1)], 4),
    "beyond bucket": raw_full([(100, 20, 1, 10)], [rice(0, 1) + rice(9, 1), rice(9, 1)], 3),
    "beyond last bucket": raw_full([(100, 15, 1, 10)], [rice(0, 1), rice(5, 1)], 2),
    "unary past end": raw_full([(100, 20, 1, 10)], [rice(0, 1) + "000", rice(9, 1)], 1),
    "remainder past end": raw_full([(100, 20, 3, 10)], [rice(0, 3)[:-1], ""], 1),
    "buckets vs ranges": raw_full([(100, 20, 1, 10)], [rice(0, 1)], 1),
    "width > span": raw_full([(100, 5, 1, 10)], [rice(0, 1)], 1),
    "k too large": raw_full([(100, 20, 23, 20)], [rice(0, 23)], 1),
    "ranges overlap": raw_full([(100, 20, 1, 20), (110, 5, 1, 5)], [rice(0, 1), rice(0, 1)], 2),
    "beyond 2^53": raw_full([(LIMIT - 2, 5, 1, 5)], [rice(0, 1)], 1),
    "padding": raw_full([(100, 20, 1, 10)], [rice(0, 1), ""], 1, pad="000001"),
    "index width": raw_full([(100, 20, 1, 10)], [rice(0, 1), ""], 1, w=2),
    "long bucket": raw_full([(0, 10**6, 0, 10**6)], ["0" * 2100 + "1"], 1),
    "magic": b"NCRX" + GOOD_RAW[4:],
    "kind": GOOD_RAW[:5] + b"\x01" + GOOD_RAW[6:],
    "trailing": GOOD_RAW + b"\x00",
    "short": GOOD_RAW[:10],
}


def test_raw_builder_matches_the_real_one() -> None:
    assert list(host.parse_full_body(GOOD_RAW).serials()) == [100, 104, 119]


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_full_bodies_are_malformed(name: str, tmp_path: Path) -> None:
    blob = sign_body(BAD_BODIES[name])
    held, r = host.NationalList(root_key().public_key()), Reader(tmp_path / "r")
    assert _both(held, r, blob) == "malformed"
    assert held.detail and r.lst.detail, (held.detail, r.lst.detail)
    with pytest.raises(host.BodyError):
        host.parse_full_body(BAD_BODIES[name])


def raw_delta(add: list[int], rem: list[int], k: int = 2, na: int | None = None, extra: str = "") -> bytes:
    def eg(vals: list[int]) -> str:
        out, prev = "", -1
        for s in vals:
            x = s - prev - 1 + (1 << k)
            out += "0" * (x.bit_length() - k - 1) + format(x, "b")
            prev = s
        return out

    a, b = eg(add) + extra, eg(rem)
    da = int(a + "0" * (-len(a) % 8), 2).to_bytes((len(a) + 7) // 8, "big") if a else b""
    db = int(b + "0" * (-len(b) % 8), 2).to_bytes((len(b) + 7) // 8, "big") if b else b""
    head = b"NCRL\x01\x01" + bytes([k, k])
    head += b"".join(x.to_bytes(4, "big") for x in (len(add) if na is None else na, len(rem), len(a), len(b)))
    return head + da + db


@pytest.mark.parametrize(
    "name,body",
    [
        ("overlap", raw_delta([5, 9], [9])),
        ("count", raw_delta([5, 9], [], na=3)),
        ("leftover", raw_delta([5, 9], [], extra="1")),
        ("beyond 2^53", raw_delta([LIMIT - 1, LIMIT], [])),
        ("too many", raw_delta([1], [], na=host.MAX_DELTA_ENTRIES + 1)),
    ],
)
def test_bad_delta_bodies_are_malformed(name: str, body: bytes, tmp_path: Path) -> None:
    base = full(5, [1, 2], [(0, 10)])
    held, r = host.NationalList(root_key().public_key()), Reader(tmp_path / "r")
    assert _both(held, r, base) == "ok"
    assert host.parse_delta_body(raw_delta([5, 9], [1])).added == {5, 9}
    blob = sign_body(body, 60, 1, held.full_header)
    assert _both(held, r, blob) == "malformed", name


def test_builder_refuses_bad_input() -> None:
    with pytest.raises(TrustcoreError, match="in no serial range"):
        host.build_full_body([5, 50], [host.Range(0, 10)])
    with pytest.raises(TrustcoreError, match="in no serial range"):
        host.build_full_body([5], [host.Range(10, 20)])
    with pytest.raises(TrustcoreError, match="overlap"):
        host.build_full_body([5], [host.Range(0, 10), host.Range(9, 20)])
    with pytest.raises(TrustcoreError, match="2\\^53"):
        host.build_full_body([LIMIT], [host.Range(0, 10)])
    with pytest.raises(TrustcoreError, match="at most"):
        host.build_delta_body(range(host.MAX_DELTA_ENTRIES + 1), [])
    with pytest.raises(TrustcoreError, match="both"):
        host.build_delta_body([1], [1])
    assert host.parse_ranges_text("# issuers\n0 10  Bộ Nội vụ\n20:30\n\n") == [
        host.Range(0, 10),
        host.Range(20, 30),
    ]
    with pytest.raises(TrustcoreError, match="line 1"):
        host.parse_ranges_text("abc 10")


# ---- fuzzing -----------------------------------------------------------------------------------

FUZZ_BASE = host.build_full_body(
    [*random.Random(5).sample(range(0, 3000), 400), 10**6, 10**6 + 77],
    [host.Range(0, 3000), host.Range(10**6, 10**7)],
)
FUZZ_DELTA = host.build_delta_body([3, 70, 10**9, 10**9 + 5], [8, 12])


def _fw_full(body: bytes) -> Any:
    return fw.FullBody(io.BytesIO(body), 0, len(body), bytearray(fw.MAX_BUCKET_BYTES + 8), True)


@given(st.data())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_full_body_host_and_reader_agree(data: st.DataObject) -> None:
    body = bytearray(FUZZ_BASE)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        body = body[: data.draw(st.integers(0, len(body)))]
    try:
        ref = host.parse_full_body(bytes(body))
    except host.BodyError:
        ref = None
    try:
        got = _fw_full(bytes(body))
    except fw.BodyError:
        got = None
    assert (ref is None) == (got is None)
    if ref is not None:
        truth = set(ref.serials())
        assert len(truth) == ref.count
        for s in data.draw(st.lists(st.integers(0, 2 * 10**7), max_size=30)) + sorted(truth)[:50]:
            assert ref.is_revoked(s) == got.has(s) == (s in truth)


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_bytes(blob: bytes) -> None:
    for parse in (host.parse_full_body, host.parse_delta_body):
        with contextlib.suppress(host.BodyError):
            parse(blob)
    with contextlib.suppress(fw.BodyError):
        _fw_full(blob)
    with contextlib.suppress(fw.BodyError):
        fw.DeltaBody(io.BytesIO(blob), 0, len(blob), bytearray(fw.MAX_BUCKET_BYTES + 8))
    with contextlib.suppress(host.BodyError):
        host.header_end(blob)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_fuzz_delta_body_host_and_reader_agree(data: st.DataObject) -> None:
    body = bytearray(FUZZ_DELTA)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    try:
        ref = host.parse_delta_body(bytes(body))
    except host.BodyError:
        ref = None
    try:
        got = fw.DeltaBody(io.BytesIO(bytes(body)), 0, len(body), bytearray(fw.MAX_BUCKET_BYTES + 8))
    except fw.BodyError:
        got = None
    assert (ref is None) == (got is None)
    if ref is not None:
        for s in [*sorted(ref.added | ref.removed), 0, 1, 10**9 + 1]:
            assert got.added.has(s) == (s in ref.added) and got.removed.has(s) == (s in ref.removed)


# ---- under the real MicroPython unix port ------------------------------------------------------

MP_AGREE = r"""
import sys
import cose_key, crl_national
d = sys.argv[1]
root = cose_key.load(open(d + "/root.cose_key", "rb").read())
lst = crl_national.NationalList(root, d + "/state")
out = []
for name, bit in (("full.obj", 1), ("delta.obj", 2)):
    open(d + "/state/in.obj", "wb").write(open(d + "/" + name, "rb").read())
    st = lst.offer(d + "/state/in.obj")
    wrong = 0
    n = 0
    with open(d + "/probes", "rb") as f:
        while True:
            rec = f.read(9)
            if len(rec) < 9:
                break
            s = int.from_bytes(rec[0:8], "big")
            if lst.is_revoked(s) != bool(rec[8] & bit):
                wrong += 1
            n += 1
    out.append('{"status": "%s", "probes": %d, "wrong": %d, "seq": %d}' % (st, n, wrong, lst.seq))
st = lst.load_held()
out.append('{"status": "%s", "probes": 0, "wrong": 0, "seq": %d}' % (st, lst.seq))
print("[" + ", ".join(out) + "]")
"""


def test_micropython_reader_agrees(tmp_path: Path) -> None:
    rng = random.Random(11)
    ranges, serials = random_case(rng)
    ranges += [(10**9, 10**9 + 50000)]
    serials |= {s for s in range(10**9, 10**9 + 50000) if rng.random() < 0.05}
    blob = full(1, serials, ranges, keep_empty=True)
    held = host.load(blob, root_key().public_key())
    now = (serials - set(rng.sample(sorted(serials), min(30, len(serials))))) | {7, 10**9 + 1, LIMIT - 2}
    delta = host.build_delta(root_key(), 2, 0, held, now)
    (tmp_path / "state").mkdir()
    (tmp_path / "full.obj").write_bytes(blob)
    (tmp_path / "delta.obj").write_bytes(delta)
    (tmp_path / "root.cose_key").write_bytes(keys.cose_key_bytes(root_key().public_key()))
    probes = probes_for(ranges, serials | now, rng)
    recs = b"".join(s.to_bytes(8, "big") + bytes([int(s in serials) | int(s in now) << 1]) for s in probes)
    (tmp_path / "probes").write_bytes(recs)
    (tmp_path / "agree.py").write_text(MP_AGREE)
    proc = run_micropython([str(tmp_path / "agree.py"), str(tmp_path)], heap="256K")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["status"] for r in res] == ["ok", "ok", "ok"]
    assert [r["seq"] for r in res] == [1, 2, 2]
    assert all(r["wrong"] == 0 for r in res) and res[0]["probes"] == len(probes)


MP_MUTATE = r"""
import io, sys
import crl_national, toolkit
d = sys.argv[1]
cases = int(sys.argv[2])
rng = toolkit.Rng(int(sys.argv[3]))
buf = bytearray(crl_national.MAX_BUCKET_BYTES + 8)
stats = {"cases": 0, "accepted": 0, "rejected": 0, "crashes": 0}
first = ""
for name in ("full.body", "delta.body"):
    good = open(d + "/" + name, "rb").read()
    for c in range(cases):
        b = bytearray(good)
        for _ in range(1 + rng.below(4)):
            b[rng.below(len(b))] = rng.below(256)
        if rng.below(4) == 0:
            b = b[0:rng.below(len(b) + 1)]
        f = io.BytesIO(bytes(b))
        stats["cases"] += 1
        try:
            if name == "full.body":
                body = crl_national.FullBody(f, 0, len(b), buf, True)
                for i in range(40):
                    body.has(rng.below(4000) if i & 1 else 10 ** 6 + rng.below(100))
            else:
                body = crl_national.DeltaBody(f, 0, len(b), buf)
                for s in (3, 8, 70, 10 ** 9, 10 ** 9 + 5, rng.below(10 ** 9)):
                    body.added.has(s)
                    body.removed.has(s)
            stats["accepted"] += 1
        except ValueError:
            stats["rejected"] += 1
        except Exception as e:
            stats["crashes"] += 1
            if not first:
                first = "%s %s: %r" % (name, c, e)
print('{"cases": %d, "accepted": %d, "rejected": %d, "crashes": %d, "first": "%s"}' % (
    stats["cases"], stats["accepted"], stats["rejected"], stats["crashes"], first.replace('"', "'")))
"""


def test_micropython_mutation_loop(tmp_path: Path) -> None:
    """Mutated bodies under the unix port: each is accepted or refused with a ValueError
    (BodyError, CborError); nothing else escapes, nothing loops (the run has a timeout)."""
    (tmp_path / "full.body").write_bytes(FUZZ_BASE)
    (tmp_path / "delta.body").write_bytes(FUZZ_DELTA)
    (tmp_path / "mutate.py").write_text(MP_MUTATE)
    proc = run_micropython(
        [str(tmp_path / "mutate.py"), str(tmp_path), "5000", "7"], heap="256K", timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["cases"] == 10000 and res["crashes"] == 0, res
    assert res["rejected"] > 3000 and res["accepted"] > 50, res


# ---- command line ------------------------------------------------------------------------------


def test_cli_build_delta_show(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cbcc.app import app

    def run(*args: str | Path) -> Any:
        return CliRunner().invoke(app, [str(a) for a in args], env={"CBCC_LANG": "en"})  # texts matched below

    pw = tmp_path / "pw"
    pw.write_text("mật khẩu gốc\n", encoding="utf-8")
    r = run("keys", "init-root", "--out", tmp_path / "root", "--passphrase-file", pw)
    assert r.exit_code == 0, r.output
    key, cose_root = tmp_path / "root" / "root.key.pem", tmp_path / "root" / "root.cose_key"
    (tmp_path / "ranges").write_text("# lo hi\n1000 2000 Bộ Nội vụ\n5000:6000\n", encoding="utf-8")
    (tmp_path / "s1").write_text("1000\n1500\n5999\n")
    (tmp_path / "s2").write_text("1000\n5999\n7777\n")
    common = ("--root-key", key, "--passphrase-file", pw)
    r = run("crl", "build-national", *common, "--serials", tmp_path / "s1", "--ranges", tmp_path / "ranges",
            "--out", tmp_path / "full.ncrl")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("crl", "delta", *common, "--base", tmp_path / "full.ncrl", "--serials", tmp_path / "s2",
            "--out", tmp_path / "delta.ncrl")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "+1 −1" in r.output
    r = run("crl", "show-national", tmp_path / "delta.ncrl", "--root", cose_root,
            "--base", tmp_path / "full.ncrl", "--serial", "1500", "--serial", "7777")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "seq 2, 3 revoked" in r.output and "1500: not revoked" in r.output and "7777: revoked" in r.output
    r = run("crl", "show-national", tmp_path / "delta.ncrl", "--root", cose_root)
    assert r.exit_code == 1 and "wrong_base" in r.output
    r = run("crl", "build-national", *common, "--serials", tmp_path / "s2", "--ranges", tmp_path / "ranges",
            "--out", tmp_path / "x")  # fmt: skip
    assert r.exit_code == 1 and "7777" in r.output
    r = run("crl", "build-national", *common, "--serials", tmp_path / "s1", "--ranges", tmp_path / "ranges",
            "--out", tmp_path / "x", "--seq", "2")  # fmt: skip
    assert r.exit_code == 1 and "not above" in r.output
