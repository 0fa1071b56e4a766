"""Domain: the gateway's end-to-end confirmation of committed events (docs/mqtt.md, "Confirmations").

A reader may forget a journal record only when the gateway says the record is committed — a
broker's PUBACK is not enough, since a broker that crashes before saving (or is replaced) loses
what it acknowledged. After each commit the gateway publishes, per reader, on
``cbcc/v1/r/{rid}/ack`` (QoS 1, not retained)::

    payload = n (1 byte, 1..MAX_RANGES) ‖ n × (lo u32 BE ‖ hi u32 BE) ‖ HMAC-SHA256 (32 bytes)
    MAC     = HMAC(K, "cbcc-ack1" ‖ len(rid) (1 byte) ‖ rid ‖ n ‖ ranges)

``K`` is the reader's event key (the one that seals its events). Ranges are inclusive, ascending,
disjoint and not adjacent. They name every seq of that reader the commit settled: stored,
already stored (a re-send), and quarantined after the MAC verified (``bad_record``, ``conflict``,
``db_rejected``), so a bad record is not re-sent forever. A record whose MAC failed is never
confirmed: the gateway cannot know which reader wrote it. No I/O here.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

DOMAIN = b"cbcc-ack1"
MAX_RANGES = 32  # per message: 1 + 32 × 8 + 32 = 289 bytes at most
SEQ_MAX = 0xFFFFFFFF  # the journal's seq is a u32 (docs/journal.md)
TOPIC_PREFIX = "cbcc/v1/r/"


def topic(rid: str) -> str:
    return TOPIC_PREFIX + rid + "/ack"


def ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges of the seqs (those outside the u32 range left out)."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if not 0 <= s <= SEQ_MAX:
            continue
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def body(rs: list[tuple[int, int]]) -> bytes:
    if not 1 <= len(rs) <= MAX_RANGES:
        raise ValueError("1 to 32 ranges per confirmation")
    return bytes((len(rs),)) + b"".join(lo.to_bytes(4, "big") + hi.to_bytes(4, "big") for lo, hi in rs)


def mac_input(rid: str, b: bytes) -> bytes:
    r = rid.encode()
    return DOMAIN + bytes((len(r),)) + r + b


def encode(key: bytes, rid: str, rs: list[tuple[int, int]]) -> bytes:
    """One confirmation message (at most MAX_RANGES ranges)."""
    b = body(rs)
    return b + hmac.digest(key, mac_input(rid, b), "sha256")


def messages(key: bytes, rid: str, seqs: Iterable[int]) -> list[bytes]:
    """The confirmations for ``seqs``: one message per MAX_RANGES ranges, oldest first."""
    rs = ranges(seqs)
    return [encode(key, rid, rs[i:i + MAX_RANGES]) for i in range(0, len(rs), MAX_RANGES)]


def decode(key: bytes, rid: str, payload: bytes) -> list[tuple[int, int]]:
    """The ranges of a confirmation (a reference for clients and tests); ValueError if not valid."""
    if len(payload) < 1 + 8 + 32:
        raise ValueError("too short")
    n = payload[0]
    if not 1 <= n <= MAX_RANGES or len(payload) != 1 + 8 * n + 32:
        raise ValueError("bad length")
    b, tag = payload[:-32], payload[-32:]
    if not hmac.compare_digest(tag, hmac.digest(key, mac_input(rid, b), "sha256")):
        raise ValueError("bad MAC")
    rs = [(int.from_bytes(b[1 + 8 * i:5 + 8 * i], "big"), int.from_bytes(b[5 + 8 * i:9 + 8 * i], "big"))
          for i in range(n)]  # fmt: skip
    prev = -2
    for lo, hi in rs:
        if lo > hi or lo <= prev + 1:
            raise ValueError("ranges not ascending, disjoint and apart")
        prev = hi
    return rs
