"""``cbcc card``: mint a credential from a national-database record; verify one as a reader would."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cbcc.common import (
    PassphraseFile,
    cli_errors,
    read_input,
    read_root_key,
    stdout_console,
    warn,
    write_atomic,
)
from messages import _

if TYPE_CHECKING:
    from trustcore.keys import PrivateKey

card_app = typer.Typer(no_args_is_help=True, help="Card credentials: mint and verify.")


@card_app.command("mint")
def mint(
    record: Annotated[Path, typer.Option("--record", help="RECORD.json from the national database.")],
    issuer_key: Annotated[Path, typer.Option("--issuer-key", help="Issuer private key (encrypted PEM).")],
    out: Annotated[Path, typer.Option("--out", help="Output credential (CBOR COSE_Sign1).")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Sign a card credential (credential-v1 §2); kid is derived from the issuer key."""
    with cli_errors():
        from cbcc.errors import CbccError
        from provisioning import rollover
        from trustcore import cose, credential, keys, passphrase

        ro = rollover.read_rollover(issuer_key.parent)
        if ro is not None:
            raise CbccError(
                _("{key} was rolled over to key {kid} ({dir}); mint with the new key", key=issuer_key,
                  kid=ro.new_kid, dir=ro.new_dir)
            )  # fmt: skip
        claims = credential.load_record(record)
        if not keys.is_encrypted_pem(issuer_key):
            warn(_("{key} is not encrypted; keep issuer keys encrypted at rest", key=issuer_key))
        key = keys.load_private_key(
            issuer_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(issuer_key))
        )
        _check_issuer_window(issuer_key, claims, key)
        blob = credential.mint(claims, key)
        write_atomic(out, blob)
        alg = cose.ALG_NAMES[cose.alg_for(key)]
        said = _("serial {serial} for {name} ({staff}) → {out} ({size} bytes, {alg}, kid {kid})",
                 serial=claims[credential.SERIAL], name=claims[credential.NAME],
                 staff=claims[credential.STAFF], out=out, size=len(blob), alg=alg,
                 kid=keys.kid_of(key.public_key()).hex())  # fmt: skip
        minted = _("minted")
        stdout_console().print(f"[green]{minted}[/green] {said}")


def _check_issuer_window(issuer_key: Path, claims: dict[int, Any], key: PrivateKey) -> None:
    """Refuse a credential that no reader would accept because of the issuer key's own window
    (issuer.json beside the key, as ``keys new-issuer`` writes it): say why and what fixes it."""
    from cbcc.errors import CbccError
    from trustcore import credential, keys, timeutil, trust_list

    desc = issuer_key.parent / "issuer.json"
    if not desc.is_file():
        return
    entry = trust_list.issuer_from_json(desc)
    if entry.kid != keys.kid_of(key.public_key()):
        return
    iat, serial = claims[credential.IAT], claims[credential.SERIAL]
    if not isinstance(iat, int) or not isinstance(serial, int):
        return  # claims_from_record made them ints; nothing to compare otherwise
    if not entry.nbf <= iat < entry.exp:
        raise CbccError(
            _("issued_at {iat} is outside the issuer key's window {nbf} → {exp} ({desc}); readers would "
              "answer issuer_not_valid. Make the issuer key with an earlier --not-before (keys new-issuer).",
              iat=timeutil.to_iso(iat), nbf=timeutil.to_iso(entry.nbf), exp=timeutil.to_iso(entry.exp),
              desc=desc)
        )  # fmt: skip
    if not entry.serial_lo <= serial < entry.serial_hi:
        raise CbccError(
            _("serial {serial} is outside the issuer key's range {lo} … {hi} ({desc}); readers would answer "
              "serial_out_of_range.", serial=serial, lo=entry.serial_lo, hi=entry.serial_hi - 1, desc=desc)
        )  # fmt: skip


@card_app.command("verify")
def verify(
    cred: Annotated[Path, typer.Argument(help="Credential file (CBOR COSE_Sign1).")],
    trust_list_path: Annotated[Path, typer.Option("--trust-list", help="Trust list signed by the root.")],
    root: Annotated[Path, typer.Option("--root", help="Pinned root public key (CBOR COSE_Key).")],
    uid: Annotated[str, typer.Option("--uid", help="Chip UID read from the card, in hex.")],
    now: Annotated[
        int | None, typer.Option("--now", help="Unix seconds to verify at; default the clock.", min=0)
    ] = None,
    crl: Annotated[Path | None, typer.Option("--crl", help="Revocation list signed by the root.")] = None,
    repeat: Annotated[
        int, typer.Option("--repeat", help="Run the verification N times; report the mean time.", min=1)
    ] = 1,
) -> None:
    """Verify a credential as a reader does; print one JSON line; exit 0 valid, 1 invalid, 2 usage."""
    with cli_errors(2):
        from trustcore import credential, revocation, signed_object, trust_list

        chip_uid = credential.parse_chip_uid(uid)
        blob = read_input(cred, "credential")
        trust_blob = read_input(trust_list_path, "trust list")
        crl_blob = read_input(crl, "revocation list") if crl is not None else None
        root_key = read_root_key(root)

        loaded = trust_list.load(trust_blob, root_key)
        trust = loaded.trust_list
        if loaded.status != signed_object.OK or trust is None:
            said = _("trust list {path} not accepted ({status}); using an empty trust list",
                     path=trust_list_path, status=loaded.status)  # fmt: skip
            warn(said)
            trust = trust_list.EMPTY
        revoked = None
        if crl_blob is not None:
            crl_loaded = revocation.load(crl_blob, root_key)
            revoked = crl_loaded.crl
            if crl_loaded.status != signed_object.OK or revoked is None:
                said = _("revocation list {path} not accepted ({status}); revocation not checked", path=crl,
                         status=crl_loaded.status)  # fmt: skip
                warn(said)
                revoked = None
        at = int(time.time()) if now is None else now

        start = time.perf_counter_ns()
        for _round in range(repeat):
            verdict = credential.verify(blob, trust, chip_uid, at, revoked)
        elapsed_us = (time.perf_counter_ns() - start) / 1000 / repeat

    line = {
        "valid": verdict.valid,
        "reason": verdict.reason,
        "serial": verdict.serial,
        "staff": verdict.staff,
        "us_per_verify": round(elapsed_us, 3),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    raise typer.Exit(0 if verdict.valid else 1)
