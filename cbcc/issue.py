"""``cbcc card issue | reissue | issue-batch | abandon | pending``: issuing DESFire cards on an encoder.

Registered on the ``card`` sub-app by :func:`register`. Everything is described in
docs/card-issuance.md; the commands are thin: options → :mod:`cbcc.issuance`.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cbcc.common import PassphraseFile, cli_errors, stdout_console
from messages import _

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cbcc.issuance.service import Issued, Issuer, Staff, Station
    from provisioning.encoders.base import Encoder

Db = Annotated[
    str,
    typer.Option(
        "--db", envvar="CBCC_ISSUANCE_DB", help="Gateway database URL (sqlite:///… or postgresql://…)."
    ),
]
IssuerDir = Annotated[Path, typer.Option("--issuer", help="Issuer directory (issuer.json, issuer.key.pem).")]
Pkcs11 = Annotated[
    str | None,
    typer.Option(
        "--pkcs11",
        envvar="CBCC_PKCS11",
        help="Sign in an HSM: MODULE.so:TOKEN_LABEL:KEY_LABEL (PIN: --pin-file or $CBCC_PKCS11_PIN).",
    ),
]
PinFile = Annotated[
    Path | None, typer.Option("--pin-file", help="File whose first line is the HSM user PIN.")
]
CardKeys = Annotated[
    Path, typer.Option("--card-keys", help="Encrypted DESFire master keys (cbcc-card-keys/1).")
]
AgencyCode = Annotated[str, typer.Option("--agency-code", help="Agency code the cards are filed under.")]
EncoderSpec = Annotated[
    str,
    typer.Option(
        "--encoder", envvar="CBCC_ENCODER", help="serial:/dev/ttyUSB0 | pcsc[:NAME] | rpi[:BUS.DEV] | virtual"
    ),
]
Operator = Annotated[str, typer.Option("--operator", help="Who issues (recorded); default the login name.")]
StationName = Annotated[
    str, typer.Option("--station", help="Issuing station (recorded); default the host name.")
]
Csv = Annotated[
    Path | None, typer.Option("--csv", help="Take the staff record from this CSV (UTF-8, header).")
]


def _engine(db: str) -> Engine:
    from gateway.db import make_engine, migrate

    migrate(db)
    return make_engine(db)


def load_issuer(
    issuer_dir: Path,
    card_keys_path: Path,
    agency_code: str,
    passphrase_file: Path | None,
    pkcs11: str | None = None,
    pin_file: Path | None = None,
) -> Issuer:
    """The issuer from its directory (file key) or an HSM, and the DESFire master keys."""
    from cbcc.errors import CbccError
    from cbcc.issuance.service import Issuer
    from provisioning import card_keys
    from trustcore import keys, passphrase, trust_list

    entry = trust_list.issuer_from_json(issuer_dir / "issuer.json" if issuer_dir.is_dir() else issuer_dir)
    if pkcs11:
        from provisioning.issuance import hsm

        signing: keys.PrivateKey = hsm.open_uri(pkcs11, pin_file)
    else:
        key_path = issuer_dir / "issuer.key.pem"
        signing = keys.load_private_key(
            key_path, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(key_path))
        )
    if keys.kid_of(signing.public_key()) != entry.kid:
        close = getattr(signing, "close", None)
        if close is not None:
            close()
        raise CbccError(_("the signing key does not belong to this issuer.json (kid differs)"))
    ck = card_keys.load(
        card_keys_path, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(card_keys_path))
    )
    if not agency_code.strip():
        raise CbccError(_("--agency-code must not be empty"))
    return Issuer(signing, entry, agency_code.strip(), ck)


def _station(operator: str, station: str) -> Station:
    from cbcc.issuance.service import Station

    return Station(operator or getpass.getuser(), station or socket.gethostname())


def _staff(engine: Engine, code: str, csv_path: Path | None) -> Staff:
    from cbcc.issuance import service

    if csv_path is not None:
        return service.staff_from_csv(csv_path, code)[0]
    return service.staff_from_db(engine, code)


def wait_for_card(encoder: Encoder, prompt: str, timeout_s: float = 300) -> None:
    """Poll the encoder until a card answers (telling the operator once)."""
    from cbcc.errors import CbccError
    from provisioning.encoders.base import NoCard

    console = stdout_console()
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            encoder.detect()
            return
        except NoCard:
            if not told:
                console.print(prompt)
                told = True
            if time.monotonic() > deadline:
                raise CbccError(_("no card presented in time")) from None
            time.sleep(0.3)


def wait_card_removed(encoder: Encoder, timeout_s: float = 300) -> None:
    from provisioning.encoders.base import EncoderError, NoCard

    deadline = time.monotonic() + timeout_s
    told = False
    while time.monotonic() < deadline:
        try:
            encoder.detect()
        except NoCard:
            return
        except EncoderError:
            pass
        if not told:
            stdout_console().print(_("[yellow]remove the card from the encoder[/yellow]"))
            told = True
        time.sleep(0.3)


def _hopper(encoder: Encoder) -> bool:
    """The virtual encoder's card hopper: the last card goes out, a fresh blank card comes in."""
    from provisioning.encoders.rfstack import VirtualEncoder, blank_card

    if isinstance(encoder, VirtualEncoder):
        encoder.place(blank_card(b"\x04" + os.urandom(6)))
        return True
    return False


