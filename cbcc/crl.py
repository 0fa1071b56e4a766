"""``cbcc crl``: the interim inline revocation list (root-signed, ≤ 16 KiB) and the national
compact list (``build-national``, ``delta``, ``show-national``; docs/revocation-list-national-v1.md)."""

from __future__ import annotations

import time
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
    from cryptography.hazmat.primitives.asymmetric import rsa

crl_app = typer.Typer(no_args_is_help=True, help="Revocation lists: inline (small) and national (compact).")


def _read_serials_file(path: Path) -> list[int]:
    """One serial per line; blank lines and text after '#' are ignored."""
    from cbcc.errors import CbccError

    serials = []
    text = read_input(path, "serials file").decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if not item.isdigit():
            raise CbccError(
                _("{path}:{line}: not a serial number: {item}", path=path, line=number, item=repr(item))
            )
        serials.append(int(item))
    return serials


@crl_app.command("build")
def build(
    root_key: Annotated[Path, typer.Option("--root-key", help="Encrypted root private key (PEM).")],
    out: Annotated[Path, typer.Option("--out", help="Output revocation list (CBOR COSE_Sign1).")],
    serial: Annotated[
        list[int] | None, typer.Option("--serial", help="A revoked card serial; repeat as needed.", min=0)
    ] = None,
    serials_file: Annotated[
        Path | None, typer.Option("--serials-file", help="File with one revoked serial per line.")
    ] = None,
    seq: Annotated[
        int | None, typer.Option("--seq", help="Sequence number; default last published + 1.", min=0)
    ] = None,
    passphrase_file: PassphraseFile = None,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", help="Last-published seq; default beside the root key.")
    ] = None,
) -> None:
    """Sign a revocation list of card serials with the root key; seq must only grow."""
    with cli_errors():
        from cryptography.hazmat.primitives.asymmetric import rsa

        from cbcc.errors import CbccError
        from trustcore import keys, passphrase, revocation, signed_object

        if serial is None and serials_file is None:
            raise CbccError(_("give revoked serials with --serial N (repeatable) or --serials-file FILE"))
        serials = list(serial or []) + (_read_serials_file(serials_file) if serials_file else [])
        state = state_file or root_key.parent / revocation.SEQ_STATE_NAME
        chosen = signed_object.choose_seq(state, seq)
        key = keys.load_private_key(
            root_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(root_key))
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CbccError(_("the root key must be an RSA key"))
        blob = revocation.build(key, chosen, int(time.time()), serials)
        check = revocation.load(blob, key.public_key())
        if check.status != signed_object.OK or check.crl is None:
            raise CbccError(
                _("internal error: the new revocation list does not load ({status})", status=check.status)
            )
        write_atomic(out, blob)
        signed_object.record_seq(state, chosen)
        stdout_console().print(
            _(
                "[green]revocation list[/green] seq {seq}: {n} serial(s) → {out} ({size} bytes)",
                seq=chosen,
                n=len(check.crl),
                out=out,
                size=len(blob),
            )
        )


@crl_app.command("show")
def show(
    crl: Annotated[Path, typer.Argument(help="Revocation list file.")],
    root: Annotated[Path, typer.Option("--root", help="Pinned root COSE_Key.")],
    held_seq: Annotated[int | None, typer.Option("--held-seq", help="Seq a reader already holds.")] = None,
) -> None:
    """Verify a revocation list and print its serials; exit 0 only when status is ok."""
    with cli_errors(2):
        from trustcore import revocation, signed_object

        root_key = read_root_key(root)
        result = revocation.load(read_input(crl, "revocation list"), root_key, held_seq)
        console = stdout_console()
        console.print(status_line(result.status))
        if result.crl is not None:
            console.print(_("seq {seq}, {n} revoked serial(s)", seq=result.crl.seq, n=len(result.crl)))
            for s in result.crl.serials():
                console.print(str(s))
        if result.status != signed_object.OK:
            raise typer.Exit(1)


def _root_private_key(root_key: Path, passphrase_file: Path | None) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from cbcc.errors import CbccError
    from trustcore import keys, passphrase

    key = keys.load_private_key(
        root_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(root_key))
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CbccError(_("the root key must be an RSA key"))
    return key


