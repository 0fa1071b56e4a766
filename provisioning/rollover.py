"""Issuer key rollover (docs/key-ceremony.md §3): a new key beside the old one, issuance moved to
it, the old key removed from the trust list only when no valid card it signed remains.

State lives beside the keys, in the issuer directories ``cbcc keys new-issuer`` makes:

- ``OLD/rollover.json`` — ``{"old_kid", "new_kid", "new_dir", "at", "shared_range"}``: the old key
  is being rolled over; ``cbcc card mint`` refuses to sign with it from then on;
- ``OLD/retired.json`` — ``{"kid", "at", "stranded": [serial, ...]}``: the old key is retired;
  ``cbcc keys trust-list`` refuses to list it.

Which cards the old key still has out comes (gateway/rollover_report.py) from the gateway's card
register (table ``card``: serial, staff code, status, issued_at, expires_at): a card counts while
its status is ``issued``,
it has not expired, its serial is in the old key's range and — with a shared range, where the
serial cannot tell the keys apart — it was issued before the rollover (issuance moved to the new
key at that moment). The register does not record which kid signed a card, so the rollover
instant is the dividing line. The issuance records (``card_issuance``) are read too: a pending
issuance counts when its signed credential carries the old kid, a finished one missing from the
register by the register's rules (gateway/rollover_report.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from messages import _
from provisioning.errors import ProvisioningError
from trustcore import timeutil, trust_list

ROLLOVER_FILE = "rollover.json"
RETIRED_FILE = "retired.json"


@dataclass(frozen=True)
class Rollover:
    old_kid: str
    new_kid: str
    new_dir: str
    at: int
    shared_range: bool


def read_rollover(issuer_dir: Path) -> Rollover | None:
    p = issuer_dir / ROLLOVER_FILE
    if not p.exists():
        return None
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        at = timeutil.parse_iso_utc(d["at"])
        return Rollover(str(d["old_kid"]), str(d["new_kid"]), str(d["new_dir"]), at, bool(d["shared_range"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProvisioningError(_("{path}: damaged rollover record ({reason})", path=p, reason=exc)) from None


def new_entry_for(
    old: trust_list.IssuerEntry, public_key: Any, *, shared_range: bool, serial_range: tuple[int, int] | None,
    nbf: int, exp: int,
) -> trust_list.IssuerEntry:  # fmt: skip
    """The new key's trust-list entry: the old range (shared) or a new one that must not overlap it."""
    if shared_range == (serial_range is not None):
        raise ProvisioningError(_("give exactly one of --shared-range and --serial-range"))
    lo, hi = (old.serial_lo, old.serial_hi) if serial_range is None else serial_range
    if not shared_range and lo < old.serial_hi and old.serial_lo < hi:
        raise ProvisioningError(
            _(
                "the new range {lo}:{hi} overlaps the old key's {old_lo}:{old_hi}; "
                "use --shared-range to keep the same range",
                lo=lo,
                hi=hi,
                old_lo=old.serial_lo,
                old_hi=old.serial_hi,
            )
        )
    if nbf >= exp:
        raise ProvisioningError(_("--not-before must be before --not-after"))
    return trust_list.IssuerEntry(public_key, nbf, exp, lo, hi, old.name)


def write_rollover(old_dir: Path, old: trust_list.IssuerEntry, new: trust_list.IssuerEntry, new_dir: Path,
                   shared_range: bool, at: int) -> None:  # fmt: skip
    if (old_dir / ROLLOVER_FILE).exists():
        raise ProvisioningError(
            _("{path} was rolled over already ({record})", path=old_dir, record=old_dir / ROLLOVER_FILE)
        )
    doc = {"old_kid": old.kid.hex(), "new_kid": new.kid.hex(), "new_dir": str(new_dir.resolve()),
           "at": timeutil.to_iso(at), "shared_range": shared_range}  # fmt: skip
    (old_dir / ROLLOVER_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def retire(old_dir: Path, old: trust_list.IssuerEntry, stranded: list[int], *, force: bool, at: int) -> None:
    """Mark the old key retired; refused while cards are outstanding unless ``force`` (then they are
    recorded as stranded)."""
    if stranded and not force:
        shown = ", ".join(str(c) for c in stranded[:20]) + (" …" if len(stranded) > 20 else "")
        raise ProvisioningError(
            _(
                "{n} valid card(s) are still signed by key {kid} ({shown}); "
                "reissue them first, or retire with --strand to invalidate them deliberately",
                n=len(stranded),
                kid=old.kid.hex(),
                shown=shown,
            )
        )
    doc = {"kid": old.kid.hex(), "at": timeutil.to_iso(at), "stranded": list(stranded)}
    (old_dir / RETIRED_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
