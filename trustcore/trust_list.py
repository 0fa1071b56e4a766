"""Trust list v1 (credential-v1 §3): the root-signed list of issuer keys readers accept.

Payload ``{1: 1, 2: seq, 3: iat, 4: [entry, ...]}`` with
``entry = {1: kid, 2: COSE_Key, 3: nbf, 4: exp, 5: serial_lo, 6: serial_hi (exclusive), 7: name}``.
Besides the envelope statuses (see ``signed_object``), loading rejects as ``malformed`` any payload
that does not fit that schema, an entry whose kid is not SHA-256(SPKI)[:8] of its key, an RSA key
other than e = 65537 with 2048/3072 bits, ``serial_lo ≥ serial_hi``, ``nbf ≥ exp``, or a repeated kid.
Unknown map keys are ignored (forward compatibility).

Amendment 1 (national size): at most ``MAX_SIZE`` bytes and ``MAX_ENTRIES`` entries, more is
``too_large``. Serial ranges of two entries must be disjoint, or identical with the same name (one
authority's old and new key during a rollover with a shared range); anything else is ``malformed``
(docs/trust-core.md, "Trust list rules"). Readers apply the same rules to the list as a stream.
"""

from __future__ import annotations

import itertools
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustcore import cbor_det, cose, keys, signed_object, timeutil
from trustcore.errors import N_, Text, TrustcoreError

MAX_SIZE = 131072
MAX_ENTRIES = 256
TOO_LARGE = "too_large"
VERSION = 1
SERIAL_LIMIT = 1 << 53
SEQ_STATE_NAME = "trust-list.seq"


@dataclass(frozen=True)
class IssuerEntry:
    """One issuer key and what it may sign: a validity window for iat and a serial range."""

    public_key: keys.PublicKey
    nbf: int
    exp: int
    serial_lo: int
    serial_hi: int
    name: str
    kid: bytes = field(default=b"")

    def __post_init__(self) -> None:
        if not self.kid:
            object.__setattr__(self, "kid", keys.kid_of(self.public_key))

    @property
    def alg(self) -> str:
        return "RS256" if isinstance(self.public_key, rsa.RSAPublicKey) else "ES256"

    def to_map(self) -> dict[int, Any]:
        return {
            1: self.kid,
            2: keys.cose_key_map(self.public_key),
            3: self.nbf,
            4: self.exp,
            5: self.serial_lo,
            6: self.serial_hi,
            7: unicodedata.normalize("NFC", self.name),
        }


@dataclass(frozen=True)
class TrustList:
    seq: int
    iat: int
    entries: Mapping[bytes, IssuerEntry]

    def get(self, kid: bytes) -> IssuerEntry | None:
        return self.entries.get(kid)


EMPTY = TrustList(seq=0, iat=0, entries={})


@dataclass(frozen=True)
class LoadResult:
    """The load status and, for ``ok`` and ``noop``, the verified list."""

    status: str
    trust_list: TrustList | None = None
    detail: str = ""  # why, for an operator: a Text the catalog renders (messages.text_in)


def check_entries(entries: Iterable[IssuerEntry]) -> list[IssuerEntry]:
    """Publisher-side sanity: everything the loader checks, plus non-overlapping serial ranges."""
    out = list(entries)
    seen: set[bytes] = set()
    for e in out:
        if e.kid in seen:
            raise TrustcoreError(N_("issuer key {kid} listed twice"), kid=e.kid.hex())
        seen.add(e.kid)
        if e.kid != keys.kid_of(e.public_key):
            raise TrustcoreError(N_("issuer {name!r}: kid does not match its key"), name=e.name)
        if not 0 <= e.serial_lo < e.serial_hi <= SERIAL_LIMIT:
            raise TrustcoreError(
                N_("issuer {name!r}: serial range must satisfy 0 ≤ lo < hi ≤ 2^53"),
                name=e.name,
            )
        if not 0 <= e.nbf < e.exp:
            raise TrustcoreError(N_("issuer {name!r}: not-before must be before not-after"), name=e.name)
    if len(out) > MAX_ENTRIES:
        raise TrustcoreError(N_("{n} issuer keys; readers accept at most {max}"), n=len(out), max=MAX_ENTRIES)
    bad = overlapping_ranges((e.serial_lo, e.serial_hi, e.name) for e in out)
    if bad is not None:
        raise TrustcoreError(
            N_(
                "serial ranges of {a!r} and {b!r} overlap (only two keys of one authority may "
                "share the very same range)"
            ),
            a=bad[0],
            b=bad[1],
        )
    return out