@crl_app.command("build-national")
def build_national(
    root_key: Annotated[Path, typer.Option("--root-key", help="Encrypted root private key (PEM).")],
    serials_file: Annotated[Path, typer.Option("--serials", help="File with one revoked serial per line.")],
    ranges_file: Annotated[
        Path,
        typer.Option("--ranges", help="Serial ranges, one 'LO HI' (HI exclusive) per line: issuers' ranges."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output object (signed header + detached body).")],
    seq: Annotated[
        int | None, typer.Option("--seq", help="Sequence number; default last published + 1.", min=0)
    ] = None,
    bucket_entries: Annotated[
        int, typer.Option("--bucket-entries", help="Revoked serials per bucket aimed at.", min=1, max=4096)
    ] = 64,
    passphrase_file: PassphraseFile = None,
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", help="Last-published seq; default ncrl.seq beside the root key."),
    ] = None,
) -> None:
    """Sign a national compact revocation list (full) with the root key; seq must only grow."""
    with cli_errors():
        from cbcc.errors import CbccError
        from trustcore import crl_national, signed_object

        serials = _read_serials_file(serials_file)
        ranges = crl_national.parse_ranges_text(
            read_input(ranges_file, "ranges file").decode("utf-8", "replace")
        )
        state = state_file or root_key.parent / crl_national.SEQ_STATE_NAME
        chosen = signed_object.choose_seq(state, seq)
        key = _root_private_key(root_key, passphrase_file)
        blob = crl_national.build_full(
            key, chosen, int(time.time()), serials, ranges, bucket_entries=bucket_entries
        )
        check = crl_national.load(blob, key.public_key())
        if check.seq != chosen:
            raise CbccError(_("internal error: the new list does not load ({status})", status=check.detail))
        write_atomic(out, blob)
        signed_object.record_seq(state, chosen)
        stdout_console().print(
            _(
                "[green]national revocation list[/green] seq {seq}: {n} serial(s) → {out} "
                "({size} bytes, {bits} bits per serial)",
                seq=chosen,
                n=check.count(),
                out=out,
                size=len(blob),
                bits=f"{8 * len(blob) / max(1, check.count()):.2f}",
            )
        )


@crl_app.command("delta")
def delta(
    root_key: Annotated[Path, typer.Option("--root-key", help="Encrypted root private key (PEM).")],
    base: Annotated[Path, typer.Option("--base", help="The full national list the delta applies to.")],
    serials_file: Annotated[
        Path, typer.Option("--serials", help="The whole revoked set now, one serial per line.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output delta object.")],
    seq: Annotated[
        int | None, typer.Option("--seq", help="Sequence number; default last published + 1.", min=0)
    ] = None,
    passphrase_file: PassphraseFile = None,
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", help="Last-published seq; default ncrl.seq beside the root key."),
    ] = None,
) -> None:
    """Sign a delta from a full national list to the revoked set now (added and unrevoked serials)."""
    with cli_errors():
        from cbcc.errors import CbccError
        from trustcore import crl_national, signed_object

        serials = _read_serials_file(serials_file)
        state = state_file or root_key.parent / crl_national.SEQ_STATE_NAME
        chosen = signed_object.choose_seq(state, seq)
        key = _root_private_key(root_key, passphrase_file)
        held = crl_national.NationalList(key.public_key())
        status = held.offer(read_input(base, "base list"))
        if status != signed_object.OK or held.full is None:
            raise CbccError(
                _(
                    "the base {path} is not a full national list signed by this root ({status})",
                    path=base,
                    status=status,
                )
            )
        blob = crl_national.build_delta(key, chosen, int(time.time()), held, serials)
        status = held.offer(blob)
        if status != signed_object.OK or held.delta is None:
            raise CbccError(
                _("internal error: the delta does not apply ({status})", status=f"{status} {held.detail}")
            )
        write_atomic(out, blob)
        signed_object.record_seq(state, chosen)
        base_seq = held.full_header.seq if held.full_header else "?"
        stdout_console().print(
            _(
                "[green]delta[/green] seq {seq} on base seq {base}: +{added} −{removed} → {out} "
                "({size} bytes)",
                seq=chosen,
                base=base_seq,
                added=len(held.delta.added),
                removed=len(held.delta.removed),
                out=out,
                size=len(blob),
            )
        )


@crl_app.command("show-national")
def show_national(
    obj: Annotated[Path, typer.Argument(help="National list object (full or delta).")],
    root: Annotated[Path, typer.Option("--root", help="Pinned root COSE_Key.")],
    base: Annotated[Path | None, typer.Option("--base", help="The full list a delta applies to.")] = None,
    serial: Annotated[
        list[int] | None, typer.Option("--serial", help="Also say whether this serial is revoked.", min=0)
    ] = None,
) -> None:
    """Verify a national list (a delta on top of --base) and print its figures; exit 0 only when ok."""
    with cli_errors(2):
        from trustcore import crl_national, signed_object

        held = crl_national.NationalList(read_root_key(root))
        console = stdout_console()
        if base is not None:
            status = held.offer(read_input(base, "base list"))
            console.print(status_line(status, N_("base status:")) + " " + text_in(held.detail))
        status = held.offer(read_input(obj, "national list"))
        console.print(status_line(status) + " " + text_in(held.detail))  # a trustcore Text
        if held.seq is not None:
            console.print(_("seq {seq}, {n} revoked serial(s)", seq=held.seq, n=held.count()))
        if held.delta is not None:
            console.print(
                _("delta: +{added} −{removed}", added=len(held.delta.added), removed=len(held.delta.removed))
            )
        for s in serial or []:
            console.print(f"{s}: " + (_("revoked") if held.is_revoked(s) else _("not revoked")))
        if status != signed_object.OK:
            raise typer.Exit(1)
