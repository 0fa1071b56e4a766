"""Interim inline revocation list v1: root-signed, small, every revoked serial carried in the payload.

Payload ``{0: "crl", 1: 1, 2: seq, 3: iat, 4: serials}`` where ``serials`` is a byte string that
concatenates the revoked serials, strictly ascending, each as 7 bytes big-endian (so its length is
a multiple of 7). Key 0 is the type tag that keeps project-owned signed objects from being taken for
one another. The whole object is at most 16 KiB (about 2,300 serials); a later, detached national
format replaces this for large lists. Fixed-width sorted entries let a reader answer ``is_revoked``
by binary search over the bytes as received, with no per-entry allocation.

Loading uses the envelope statuses of ``signed_object``; the payload is ``malformed`` if the type tag,
version or field types are wrong, the length is not a multiple of 7, a serial is ≥ 2^53 (first byte
≥ 0x20), or the serials are not strictly ascending.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from trustcore import cbor_det, cose, keys, signed_object
from trustcore.errors import N_, TrustcoreError

TYPE_TAG = "crl"
VERSION = 1
MAX_SIZE = 16384
SERIAL_BYTES = 7
SERIAL_LIMIT = 1 << 53
SEQ_STATE_NAME = "crl.seq"


@dataclass(frozen=True)
class RevocationList:
    seq: int
    iat: int
    body: bytes

    def __len__(self) -> int:
        return len(self.body) // SERIAL_BYTES

    def _at(self, i: int) -> bytes:
        return self.body[i * SERIAL_BYTES : (i + 1) * SERIAL_BYTES]

    def is_revoked(self, serial: int) -> bool:
        """Binary search over the fixed-width big-endian entries (byte order = numeric order)."""
        if serial < 0 or serial >= 1 << (8 * SERIAL_BYTES):
            return False
        target = serial.to_bytes(SERIAL_BYTES, "big")
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            entry = self._at(mid)
            if entry == target:
                return True
            if entry < target:
                lo = mid + 1
            else:
                hi = mid
        return False

    def serials(self) -> Iterator[int]:
        for i in range(len(self)):
            yield int.from_bytes(self._at(i), "big")


EMPTY = RevocationList(seq=0, iat=0, body=b"")


@dataclass(frozen=True)
class LoadResult:
    status: str
    crl: RevocationList | None = None


def encode_serials(serials: Iterable[int]) -> bytes:
    """Sorted, de-duplicated, 7-byte big-endian concatenation; every serial must be < 2^53."""
    unique = sorted(set(serials))
    for s in unique:
        if not 0 <= s < SERIAL_LIMIT:
            raise TrustcoreError(N_("serial {serial} is outside 0 … 2^53-1"), serial=s)
    return b"".join(s.to_bytes(SERIAL_BYTES, "big") for s in unique)


def build_payload(seq: int, iat: int, serials: Iterable[int]) -> bytes:
    return cbor_det.dumps({0: TYPE_TAG, 1: VERSION, 2: seq, 3: iat, 4: encode_serials(serials)})


def build(root_key: rsa.RSAPrivateKey, seq: int, iat: int, serials: Iterable[int]) -> bytes:
    """Sign a revocation list with the root key (RS256, kid = root kid); refuses lists over 16 KiB."""
    blob = cose.sign1(build_payload(seq, iat, serials), root_key, alg=cose.ALG_RS256)
    if len(blob) > MAX_SIZE:
        raise TrustcoreError(
            N_("revocation list would be {size} bytes; the inline format holds at most {max}"),
            size=len(blob),
            max=MAX_SIZE,
        )
    return blob


def parse_payload(payload: Mapping[int | str, Any]) -> RevocationList | None:
    """Schema check of a verified payload; None means ``malformed``."""
    seq, iat = signed_object.as_uint(payload.get(2)), signed_object.as_uint(payload.get(3))
    body = payload.get(4)
    if payload.get(0) != TYPE_TAG or signed_object.as_uint(payload.get(1)) != VERSION:
        return None
    if seq is None or iat is None or not isinstance(body, bytes) or len(body) % SERIAL_BYTES:
        return None
    crl = RevocationList(seq, iat, body)
    for i in range(len(crl)):
        entry = crl._at(i)
        if entry[0] >= SERIAL_LIMIT >> 48 or (i and crl._at(i - 1) >= entry):
            return None  # a serial ≥ 2^53, or not strictly ascending
    return crl


def load(blob: bytes, root: keys.PublicKey, held_seq: int | None = None) -> LoadResult:
    """Verify a revocation list under the pinned root key and compare its seq with the one held."""
    status, parsed = signed_object.load_signed(blob, MAX_SIZE, root, parse_payload, lambda x: x.seq, held_seq)
    return LoadResult(status, parsed)