def _release(issuer: Issuer) -> None:
    """Log out of the HSM (its session would otherwise stay logged in for this process)."""
    close = getattr(issuer.signing_key, "close", None)
    if close is not None:
        close()


class _Releaser:
    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer

    def close(self) -> None:
        _release(self.issuer)


def _report(got: Issued) -> None:
    what = _("completed the unfinished issuance") if got.resumed else _("issued")
    extra = _(", replaces serial {serial} (revoked)", serial=got.replaces) if got.replaces is not None else ""
    stdout_console().print(
        _(
            "[green]{what}[/green] serial [bold]{serial}[/bold] gen {gen} to {staff} on {card} {uid}{extra}; "
            "read back and verified as a reader reads it",
            what=what,
            serial=got.serial,
            gen=got.gen,
            staff=got.staff_code,
            card=got.generation,
            uid=got.uid.hex().upper(),
            extra=extra,
        )
    )


def _issue(
    db: str,
    staff_code: str,
    csv_path: Path | None,
    issuer_dir: Path,
    card_keys_path: Path,
    agency_code: str,
    encoder_spec: str,
    operator: str,
    station: str,
    passphrase_file: Path | None,
    pkcs11: str | None,
    pin_file: Path | None,
    reissue: bool,
) -> None:
    from cbcc.issuance.service import issue_card
    from provisioning.encoders.select import open_encoder

    engine = _engine(db)
    st = _staff(engine, staff_code, csv_path)
    issuer = load_issuer(issuer_dir, card_keys_path, agency_code, passphrase_file, pkcs11, pin_file)
    try:
        with open_encoder(encoder_spec) as enc:
            _hopper(enc)
            wait_for_card(enc, f"present a blank card for {st.name} ({st.staff_code})")
            got = issue_card(engine, enc, issuer, st, _station(operator, station), reissue=reissue)
    finally:
        _release(issuer)
    _report(got)
    if got.resumed and got.staff_code != st.staff_code:
        stdout_console().print(
            _("[yellow]that card was not blank; run again with a blank card for {staff}", staff=st.staff_code)
        )
        raise typer.Exit(3)