def overlapping_ranges(ranges: Iterable[tuple[int, int, str]]) -> tuple[str, str] | None:
    """The names of two entries whose serial ranges overlap without being the same authority's
    identical range, or None. Bounds are taken below 2^53 (serials are)."""
    rs = sorted((min(lo, SERIAL_LIMIT), min(hi, SERIAL_LIMIT), unicodedata.normalize("NFC", n))
                for lo, hi, n in ranges)
    for prev, cur in itertools.pairwise(rs):
        if cur[0] < prev[1] and cur != prev:
            return prev[2], cur[2]
    return None


def build_payload(seq: int, iat: int, entries: Iterable[IssuerEntry]) -> bytes:
    return cbor_det.dumps({1: VERSION, 2: seq, 3: iat, 4: [e.to_map() for e in entries]})


def build(root_key: rsa.RSAPrivateKey, seq: int, iat: int, entries: Iterable[IssuerEntry]) -> bytes:
    """Sign a trust list with the root key (RS256, kid = root kid), entries in serial order;
    refuses lists over the amendment-1 limits."""
    ordered = sorted(check_entries(entries), key=lambda e: (e.serial_lo, e.kid))
    blob = cose.sign1(build_payload(seq, iat, ordered), root_key, alg=cose.ALG_RS256)
    if len(blob) > MAX_SIZE:
        raise TrustcoreError(
            N_("trust list would be {size} bytes; readers accept at most {max}"),
            size=len(blob),
            max=MAX_SIZE,
        )
    return blob


def _entry_from_map(m: object) -> IssuerEntry | None:
    if not isinstance(m, dict):
        return None
    kid, cose_key, name = m.get(1), m.get(2), m.get(7)
    nbf, exp, lo, hi = (signed_object.as_uint(m.get(k)) for k in (3, 4, 5, 6))
    if not isinstance(kid, bytes) or len(kid) != keys.KID_LEN or not isinstance(name, str):
        return None
    if nbf is None or exp is None or lo is None or hi is None or lo >= hi or nbf >= exp:
        return None
    try:
        public_key = keys.public_key_from_cose(cose_key)
    except keys.KeyFormatError:
        return None
    if keys.kid_of(public_key) != kid:
        return None
    return IssuerEntry(public_key, nbf, exp, lo, hi, name, kid)


def parse_payload(payload: Mapping[int | str, Any]) -> TrustList | None:
    """Schema check of a verified payload; None means ``malformed``."""
    seq, iat = signed_object.as_uint(payload.get(2)), signed_object.as_uint(payload.get(3))
    items = payload.get(4)
    if signed_object.as_uint(payload.get(1)) != VERSION:
        return None
    if seq is None or iat is None or not isinstance(items, list):
        return None
    entries: dict[bytes, IssuerEntry] = {}
    for item in items:
        entry = _entry_from_map(item)
        if entry is None or entry.kid in entries:
            return None
        entries[entry.kid] = entry
    if overlapping_ranges((e.serial_lo, e.serial_hi, e.name) for e in entries.values()) is not None:
        return None
    return TrustList(seq, iat, entries)


def _why_malformed(items: object) -> Text:
    """A reason for an operator, for the two list-level rules (entry-level faults are generic)."""
    shape = Text(N_("the payload does not fit §3 (version 1, seq, iat, a list of entries)"))
    if not isinstance(items, list):
        return shape
    parsed = [_entry_from_map(m) for m in items]
    if any(e is None for e in parsed):
        return Text(N_("an entry does not fit §3 (kid, key, nbf < exp, lo < hi, name)"))
    good = [e for e in parsed if e is not None]
    if len({e.kid for e in good}) != len(good):
        return Text(N_("duplicate kid"))
    bad = overlapping_ranges((e.serial_lo, e.serial_hi, e.name) for e in good)
    if bad is not None:
        return Text(N_("overlapping serial ranges: {a!r} and {b!r}"), a=bad[0], b=bad[1])
    return shape


