"""``cbcc crl``: the interim inline revocation list (root-signed, ≤ 16 KiB)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from provisioning.cli_common import (
    PassphraseFile,
    cli_errors,
    read_input,
    read_root_key,
    stdout_console,
    write_atomic,
)

crl_app = typer.Typer(no_args_is_help=True, help="Interim inline revocation list.")


def _read_serials_file(path: Path) -> list[int]:
    """One serial per line; blank lines and text after '#' are ignored."""
    from provisioning.errors import CbccError

    serials = []
    text = read_input(path, "serials file").decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        if not item.isdigit():
            raise CbccError(f"{path}:{number}: not a serial number: {item!r}")
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

        from provisioning import keys, passphrase, revocation, signed_object
        from provisioning.errors import CbccError

        if serial is None and serials_file is None:
            raise CbccError("give revoked serials with --serial N (repeatable) or --serials-file FILE")
        serials = list(serial or []) + (_read_serials_file(serials_file) if serials_file else [])
        state = state_file or root_key.parent / revocation.SEQ_STATE_NAME
        chosen = signed_object.choose_seq(state, seq)
        key = keys.load_private_key(
            root_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(root_key))
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CbccError("the root key must be an RSA key")
        blob = revocation.build(key, chosen, int(time.time()), serials)
        check = revocation.load(blob, key.public_key())
        if check.status != signed_object.OK or check.crl is None:
            raise CbccError(f"internal error: the new revocation list does not load ({check.status})")
        write_atomic(out, blob)
        signed_object.record_seq(state, chosen)
        stdout_console().print(
            f"[green]revocation list[/green] seq {chosen}: {len(check.crl)} serial(s) → {out} "
            f"({len(blob)} bytes)"
        )


@crl_app.command("show")
def show(
    crl: Annotated[Path, typer.Argument(help="Revocation list file.")],
    root: Annotated[Path, typer.Option("--root", help="Pinned root COSE_Key.")],
    held_seq: Annotated[int | None, typer.Option("--held-seq", help="Seq a reader already holds.")] = None,
) -> None:
    """Verify a revocation list and print its serials; exit 0 only when status is ok."""
    with cli_errors(2):
        from provisioning import revocation, signed_object

        root_key = read_root_key(root)
        result = revocation.load(read_input(crl, "revocation list"), root_key, held_seq)
        console = stdout_console()
        console.print(f"status: [bold]{result.status}[/bold]")
        if result.crl is not None:
            console.print(f"seq {result.crl.seq}, {len(result.crl)} revoked serial(s)")
            for s in result.crl.serials():
                console.print(str(s))
        if result.status != signed_object.OK:
            raise typer.Exit(1)
