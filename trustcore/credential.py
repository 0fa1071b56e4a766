"""Card credential v1 (credential-v1 §2): RECORD.json → claims, minting, and the host verifier.

The host verifier is written independently of the reader's code but to the same rules, so the two
can be checked against each other with shared test vectors. It runs the nine checks of §2 in order
and names the first that fails:

1. ``malformed``: > 1024 bytes, not a strict COSE_Sign1 (see ``cose.parse_sign1``), or a payload
   that is not a map with keys 1–12 of the right types (1 = 1; 2, 9, 10, 12 uint; 3–8 tstr;
   serial < 2^53; 11 bstr of 4, 7 or 10 bytes; 13, when present, an array of tstr);
2. ``unsupported_alg``: alg is not RS256 (this verifier does not do ES256);
3. ``unknown_issuer``: kid not in the trust list;
4. ``bad_signature``: the listed key is not RSA, the signature is not modulus-length, or it does not
   verify (strict RS256);
5. ``issuer_not_valid``: not ``nbf ≤ iat < exp`` of the issuer key;
6. ``serial_out_of_range``: not ``serial_lo ≤ serial < serial_hi``;
7. ``not_yet_valid`` when ``iat > now + 300``; ``expired`` when ``now ≥ exp``;
8. ``uid_mismatch``;
9. ``revoked``.

``serial`` and ``staff`` are reported whenever check 1 passed.
"""

from __future__ import annotations

import binascii
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from trustcore import cbor_det, cbor_strict, cose, keys, timeutil
from trustcore.errors import N_, TrustcoreError
from trustcore.revocation import RevocationList
from trustcore.trust_list import TrustList

MAX_SIZE = 1024
VERSION = 1
SKEW = 300
SERIAL_LIMIT = 1 << 53
UID_LENGTHS = (4, 7, 10)

MALFORMED = "malformed"
UNSUPPORTED_ALG = "unsupported_alg"
UNKNOWN_ISSUER = "unknown_issuer"
BAD_SIGNATURE = "bad_signature"
ISSUER_NOT_VALID = "issuer_not_valid"
SERIAL_OUT_OF_RANGE = "serial_out_of_range"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
UID_MISMATCH = "uid_mismatch"
REVOKED = "revoked"
OK = "ok"
REASONS = (
    MALFORMED,
    UNSUPPORTED_ALG,
    UNKNOWN_ISSUER,
    BAD_SIGNATURE,
    ISSUER_NOT_VALID,
    SERIAL_OUT_OF_RANGE,
    NOT_YET_VALID,
    EXPIRED,
    UID_MISMATCH,
    REVOKED,
    OK,
)

# Claim keys (§2).
VER, SERIAL, STAFF, NAME, AGENCY, UNIT, POSITION, TITLE, IAT, EXP, UID, GEN, GROUPS = range(1, 14)
_UINT_KEYS = (SERIAL, IAT, EXP, GEN)
_TEXT_KEYS = (STAFF, NAME, AGENCY, UNIT, POSITION, TITLE)

