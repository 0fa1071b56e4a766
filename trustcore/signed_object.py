"""The envelope shared by trust lists and revocation lists (credential-v1 §3–4).

A project-owned signed object is a COSE_Sign1 made by the pinned root key (RS256) whose payload
map carries a strictly increasing ``seq``. Loading answers with one status, checked in this order
(the reader's order, so both sides name the same status for the same bytes):

1. ``malformed``: too large, or not a strict COSE_Sign1;
2. ``unsupported_alg``: alg is not RS256 (or the pinned key is not RSA);
3. ``unknown_root``: the protected kid is not the pinned root's kid;
4. ``bad_signature``;
5. ``malformed``: the payload does not decode or does not fit the object's schema;
6. ``noop`` (seq equal to the one held) / ``rollback`` (lower seq) / ``ok``.

Publishers keep the last seq they published in a small state file, so a seq can never be reused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from trustcore import cbor_strict, cose, files, keys
from trustcore.errors import N_, TrustcoreError

OK = "ok"
NOOP = "noop"
ROLLBACK = "rollback"
MALFORMED = "malformed"
UNSUPPORTED_ALG = "unsupported_alg"
UNKNOWN_ROOT = "unknown_root"
BAD_SIGNATURE = "bad_signature"
STATUSES = (OK, NOOP, ROLLBACK, MALFORMED, UNSUPPORTED_ALG, UNKNOWN_ROOT, BAD_SIGNATURE)


def open_signed(blob: bytes, max_size: int, root: keys.PublicKey) -> tuple[str, dict[int | str, Any] | None]:
    """Steps 1–5 above: return (status, payload map) with the map only when status is ``ok``."""
    try:
        msg = cose.parse_sign1(blob, max_size)
    except cose.CoseFormatError:
        return MALFORMED, None
    if msg.alg != cose.ALG_RS256 or not isinstance(root, rsa.RSAPublicKey):
        return UNSUPPORTED_ALG, None
    if msg.kid != keys.kid_of(root):
        return UNKNOWN_ROOT, None
    if not cose.verify_signature(msg, root):
        return BAD_SIGNATURE, None
    try:
        payload = cbor_strict.decode(msg.payload)
    except cbor_strict.CborStrictError:
        return MALFORMED, None
    if not isinstance(payload, dict):
        return MALFORMED, None
    return OK, payload


def load_signed(
    blob: bytes,
    max_size: int,
    key: keys.PublicKey,
    parse: Callable[[Mapping[int | str, Any]], Any],
    seq_of: Callable[[Any], int],
    held_seq: int | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> tuple[str, Any]:
    """Steps 1–6 above for any signed list: envelope, the object's own schema (``parse`` returns
    the object, or None for ``malformed``), an optional extra ``check`` that may name a refusal,
    then the seq. The parsed object comes back only for ``ok`` and ``noop``."""
    status, payload = open_signed(blob, max_size, key)
    if payload is None:
        return status, None
    parsed = parse(payload)
    if parsed is None:
        return MALFORMED, None
    if check is not None:
        refused = check(parsed)
        if refused is not None:
            return refused, None
    status = seq_status(seq_of(parsed), held_seq)
    return status, (parsed if status in (OK, NOOP) else None)


def is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def as_uint(value: object) -> int | None:
    """``value`` when it is a CBOR unsigned integer (bools are not integers here), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def seq_status(new_seq: int, held_seq: int | None) -> str:
    """Monotonic versions: greater (or nothing held) is ``ok``, equal ``noop``, lower ``rollback``."""
    if held_seq is None or new_seq > held_seq:
        return OK
    return NOOP if new_seq == held_seq else ROLLBACK


def read_last_seq(state_file: Path) -> int | None:
    """The last published seq recorded in ``state_file``, or None when nothing was published yet."""
    try:
        text = state_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustcoreError(
            N_("cannot read seq state {path}: {reason}"), path=state_file, reason=exc
        ) from None
    if not text.isdigit():
        raise TrustcoreError(
            N_("seq state {path} is damaged ({text!r}); fix it by hand, never lower it"),
            path=state_file,
            text=text,
        )
    return int(text)


def choose_seq(state_file: Path, requested: int | None) -> int:
    """The seq to publish next: ``requested`` if strictly above the last one, else last + 1."""
    last = read_last_seq(state_file)
    if requested is None:
        return 1 if last is None else last + 1
    if requested < 0:
        raise TrustcoreError(N_("seq must be a non-negative integer"))
    if last is not None and requested <= last:
        raise TrustcoreError(
            N_("seq {seq} is not above the last published seq {last} ({path})"),
            seq=requested,
            last=last,
            path=state_file,
        )
    return requested


def record_seq(state_file: Path, seq: int) -> None:
    """Atomically record ``seq`` as published (after the object was written)."""
    files.write_atomic(state_file, f"{seq}\n".encode("ascii"))
