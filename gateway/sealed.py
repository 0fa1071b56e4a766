"""Domain: open a sealed event ``[1, seq, record, mac]`` (docs/mqtt.md, "Events"). No I/O.

The payload comes from the network and is hostile until its MAC is verified: it is size-limited,
decoded with a guard that turns every decoder failure into :class:`Rejected`, checked for shape,
and the HMAC-SHA256 over ``"cbcc-ev1" ‖ len(rid) ‖ rid ‖ seq (8 bytes BE) ‖ record`` is compared in
constant time *before* the record is decoded. The record's fields are then type-checked so that a
reader with a bug (or a stolen key) cannot make ingest crash; a record that fails is rejected with
``bad_record`` and quarantined, never stored.

Reasons (stable, short; they label metrics and quarantine rows): ``oversize``, ``not_cbor``,
``not_sealed``, ``bad_mac``, ``bad_record``.
"""

from __future__ import annotations

import hmac
import io
import re
from dataclasses import dataclass
from typing import Any

import cbor2

MAX_PAYLOAD = 1024
WIRE_VERSION = 1
DOMAIN = b"cbcc-ev1"
MAX_SEQ = 2**63 - 1  # a BIGINT column

# Record keys (firmware/lib/events.py).
TIME, TIME_QUALITY, KIND, BOOT, UPTIME = 1, 2, 3, 4, 5
DECISION, REASON, SERIAL, STAFF, TECH, ANTI_CLONE, DOOR, DIRECTION, PUNCH = 10, 11, 12, 13, 14, 15, 16, 17, 18
ALARM, ACTIVE, DETAIL = 20, 21, 22

_INT, _STR, _BOOL = "int", "str", "bool"
# key -> (column, type, bound): bound is max length for text, (min, max) for integers.
FIELDS: dict[int, tuple[str, str, Any]] = {
    TIME: ("time", _INT, (0, 2**32 - 1)),  # Unix seconds (until 2106)
    TIME_QUALITY: ("time_quality", _INT, (0, 2)),
    KIND: ("kind", _STR, 16),
    BOOT: ("boot", _INT, (0, 2**31 - 1)),  # an INTEGER column
    UPTIME: ("uptime_ms", _INT, (0, 2**53)),
    DECISION: ("decision", _STR, 16),
    REASON: ("reason", _STR, 48),
    SERIAL: ("serial", _INT, (0, 2**63 - 1)),
    STAFF: ("staff_code", _STR, 32),
    TECH: ("technology", _STR, 16),
    ANTI_CLONE: ("anti_clone", _BOOL, None),
    DOOR: ("door", _STR, 64),  # the reader sends its door's index (uint); text is accepted too
    DIRECTION: ("direction", _STR, 8),
    PUNCH: ("punch", _BOOL, None),
    ALARM: ("alarm", _STR, 32),
    ACTIVE: ("active", _BOOL, None),
    DETAIL: ("detail", _STR, 500),
}


class Rejected(Exception):
    """A message that is not a valid sealed event; ``reason`` is short and stable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail[:500]
        self.seq: int | None = None  # set when the MAC verified: the reader's seq is known


@dataclass(frozen=True, slots=True)
class Opened:
    seq: int
    record: bytes  # exactly as sealed (stored, so an auditor can re-verify the MAC)
    mac: bytes
    fields: dict[str, Any]  # validated record fields by column name (absent keys left out)


def mac_input(rid: str, seq: int) -> bytes:
    r = rid.encode()
    return DOMAIN + bytes((len(r),)) + r + seq.to_bytes(8, "big")


def seal(key: bytes, rid: str, seq: int, record: bytes) -> bytes:
    """What a reader publishes (for tests, simulators and benchmarks)."""
    tag = hmac.digest(key, mac_input(rid, seq) + record, "sha256")
    return cbor2.dumps([WIRE_VERSION, seq, record, tag])


def _decode(data: bytes, what: str) -> Any:
    """cbor2 on untrusted bytes: exactly one item, and nothing but Rejected escapes."""
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except Exception as exc:  # any decoder failure (incl. RecursionError, MemoryError)
        raise Rejected("not_cbor" if what == "payload" else "bad_record",
                       f"{what}: {type(exc).__name__}: {exc}"[:200]) from None  # fmt: skip
    if fp.tell() != len(data):
        raise Rejected("not_cbor" if what == "payload" else "bad_record", f"{what}: trailing bytes")
    return value


# C0 and C1 control characters and DEL: PostgreSQL refuses NUL in text (one such field used to
# fail a whole batch, again after every redelivery), and none belongs in a code, a name or a detail.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters replaced by "?" (for quarantine and alarm details)."""
    return _CONTROL.sub("?", text)