RECORD_FIELDS = (
    "serial", "staff", "name", "agency", "unit", "position", "title",
    "issued_at", "expires_at", "uid", "gen", "groups",
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The verifier's answer; ``serial``/``staff`` are None only when the credential is malformed."""

    reason: str
    serial: int | None = None
    staff: str | None = None

    @property
    def valid(self) -> bool:
        return self.reason == OK


# ---- RECORD.json → claims -----------------------------------------------------------------------


def _nfc(value: object, field: str, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise TrustcoreError(N_("record field {field!r} must be a string"), field=field)
    text = unicodedata.normalize("NFC", value)
    if not allow_empty and not text.strip():
        raise TrustcoreError(N_("record field {field!r} must not be empty"), field=field)
    return text


def _uint(value: object, field: str, limit: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TrustcoreError(N_("record field {field!r} must be a non-negative integer"), field=field)
    if limit is not None and value >= limit:
        raise TrustcoreError(N_("record field {field!r} must be below {limit}"), field=field, limit=limit)
    return value


def parse_uid(text: str) -> bytes:
    """Chip UID from hex (spaces and colons allowed); 4, 7 or 10 bytes."""
    cleaned = text.replace(":", "").replace(" ", "")
    try:
        uid = bytes.fromhex(cleaned)
    except ValueError:
        raise TrustcoreError(N_("uid {text!r} is not hexadecimal"), text=text) from None
    if len(uid) not in UID_LENGTHS:
        raise TrustcoreError(N_("uid must be 4, 7 or 10 bytes, not {n}"), n=len(uid))
    return uid


def parse_chip_uid(text: str) -> bytes:
    """The chip UID given to a verifier: non-empty hex (any length; a wrong one is ``uid_mismatch``).

    Same acceptance as the reader tool (``binascii.unhexlify``), so both exit 2 on the same input.
    """
    try:
        uid = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise TrustcoreError(N_("--uid {text!r} is not hexadecimal"), text=text) from None
    if not uid:
        raise TrustcoreError(N_("--uid must not be empty"))
    return uid


def claims_from_record(record: Mapping[str, Any]) -> dict[int, Any]:
    """Validate a RECORD.json object and map it to the credential claims (§2, §5).

    Text is NFC-normalised (Vietnamese diacritics have several Unicode spellings; readers and
    displays must see one). Unknown fields are refused so that a typo cannot silently drop data.
    """
    if not isinstance(record, Mapping):
        raise TrustcoreError(N_("record must be a JSON object"))
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    if unknown:
        raise TrustcoreError(N_("unknown record field(s): {names}"), names=", ".join(unknown))
    missing = [f for f in RECORD_FIELDS if f != "groups" and f not in record]
    if missing:
        raise TrustcoreError(N_("missing record field(s): {names}"), names=", ".join(missing))
    uid = record["uid"]
    if not isinstance(uid, str):
        raise TrustcoreError(N_("record field 'uid' must be a hex string"))
    claims: dict[int, Any] = {
        VER: VERSION,
        SERIAL: _uint(record["serial"], "serial", SERIAL_LIMIT),
        STAFF: _nfc(record["staff"], "staff", allow_empty=False),
        NAME: _nfc(record["name"], "name", allow_empty=False),
        AGENCY: _nfc(record["agency"], "agency", allow_empty=False),
        UNIT: _nfc(record["unit"], "unit", allow_empty=True),
        POSITION: _nfc(record["position"], "position", allow_empty=True),
        TITLE: _nfc(record["title"], "title", allow_empty=True),
        IAT: timeutil.parse_iso_utc(record["issued_at"]),
        EXP: timeutil.parse_iso_utc(record["expires_at"]),
        UID: parse_uid(uid),
        GEN: _uint(record["gen"], "gen"),
    }
    if claims[IAT] >= claims[EXP]:
        raise TrustcoreError(N_("issued_at must be before expires_at"))
    groups = record.get("groups")
    if groups is not None:
        if not isinstance(groups, list):
            raise TrustcoreError(N_("record field 'groups' must be a list of strings"))
        claims[GROUPS] = [_nfc(g, "groups", allow_empty=False) for g in groups]
    return claims


def load_record(path: Path) -> dict[int, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrustcoreError(
            N_("cannot read record {path}: {reason}"), path=path, reason=exc.strerror
        ) from None
    except ValueError as exc:
        raise TrustcoreError(N_("record {path} is not valid JSON: {reason}"), path=path, reason=exc) from None
    return claims_from_record(record)


# ---- minting ---------------------------------------------------------------------------------


def mint(claims: Mapping[int, Any], issuer_key: keys.PrivateKey) -> bytes:
    """Sign the claims with the issuer key (RS256 for RSA, ES256 for P-256; kid from the key).

    The payload is re-checked with the verifier's own schema and the result must fit in 1024 bytes,
    so nothing a reader would call ``malformed`` ever leaves this function.
    """
    payload = cbor_det.dumps(dict(claims))
    if parse_payload(payload) is None:
        raise TrustcoreError(N_("claims do not form a valid credential payload"))
    blob = cose.sign1(payload, issuer_key)
    if len(blob) > MAX_SIZE:
        raise TrustcoreError(
            N_("credential would be {size} bytes; readers accept at most {max}"), size=len(blob), max=MAX_SIZE
        )
    return blob


# ---- verification ----------------------------------------------------------------------------


def _is_uint(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_payload(payload: bytes) -> dict[int | str, Any] | None:
    """Strictly decode and type-check a credential payload; None means ``malformed``."""
    try:
        claims = cbor_strict.decode(payload)
    except cbor_strict.CborStrictError:
        return None
    if not isinstance(claims, dict):
        return None
    if any(k not in claims for k in range(VER, GEN + 1)):
        return None
    if claims[VER] != VERSION or isinstance(claims[VER], bool):
        return None
    if not all(_is_uint(claims[k]) for k in _UINT_KEYS) or claims[SERIAL] >= SERIAL_LIMIT:
        return None
    if not all(isinstance(claims[k], str) for k in _TEXT_KEYS):
        return None
    if not isinstance(claims[UID], bytes) or len(claims[UID]) not in UID_LENGTHS:
        return None
    if GROUPS in claims:
        groups = claims[GROUPS]
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return None
    return claims


def verify(
    blob: bytes,
    trust: TrustList,
    uid: bytes,
    now: int,
    revocations: RevocationList | None = None,
) -> Verdict:
    """Run the nine ordered checks of §2 and return the first failing reason (or ``ok``)."""
    try:
        msg = cose.parse_sign1(blob, MAX_SIZE)
    except cose.CoseFormatError:
        return Verdict(MALFORMED)
    claims = parse_payload(msg.payload)
    if claims is None:
        return Verdict(MALFORMED)
    serial: int = claims[SERIAL]
    seen = {"serial": serial, "staff": claims[STAFF]}
    if msg.alg != cose.ALG_RS256:
        return Verdict(UNSUPPORTED_ALG, **seen)
    issuer = trust.get(msg.kid)
    if issuer is None:
        return Verdict(UNKNOWN_ISSUER, **seen)
    key = issuer.public_key
    if not isinstance(key, rsa.RSAPublicKey) or not cose.verify_signature(msg, key):
        return Verdict(BAD_SIGNATURE, **seen)
    iat: int = claims[IAT]
    exp: int = claims[EXP]
    if not issuer.nbf <= iat < issuer.exp:
        return Verdict(ISSUER_NOT_VALID, **seen)
    if not issuer.serial_lo <= serial < issuer.serial_hi:
        return Verdict(SERIAL_OUT_OF_RANGE, **seen)
    if iat > now + SKEW:
        return Verdict(NOT_YET_VALID, **seen)
    if now >= exp:
        return Verdict(EXPIRED, **seen)
    if claims[UID] != uid:
        return Verdict(UID_MISMATCH, **seen)
    if revocations is not None and revocations.is_revoked(serial):
        return Verdict(REVOKED, **seen)
    return Verdict(OK, **seen)