def register(card_app: typer.Typer) -> None:
    @card_app.command("issue")
    def issue(
        staff_code: Annotated[str, typer.Argument(help="Staff code (mã định danh) of the holder.")],
        db: Db,
        issuer: IssuerDir,
        card_keys: CardKeys,
        agency_code: AgencyCode,
        encoder: EncoderSpec,
        csv: Csv = None,
        operator: Operator = "",
        station: StationName = "",
        passphrase_file: PassphraseFile = None,
        pkcs11: Pkcs11 = None,
        pin_file: PinFile = None,
        reissue: Annotated[bool, typer.Option("--reissue", help="Replace the live card (gen + 1).")] = False,
    ) -> None:
        """Issue a card: record → next serial → credential → personalise → read back as a reader → record.

        A card left half-written by a broken link is completed when presented again (exit 3 if it
        belonged to someone else: present a blank card and run again).
        """
        with cli_errors():
            _issue(
                db,
                staff_code,
                csv,
                issuer,
                card_keys,
                agency_code,
                encoder,
                operator,
                station,
                passphrase_file,
                pkcs11,
                pin_file,
                reissue,
            )

    @card_app.command("reissue")
    def reissue_cmd(
        staff_code: Annotated[str, typer.Argument(help="Staff code whose live card is replaced.")],
        db: Db,
        issuer: IssuerDir,
        card_keys: CardKeys,
        agency_code: AgencyCode,
        encoder: EncoderSpec,
        csv: Csv = None,
        operator: Operator = "",
        station: StationName = "",
        passphrase_file: PassphraseFile = None,
        pkcs11: Pkcs11 = None,
        pin_file: PinFile = None,
    ) -> None:
        """Issue a replacement card (gen + 1); the old serial is revoked in the same transaction."""
        with cli_errors():
            _issue(
                db,
                staff_code,
                csv,
                issuer,
                card_keys,
                agency_code,
                encoder,
                operator,
                station,
                passphrase_file,
                pkcs11,
                pin_file,
                True,
            )

    @card_app.command("issue-batch")
    def issue_batch(
        staff_list: Annotated[
            Path,
            typer.Argument(
                help="CSV of staff (header: staff_code,name,agency,…) "
                "or a text file of staff codes, one a line."
            ),
        ],
        journal: Annotated[Path, typer.Option("--journal", help="Resumable journal (JSON lines).")],
        db: Db,
        issuer: IssuerDir,
        card_keys: CardKeys,
        agency_code: AgencyCode,
        encoder: EncoderSpec,
        operator: Operator = "",
        station: StationName = "",
        passphrase_file: PassphraseFile = None,
        pkcs11: Pkcs11 = None,
        pin_file: PinFile = None,
    ) -> None:
        """Issue cards for a list; run the same command again to resume after any interruption."""
        with cli_errors():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from cbcc.issuance import batch, service
            from provisioning.encoders.select import open_encoder

            engine = _engine(db)
            if staff_list.suffix.lower() == ".csv":
                people = service.staff_from_csv(staff_list)
            else:
                codes = [c.strip() for c in staff_list.read_text(encoding="utf-8").splitlines() if c.strip()]
                people = [service.staff_from_db(engine, c) for c in codes]
            iss = load_issuer(issuer, card_keys, agency_code, passphrase_file, pkcs11, pin_file)
            jr = batch.Journal(journal)
            st = _station(operator, station)
            with (
                contextlib.closing(_Releaser(iss)),
                open_encoder(encoder) as enc,
                Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[who]}"),
                    TimeRemainingColumn(),
                    console=stdout_console(),
                ) as progress,
            ):
                task = progress.add_task("cấp thẻ / issuing", total=len(people), who="")

                def next_card(person: Staff) -> None:
                    progress.update(task, who=f"{person.name} ({person.staff_code})")
                    if not _hopper(enc):
                        wait_card_removed(enc)
                        wait_for_card(enc, f"present a blank card for {person.name} ({person.staff_code})")

                def on_progress(person: Staff, what: str, detail: str) -> None:
                    if what in ("done", "skipped", "failed"):
                        progress.advance(task)
                    if what == "failed":
                        progress.console.print(f"[red]{person.staff_code}[/red]: {detail}")

                got = batch.run_batch(
                    engine, enc, iss, people, st, jr, next_card=next_card, on_progress=on_progress
                )
            stdout_console().print(
                _(
                    "issued {done}, already done {skipped}, failed {failed}, completed unfinished {resumed}",
                    done=len(got.done),
                    skipped=len(got.skipped),
                    failed=len(got.failed),
                    resumed=len(got.resumed),
                )
            )
            for code, why in got.failed.items():
                stdout_console().print(f"  [red]{code}[/red]: {why}")
            if got.failed:
                raise typer.Exit(1)

    @card_app.command("pending")
    def pending(db: Db) -> None:
        """Unfinished issuances (a card left half-written): present the card again, or abandon."""
        with cli_errors():
            from cbcc.issuance.service import pending_issuances
            from gateway.db import utc

            rows = pending_issuances(_engine(db))
            for r in rows:
                stdout_console().print(
                    _(
                        "serial {serial}  staff {staff}  card {uid}  station {station}  operator {operator}  "
                        "since {since}",
                        serial=r.serial,
                        staff=r.staff_code,
                        uid=r.uid.upper(),
                        station=r.station,
                        operator=r.operator,
                        since=utc(r.started_at),  # stored UTC; SQLite gives it back naive
                    )
                )
            if not rows:
                stdout_console().print(_("no unfinished issuance"))

    @card_app.command("abandon")
    def abandon_cmd(
        serial: Annotated[int, typer.Argument(help="Serial of the unfinished issuance whose card is lost.")],
        reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
        db: Db,
        operator: Operator = "",
        station: StationName = "",
    ) -> None:
        """Give up an unfinished issuance: its serial is revoked and never reused."""
        with cli_errors():
            from cbcc.issuance.service import abandon

            abandon(_engine(db), serial, _station(operator, station), reason)
            stdout_console().print(_("serial {serial} abandoned and revoked", serial=serial))