def _is_int(v: object) -> bool:
    return type(v) is int


# Per key: (column, expected type, low or max length, high); built once for the hot loop.
_SPECS: dict[int, tuple[str, Any, int, int]] = {
    k: (col, int, b[0], b[1]) if kind == _INT else (col, str, 0, b) if kind == _STR else (col, bool, 0, 0)
    for k, (col, kind, b) in FIELDS.items()
}


def map_entries(record: bytes) -> int | None:
    """The entry count in the head of a definite-length CBOR map, or None if ``record`` does not
    start with one. Compared with the decoded map's size it reveals duplicate keys, which the
    decoder would silently resolve (last value wins)."""
    if not record or record[0] >> 5 != 5:
        return None
    info = record[0] & 0x1F
    if info < 24:
        return info
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if width is None or len(record) < 1 + width:
        return None  # indefinite length (readers never send one) or truncated
    return int.from_bytes(record[1:1 + width], "big")


def check_record(m: Any, entries: int | None = None) -> dict[str, Any]:
    """The record map's known fields, type-checked; unknown keys are ignored (newer firmware).
    ``entries``: the map head's entry count (:func:`map_entries`); fewer keys decoded means a key
    was repeated, and the record is refused."""
    if type(m) is not dict:
        raise Rejected("bad_record", "record is not a map")
    if entries is not None and entries != len(m):
        raise Rejected("bad_record", "duplicate map key")
    out: dict[str, Any] = {}
    specs = _SPECS
    value: Any
    for key, value in m.items():
        if type(key) is not int:  # also refuses True, which would hash like 1
            raise Rejected("bad_record", "record key is not an integer")
        spec = specs.get(key)
        if spec is None:
            continue
        column, want, lo, hi = spec
        if type(value) is not want:
            if key == DOOR and type(value) is int and 0 <= value < 2**31:
                value = str(value)  # the door's index in the reader's configuration
            else:
                raise Rejected("bad_record", f"field {key} must be of type {want.__name__}")
        if want is int:
            if value < lo or value > hi:
                raise Rejected("bad_record", f"field {key} out of range")
        elif want is str:
            if len(value) > hi:
                raise Rejected("bad_record", f"field {key} longer than {hi}")
            if _CONTROL.search(value) is not None:
                raise Rejected("bad_record", f"field {key} holds a control character")
        out[column] = value
    if "time" not in out or "time_quality" not in out or "kind" not in out:
        raise Rejected("bad_record", "time, time quality or kind is missing")
    if not out["kind"]:
        raise Rejected("bad_record", "empty kind")
    return out


def _head_len(n: int) -> int:
    """Bytes of a minimal CBOR head carrying ``n``."""
    return 1 if n < 24 else 2 if n < 0x100 else 3 if n < 0x10000 else 5 if n < 0x100000000 else 9


def open_sealed(rid: str, key: bytes, payload: bytes) -> Opened:
    """Verify and decode one sealed event published on ``cbcc/v1/r/{rid}/ev``."""
    if len(payload) > MAX_PAYLOAD:
        raise Rejected("oversize", f"{len(payload)} bytes > {MAX_PAYLOAD}")
    w = _decode(payload, "payload")
    if type(w) is not list or len(w) != 4:
        raise Rejected("not_sealed", "not a 4-element array")
    ver, seq, rec, tag = w
    if not _is_int(ver) or ver != WIRE_VERSION:
        raise Rejected("not_sealed", "unknown wire version")
    if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
        raise Rejected("not_sealed", "seq is not a non-negative 63-bit integer")
    if type(rec) is not bytes or type(tag) is not bytes or len(tag) != 32:
        raise Rejected("not_sealed", "record or MAC is not a byte string of the right size")
    # Readers encode minimally (firmware/lib/cbor.py): padded heads are refused, not guessed at.
    if len(payload) != 2 + _head_len(seq) + _head_len(len(rec)) + len(rec) + 2 + 32:
        raise Rejected("not_sealed", "non-minimal encoding")
    want = hmac.digest(key, mac_input(rid, seq) + rec, "sha256")
    if not hmac.compare_digest(tag, want):
        raise Rejected("bad_mac", f"seq {seq}")
    try:
        decoded = _decode(rec, "record")
        entries = map_entries(rec)
        if entries is None and type(decoded) is dict:
            raise Rejected("bad_record", "record is not a definite-length map")
        return Opened(seq, rec, tag, check_record(decoded, entries))
    except Rejected as rej:
        rej.seq = seq  # authentic but unusable: the gateway confirms it (gateway/ack.py)
        raise