def load(blob: bytes, root: keys.PublicKey, held_seq: int | None = None) -> LoadResult:
    """Verify a trust list under the pinned root key and compare its seq with the one held.
    Over MAX_SIZE bytes or MAX_ENTRIES entries is ``too_large``."""
    if len(blob) > MAX_SIZE:
        return LoadResult(
            TOO_LARGE, detail=Text(N_("{size} bytes, at most {max}"), size=len(blob), max=MAX_SIZE)
        )
    status, payload = signed_object.open_signed(blob, MAX_SIZE, root)
    if payload is None:
        detail = Text()
        if status == signed_object.MALFORMED:
            try:
                cose.parse_sign1(blob, MAX_SIZE)
                detail = Text(N_("the payload is not a strict CBOR map"))
            except cose.CoseFormatError as exc:
                detail = Text(N_("not a strict COSE_Sign1: {reason}"), reason=exc)
        return LoadResult(status, detail=detail)
    items = payload.get(4)
    if isinstance(items, list) and len(items) > MAX_ENTRIES:
        # the reader decides this at the array's head
        return LoadResult(
            TOO_LARGE, detail=Text(N_("{n} entries, at most {max}"), n=len(items), max=MAX_ENTRIES)
        )
    parsed = parse_payload(payload)
    if parsed is None:
        return LoadResult(signed_object.MALFORMED, detail=_why_malformed(items))
    status = signed_object.seq_status(parsed.seq, held_seq)
    return LoadResult(status, parsed if status in (signed_object.OK, signed_object.NOOP) else None)


# ---- issuer.json: what `cbcc keys new-issuer` writes and `cbcc keys trust-list` reads ----------


def issuer_json(entry: IssuerEntry) -> str:
    doc = {
        "name": unicodedata.normalize("NFC", entry.name),
        "serial_lo": entry.serial_lo,
        "serial_hi": entry.serial_hi,
        "nbf": timeutil.to_iso(entry.nbf),
        "exp": timeutil.to_iso(entry.exp),
        "kid": entry.kid.hex(),
        "alg": entry.alg,
        "public_key_pem": keys.public_pem(entry.public_key).decode("ascii"),
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def issuer_from_json(path: Path, *, allow_retired: bool = False) -> IssuerEntry:
    """Read an issuer description (a directory holding issuer.json, or the file itself). A key
    retired after a rollover (retired.json beside it) is refused unless ``allow_retired``."""
    if path.is_dir():
        path = path / "issuer.json"
    if not allow_retired and (path.parent / "retired.json").exists():
        raise TrustcoreError(
            N_("{path}: this issuer key was retired (retired.json); leave it out"),
            path=path.parent,
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrustcoreError(
            N_("cannot read issuer description {path}: {reason}"),
            path=path,
            reason=exc,
        ) from None
    try:
        pub = serialization.load_pem_public_key(doc["public_key_pem"].encode("ascii"))
        if not isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise TrustcoreError(N_("{path}: unsupported public key type"), path=path)
        entry = IssuerEntry(
            public_key=pub,
            nbf=timeutil.parse_iso_utc(doc["nbf"]),
            exp=timeutil.parse_iso_utc(doc["exp"]),
            serial_lo=int(doc["serial_lo"]),
            serial_hi=int(doc["serial_hi"]),
            name=unicodedata.normalize("NFC", str(doc["name"])),
        )
        # Round-trip through the reader's rules so a key readers would refuse is caught here.
        keys.public_key_from_cose(keys.cose_key_map(pub))
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustcoreError(N_("{path}: bad issuer description ({reason})"), path=path, reason=exc) from None
    if "kid" in doc and doc["kid"] != entry.kid.hex():
        raise TrustcoreError(
            N_("{path}: kid {kid} does not match the public key ({actual})"),
            path=path,
            kid=doc["kid"],
            actual=entry.kid.hex(),
        )
    return entry
