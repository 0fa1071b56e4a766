"""``cbcc keys card-keys``: the issuer's DESFire master keys, encrypted at rest.

Register with ``keys_app.add_typer(card_keys_app, name="card-keys")`` (file format:
``provisioning/card_keys.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import PassphraseFile, cli_errors, stdout_console
from messages import N_, _

_KCV = N_("AMK {amk}  read {read}  UID {uid}  PICC {picc}")  # check values of the four card keys

card_keys_app = typer.Typer(
    no_args_is_help=True, help="DESFire card master keys (AMK, read, UID, PICC), encrypted at rest."
)


@card_keys_app.command("init")
def init(
    out: Annotated[Path, typer.Option("--out", help="The new encrypted card-keys file (never overwritten).")],
    key_version: Annotated[
        int,
        typer.Option(
            "--key-version", help="Master-key generation (DESFire key version byte).", min=1, max=255
        ),
    ] = 1,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Generate the four card master keys at random and store them encrypted (scrypt + AES-256-GCM)."""
    with cli_errors():
        from cbcc.errors import CbccError
        from provisioning import card_keys
        from trustcore import passphrase

        if out.exists():
            raise CbccError(_("{path} already exists; refusing to overwrite it", path=out))
        secret = passphrase.obtain(passphrase_file, confirm=True, purpose=_("the new card master keys"))
        keys = card_keys.generate(key_version)
        out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        card_keys.write_new(out, keys, secret)
        kcv = keys.check_values()
        created, generation = _("card master keys created"), _("(generation {n})", n=key_version)
        check = _("check values:")
        only = _(
            "readers receive only the read master and the derived UID key (KCV {kcv})", kcv=kcv["uid_key"]
        )
        values = _(_KCV, amk=kcv["amk"], read=kcv["read"], uid=kcv["uid"], picc=kcv["picc"])
        stdout_console().print(f"[green]{created}[/green] {generation} → {out}\n  {check} {values}\n  {only}")


@card_keys_app.command("show")
def show(
    card_keys_file: Annotated[Path, typer.Argument(help="Encrypted card-keys file.")],
    passphrase_file: PassphraseFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Decrypt and print key check values (never the keys): to compare copies in a key ceremony."""
    with cli_errors():
        from provisioning import card_keys
        from trustcore import passphrase

        keys = card_keys.load(
            card_keys_file,
            lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(card_keys_file)),
        )
        kcv = keys.check_values()
        if as_json:
            print(json.dumps({"key_version": keys.key_version, "kcv": kcv}))
        else:
            values = _(_KCV, amk=kcv["amk"], read=kcv["read"], uid=kcv["uid"], picc=kcv["picc"])
            stdout_console().print(
                _(
                    "generation {n}: {values}  (UID key {uid_key})",
                    n=keys.key_version,
                    values=values,
                    uid_key=kcv["uid_key"],
                )
            )
