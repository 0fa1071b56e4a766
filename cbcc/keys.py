"""``cbcc keys``: the national root key, issuer keys, and signing the trust list."""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cbcc.common import (
    PassphraseFile,
    cli_errors,
    read_input,
    read_root_key,
    status_line,
    stdout_console,
    write_atomic,
)
from messages import N_, _, text_in

if TYPE_CHECKING:
    from trustcore.trust_list import IssuerEntry

keys_app = typer.Typer(no_args_is_help=True, help="Root and issuer keys; the signed trust list.")


class Alg(StrEnum):
    RS256 = "RS256"
    ES256 = "ES256"


def _parse_range(text: str) -> tuple[int, int]:
    from cbcc.errors import CbccError

    lo_text, sep, hi_text = text.partition(":")
    if not sep or not lo_text.strip().isdigit() or not hi_text.strip().isdigit():
        said = _("--serial-range must be LO:HI with non-negative integers, not {text}", text=repr(text))
        raise CbccError(said)
    lo, hi = int(lo_text), int(hi_text)
    if not lo < hi <= 1 << 53:
        raise CbccError(_("--serial-range needs LO < HI ≤ 2^53 (HI is exclusive)"))
    return lo, hi


def default_not_before(now: int) -> int:
    """1 January (UTC) five years before ``now``: a new issuer key takes over signing for a range
    whose cards were issued earlier, and ``nbf ≤ issued_at`` is checked on every tap."""
    import datetime as dt

    year = dt.datetime.fromtimestamp(now, dt.UTC).year - 5
    return int(dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp())


