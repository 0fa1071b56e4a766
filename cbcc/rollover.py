"""``cbcc keys rollover`` / ``rollover-report`` / ``retire``: an issuer's key replaced without
stranding the cards it signed (provisioning/rollover.py, docs/key-ceremony.md §3)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cbcc.common import PassphraseFile, cli_errors, stdout_console
from messages import N_, _

if TYPE_CHECKING:
    from gateway.rollover_report import OutstandingCard
    from trustcore.trust_list import IssuerEntry

DbUrl = Annotated[str, typer.Option("--db", help="Gateway database URL (its card register).")]


def rollover(
    issuer: Annotated[Path, typer.Option("--issuer", help="The OLD issuer directory (issuer.json).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the new issuer.key.pem and issuer.json.")],
    shared_range: Annotated[
        bool, typer.Option("--shared-range", help="The new key keeps the old key's serial range.")
    ] = False,
    serial_range: Annotated[
        str | None, typer.Option("--serial-range", help="LO:HI: a new range, disjoint from the old one.")
    ] = None,
    not_after: Annotated[
        str | None, typer.Option("--not-after", help="ISO 8601 UTC; default +10 years.")
    ] = None,
    passphrase_file: PassphraseFile = None,
    bits: Annotated[int, typer.Option("--bits", help="RSA modulus size: 2048 or 3072.")] = 2048,
) -> None:
    """Create the new key beside the old one; from now on cards are minted with the new key."""
    with cli_errors():
        from cbcc.errors import CbccError
        from cbcc.keys import _parse_range
        from provisioning import rollover
        from trustcore import keys, passphrase, timeutil, trust_list

        old = trust_list.issuer_from_json(issuer)
        if bits not in keys.RSA_ALLOWED_BITS:
            raise CbccError(_("--bits must be 2048 or 3072"))
        key_path, json_path = out / "issuer.key.pem", out / "issuer.json"
        existing = [str(p) for p in (key_path, json_path) if p.exists()]
        if existing:
            raise CbccError(_("refusing to overwrite {paths}", paths=", ".join(existing)))
        now = int(time.time())
        exp = timeutil.parse_iso_utc(not_after) if not_after else timeutil.add_years(now, 10)
        rng = _parse_range(serial_range) if serial_range else None
        key = keys.generate_rsa(bits)
        # nbf: the old key's, so a card whose record was issued before the rollover (iat earlier
        # than today) can be minted with the new key and still pass the reader's nbf ≤ iat check
        new = rollover.new_entry_for(old, key.public_key(), shared_range=shared_range, serial_range=rng,
                                     nbf=old.nbf, exp=exp)  # fmt: skip
        secret = passphrase.obtain(
            passphrase_file, confirm=True, purpose=_("the new issuer key of {name}", name=old.name)
        )
        out.mkdir(parents=True, exist_ok=True)
        keys.write_private_key(key_path, key, secret)
        keys.write_new_file(json_path, trust_list.issuer_json(new).encode("utf-8"))
        rollover.write_rollover(issuer, old, new, out, shared_range, now)
        said = _(
            "[green]rollover[/green] {name}: {old} → [bold]{new}[/bold] (serials {lo} … {hi}{shared})\n"
            "  list both keys in the next trust list; mint with {key} from now on",
            name=old.name,
            old=old.kid.hex(),
            new=new.kid.hex(),
            lo=new.serial_lo,
            hi=new.serial_hi - 1,
            shared=", " + _("shared") if shared_range else "",
            key=key_path,
        )
        stdout_console().print(said)


def _report(issuer: Path, db: str) -> tuple[IssuerEntry, list[OutstandingCard]]:
    from gateway.rollover_report import outstanding_cards
    from provisioning import rollover
    from trustcore import trust_list

    old = trust_list.issuer_from_json(issuer, allow_retired=True)
    ro = rollover.read_rollover(issuer)
    cards = outstanding_cards(db, old, ro.at if ro else None, ro.shared_range if ro else False)
    return old, cards


def rollover_report(
    issuer: Annotated[Path, typer.Option("--issuer", help="The OLD issuer directory.")],
    db: DbUrl,
) -> None:
    """Cards still signed by the old key (valid, in its range; with a shared range issued before
    the rollover), from the card register and the issuance records (pending issuances signed with
    the old key too). Exit 0 when none is left, 1 otherwise."""
    with cli_errors(2):
        from rich.table import Table

        _old, cards = _report(issuer, db)
        table = Table(title=_("cards still signed by the key in {path}: {n}", path=issuer, n=len(cards)))
        for col in (N_("serial"), N_("staff"), N_("issued"), N_("expires"), N_("source")):
            table.add_column(_(col))
        for c in cards:
            table.add_row(str(c.serial), c.staff_code, c.issued_at, c.expires_at, c.source)
        stdout_console().print(table)
        if cards:
            raise typer.Exit(1)


def retire(
    issuer: Annotated[Path, typer.Option("--issuer", help="The OLD issuer directory.")],
    db: DbUrl,
    strand: Annotated[
        bool, typer.Option("--strand", help="Retire even though valid cards remain (they are listed).")
    ] = False,
) -> None:
    """Retire the old key (the next trust list leaves it out) once no valid card it signed is left."""
    with cli_errors():
        from cbcc.errors import CbccError
        from provisioning import rollover

        if rollover.read_rollover(issuer) is None:
            raise CbccError(_("{path} has not been rolled over (cbcc keys rollover first)", path=issuer))
        old, stranded = _report(issuer, db)
        rollover.retire(issuer, old, [c.serial for c in stranded], force=strand, at=int(time.time()))
        if stranded:
            stdout_console().print(_("[red]stranded {n} card(s)[/red] (they stop working when the "
                                     "next trust list is published):", n=len(stranded)))  # fmt: skip
            for c in stranded:
                stdout_console().print(
                    f"  {c.serial} {c.staff_code}" + ("" if c.source == "register" else f" ({c.source})")
                )
        stdout_console().print(
            _("[green]retired[/green] {kid}; leave it out of the next trust list", kid=old.kid.hex())
        )