def register_keys(keys_app: typer.Typer) -> None:
    @keys_app.command("new-issuer-hsm")
    def new_issuer_hsm(
        pkcs11: Annotated[
            str, typer.Option("--pkcs11", help="MODULE.so:TOKEN_LABEL:KEY_LABEL of the new key.")
        ],
        name: Annotated[
            str, typer.Option("--name", help="Issuing authority, e.g. 'Sở Nội vụ tỉnh Nam Định'.")
        ],
        serial_range: Annotated[
            str, typer.Option("--serial-range", help="LO:HI card serials (HI exclusive).")
        ],
        out: Annotated[Path, typer.Option("--out", help="Directory for issuer.json (the public half).")],
        pin_file: PinFile = None,
        years: Annotated[
            int, typer.Option("--years", help="Validity of the key for issuing.", min=1, max=20)
        ] = 10,
        bits: Annotated[int, typer.Option("--bits", help="RSA modulus: 2048 or 3072.")] = 2048,
    ) -> None:
        """Key ceremony step: generate the issuer key INSIDE the HSM and write its issuer.json."""
        with cli_errors():
            import unicodedata

            from cbcc.errors import CbccError
            from provisioning.issuance import hsm
            from trustcore import keys, timeutil, trust_list

            label = unicodedata.normalize("NFC", name).strip()
            lo_s, _colon, hi_s = serial_range.partition(":")
            if not (lo_s.isdigit() and hi_s.isdigit()) or int(lo_s) >= int(hi_s):
                raise CbccError(_("--serial-range must be LO:HI with LO < HI"))
            if not label:
                raise CbccError(_("--name must not be empty"))
            json_path = out / "issuer.json"
            if json_path.exists():
                raise CbccError(_("refusing to overwrite {paths}", paths=json_path))
            module, token, key_label = hsm.parse_uri(pkcs11)
            key = hsm.generate(module, token, key_label, hsm.read_pin(pin_file), bits)
            nbf = int(time.time())
            entry = trust_list.IssuerEntry(
                key.public_key(), nbf, timeutil.add_years(nbf, years), int(lo_s), int(hi_s), label
            )
            key.close()
            out.mkdir(parents=True, exist_ok=True)
            keys.write_new_file(json_path, trust_list.issuer_json(entry).encode("utf-8"))
            stdout_console().print(
                _(
                    "[green]issuer key generated in the HSM[/green] (token {token}, label {label}, not "
                    "extractable) kid [bold]{kid}[/bold]",
                    token=token,
                    label=key_label,
                    kid=entry.kid.hex(),
                )
                + "\n  "
                + _("description: {path}", path=json_path)
            )