@keys_app.command("init-root")
def init_root(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for root.key.pem, root.cose_key, root.pub.pem.")
    ],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Create the national root key (RSA-3072), encrypted at rest; refuses to overwrite."""
    with cli_errors():
        from cbcc.errors import CbccError
        from trustcore import keys, passphrase

        targets = [out / "root.key.pem", out / "root.cose_key", out / "root.pub.pem"]
        existing = [str(p) for p in targets if p.exists()]
        if existing:
            raise CbccError(_("refusing to overwrite {paths}", paths=", ".join(existing)))
        secret = passphrase.obtain(passphrase_file, confirm=True, purpose=_("the new root key"))
        out.mkdir(parents=True, exist_ok=True)
        key = keys.generate_rsa(keys.ROOT_BITS)
        pub = key.public_key()
        keys.write_private_key(targets[0], key, secret)
        keys.write_new_file(targets[1], keys.cose_key_bytes(pub))
        keys.write_new_file(targets[2], keys.public_pem(pub))
        created = _("root key created")
        lines = [
            _("private (encrypted): {path}", path=targets[0]),
            _("pin on readers: {path}", path=targets[1]),
            _("public PEM: {path}", path=targets[2]),
        ]
        stdout_console().print(
            _(
                "[green]{created}[/green] kid [bold]{kid}[/bold] ({alg})",
                created=created,
                kid=keys.kid_of(pub).hex(),
                alg="RSA-3072",
            )
            + "\n  "
            + "\n  ".join(lines)
        )


@keys_app.command("new-issuer")
def new_issuer(
    name: Annotated[str, typer.Option("--name", help="Issuing authority, e.g. 'Sở Nội vụ tỉnh Nam Định'.")],
    serial_range: Annotated[str, typer.Option("--serial-range", help="LO:HI card serials (HI exclusive).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for issuer.key.pem and issuer.json.")],
    not_before: Annotated[
        str | None,
        typer.Option(
            "--not-before",
            help="ISO 8601 UTC; the earliest issued_at this key may sign. Default: 1 January five years "
            "ago, so records issued before the key was made (re-issued cards) still verify.",
        ),
    ] = None,
    not_after: Annotated[
        str | None, typer.Option("--not-after", help="ISO 8601 UTC; default not-before + 10 years.")
    ] = None,
    passphrase_file: PassphraseFile = None,
    alg: Annotated[Alg, typer.Option("--alg", help="RS256 (readers) or ES256 (tests only).")] = Alg.RS256,
    bits: Annotated[int, typer.Option("--bits", help="RSA modulus size: 2048 or 3072.")] = 2048,
) -> None:
    """Create an issuer key (RSA-2048 by default) and its issuer.json for the trust list."""
    with cli_errors():
        import unicodedata

        from cbcc.errors import CbccError
        from trustcore import keys, passphrase, timeutil, trust_list

        label = unicodedata.normalize("NFC", name).strip()
        if not label:
            raise CbccError(_("--name must not be empty"))
        lo, hi = _parse_range(serial_range)
        nbf = timeutil.parse_iso_utc(not_before) if not_before else default_not_before(int(time.time()))
        exp = timeutil.parse_iso_utc(not_after) if not_after else timeutil.add_years(nbf, 10)
        if nbf >= exp:
            raise CbccError(_("--not-before must be before --not-after"))
        if alg is Alg.RS256 and bits not in keys.RSA_ALLOWED_BITS:
            raise CbccError(_("--bits must be 2048 or 3072"))
        key_path, json_path = out / "issuer.key.pem", out / "issuer.json"
        existing = [str(p) for p in (key_path, json_path) if p.exists()]
        if existing:
            raise CbccError(_("refusing to overwrite {paths}", paths=", ".join(existing)))
        secret = passphrase.obtain(
            passphrase_file, confirm=True, purpose=_("the issuer key of {label}", label=label)
        )
        out.mkdir(parents=True, exist_ok=True)
        key: keys.PrivateKey = keys.generate_rsa(bits) if alg is Alg.RS256 else keys.generate_p256()
        entry = trust_list.IssuerEntry(key.public_key(), nbf, exp, lo, hi, label)
        keys.write_private_key(key_path, key, secret)
        keys.write_new_file(json_path, trust_list.issuer_json(entry).encode("utf-8"))
        window = _("serials {lo} … {hi}, valid {nbf} → {exp}", lo=lo, hi=hi - 1, nbf=timeutil.to_iso(nbf),
                   exp=timeutil.to_iso(exp))  # fmt: skip
        created, owner = _("issuer key created"), _("for {name}", name=label)
        lines = [
            window,
            _("private (encrypted): {path}", path=key_path),
            _("description: {path}", path=json_path),
        ]
        stdout_console().print(
            _(
                "[green]{created}[/green] kid [bold]{kid}[/bold] ({alg})",
                created=created,
                kid=entry.kid.hex(),
                alg=alg.value,
            )
            + f" {owner}\n  "
            + "\n  ".join(lines)
        )


@keys_app.command("trust-list")
def make_trust_list(
    root_key: Annotated[Path, typer.Option("--root-key", help="Encrypted root private key (PEM).")],
    issuer: Annotated[
        list[Path], typer.Option("--issuer", help="Issuer directory or issuer.json; repeat for each issuer.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output trust list (CBOR COSE_Sign1).")],
    seq: Annotated[
        int | None, typer.Option("--seq", help="Sequence number; default last published + 1.", min=0)
    ] = None,
    passphrase_file: PassphraseFile = None,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", help="Last-published seq; default beside the root key.")
    ] = None,
) -> None:
    """Sign a trust list with the root key; seq must exceed every seq published before."""
    with cli_errors():
        from cryptography.hazmat.primitives.asymmetric import rsa

        from cbcc.errors import CbccError
        from trustcore import keys, passphrase, signed_object, trust_list

        state = state_file or root_key.parent / trust_list.SEQ_STATE_NAME
        entries = [trust_list.issuer_from_json(p) for p in issuer]
        chosen = signed_object.choose_seq(state, seq)
        key = keys.load_private_key(
            root_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(root_key))
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CbccError(_("the root key must be an RSA key"))
        blob = trust_list.build(key, chosen, int(time.time()), entries)
        check = trust_list.load(blob, key.public_key())
        if check.status != signed_object.OK:
            raise CbccError(
                _("internal error: the new trust list does not load ({status})", status=check.status)
            )
        write_atomic(out, blob)
        signed_object.record_seq(state, chosen)
        _print_entries(f"trust list seq {chosen} → {out} ({len(blob)} bytes)", entries)


def _print_entries(title: str, entries: Sequence[IssuerEntry]) -> None:
    from rich.table import Table

    from trustcore import timeutil

    table = Table(title=title)
    for column in (N_("kid"), N_("alg"), N_("name"), N_("serials"), N_("valid")):
        table.add_column(_(column))
    for e in entries:
        table.add_row(
            e.kid.hex(),
            e.alg,
            e.name,
            f"{e.serial_lo} … {e.serial_hi - 1}",
            f"{timeutil.to_iso(e.nbf)} → {timeutil.to_iso(e.exp)}",
        )
    stdout_console().print(table)


@keys_app.command("show-trust-list")
def show_trust_list(
    trust: Annotated[Path, typer.Argument(help="Trust list file.")],
    root: Annotated[Path, typer.Option("--root", help="Pinned root COSE_Key.")],
    held_seq: Annotated[int | None, typer.Option("--held-seq", help="Seq a reader already holds.")] = None,
) -> None:
    """Verify a trust list under the root key and list its issuers; exit 0 only when status is ok."""
    with cli_errors(2):
        from trustcore import signed_object, trust_list

        root_key = read_root_key(root)
        result = trust_list.load(read_input(trust, "trust list"), root_key, held_seq)
        stdout_console().print(status_line(result.status))
        if result.detail:
            stdout_console().print(_("reason:") + " " + text_in(result.detail))  # a trustcore Text
        if result.trust_list is not None:
            listed = result.trust_list
            _print_entries(f"trust list seq {listed.seq}", list(listed.entries.values()))
        if result.status != signed_object.OK:
            raise typer.Exit(1)
