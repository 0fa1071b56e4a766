"""``cbcc config``: the signed reader configuration (doors, groups, schedules, holidays, rules).

Register with ``app.add_typer(config_app, name="config")``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cbcc.common import (
    PassphraseFile,
    cli_errors,
    error_text,
    read_input,
    status_line,
    stdout_console,
    write_atomic,
)
from messages import _

config_app = typer.Typer(
    no_args_is_help=True, help="Signed reader configuration: door policy, schedules, holidays."
)


def _state_file_for(key: Path, reader_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in reader_id)
    return key.parent / f"config-{safe}.seq"


@config_app.command("init-key")
def init_key(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for config.key.pem, config.cose_key, config.pub.pem.")
    ],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Create a configuration signing key (RSA-3072), encrypted at rest; readers pin config.cose_key."""
    with cli_errors():
        from cbcc.errors import CbccError
        from trustcore import keys, passphrase

        targets = [out / "config.key.pem", out / "config.cose_key", out / "config.pub.pem"]
        existing = [str(p) for p in targets if p.exists()]
        if existing:
            raise CbccError(_("refusing to overwrite {paths}", paths=", ".join(existing)))
        secret = passphrase.obtain(passphrase_file, confirm=True, purpose=_("the new configuration key"))
        out.mkdir(parents=True, exist_ok=True)
        key = keys.generate_rsa(keys.ROOT_BITS)
        keys.write_private_key(targets[0], key, secret)
        keys.write_new_file(targets[1], keys.cose_key_bytes(key.public_key()))
        keys.write_new_file(targets[2], keys.public_pem(key.public_key()))
        stdout_console().print(
            _(
                "[green]configuration key[/green] kid {kid} → {out}",
                kid=keys.kid_of(key.public_key()).hex(),
                out=out,
            )
        )


@config_app.command("build")
def build(
    source: Annotated[Path, typer.Argument(help="Configuration source (.toml or .json).")],
    key: Annotated[Path, typer.Option("--key", help="Configuration private key (PEM, RSA).")],
    out: Annotated[Path, typer.Option("--out", help="Output: the signed configuration (COSE_Sign1).")],
    seq: Annotated[
        int | None, typer.Option("--seq", help="Sequence number; default last published + 1.", min=0)
    ] = None,
    reader_id: Annotated[
        str | None,
        typer.Option("--reader-id", help="Build for this reader (overrides reader_id in the source)."),
    ] = None,
    iat: Annotated[
        int | None, typer.Option("--iat", help="Issued-at, Unix seconds (default: now).", min=0)
    ] = None,
    passphrase_file: PassphraseFile = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file", help="Last-published seq of this reader; default config-<reader>.seq by the key."
        ),
    ] = None,
) -> None:
    """Check a configuration source and sign it for one reader; seq must only grow."""
    with cli_errors():
        from cryptography.hazmat.primitives.asymmetric import rsa

        from cbcc.errors import CbccError
        from trustcore import keys, passphrase, signed_object
        from trustcore import reader_config as rc

        src = rc.load_source(source)
        payload = rc.compile_source(src, reader_id=reader_id)  # fails early, before the passphrase
        rid = str(payload[4])
        state = state_file or _state_file_for(key, rid)
        chosen = signed_object.choose_seq(state, seq)
        private = keys.load_private_key(
            key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(key))
        )
        if not isinstance(private, rsa.RSAPrivateKey):
            raise CbccError(_("the configuration key must be an RSA key (readers verify RS256)"))
        blob = rc.build(src, private, chosen, int(time.time()) if iat is None else iat, reader_id=reader_id)
        check = rc.load(blob, private.public_key(), reader_id=rid)
        if check.status != signed_object.OK or check.config is None:
            raise CbccError(
                _("internal error: the new configuration does not load ({status})", status=check.status)
            )
        write_atomic(out, blob)
        signed_object.record_seq(state, chosen)
        cfg = check.config
        stdout_console().print(
            _(
                "[green]reader configuration[/green] {rid} seq {seq}: {doors} door(s), {groups} group(s), "
                "{schedules} schedule(s), {rules} rule(s) → {out} ({size} bytes of {max})",
                rid=rid,
                seq=chosen,
                doors=len(cfg["door"]),
                groups=len(cfg["group"]),
                schedules=len(cfg["schedule"]),
                rules=len(cfg["rule"]),
                out=out,
                size=len(blob),
                max=rc.MAX_SIZE,
            )
        )


def _print_config(cfg: dict[str, Any]) -> None:
    from rich.markup import escape

    from trustcore import reader_config as rc

    console = stdout_console()
    console.print(
        _(
            "reader [bold]{id}[/bold]  seq {seq}  iat {iat}  timezone {tz}",
            id=escape(cfg["reader_id"]),
            seq=cfg["seq"],
            iat=cfg["iat"],
            tz=cfg["timezone"],
        )
    )
    if cfg.get("site"):
        console.print(_("site: {site}", site=escape(cfg["site"])))
    console.print(
        _(
            "anti-passback: {cards} cards, timeout {timeout} s",
            cards=cfg.get("antipassback_capacity", rc.DEFAULT_APB),
            timeout=cfg.get("antipassback_timeout", rc.DEFAULT_APB_TIMEOUT),
        )
    )
    for d in cfg["door"]:
        extras = [d["mode"]]
        if d["requires_anti_clone"]:
            extras.append(_("anti-clone required"))
        if "unlock_schedule" in d:
            extras.append(_("unlocked by {schedule}", schedule=d["unlock_schedule"]))
        if "first_card" in d:
            extras.append(_("first card {groups}", groups="/".join(d["first_card"])))
        if "lockdown_override" in d:
            extras.append(_("lockdown override {groups}", groups="/".join(d["lockdown_override"])))
        if "anti_passback" in d:
            a = d["anti_passback"]
            extras.append(
                _("anti-passback {mode} area {src}→{dst}", mode=a["mode"], src=a["from"], dst=a["to"])
            )
        extras.append(
            _("re-tap {retap} s, unlock {unlock} s", retap=d["retap_seconds"], unlock=d["unlock_seconds"])
        )
        console.print(
            _(
                "door [bold]{id}[/bold] “{name}”: {details}",
                id=escape(d["id"]),
                name=escape(d["name"]),
                details=escape(", ".join(extras)),
            )
        )
    for g in cfg["group"]:
        crit = ", ".join(f"{k}={v}" for k, v in g.items() if k != "id")
        console.print(_("group {id}: {criteria}", id=escape(g["id"]), criteria=escape(crit)))
    for s in cfg["schedule"]:
        cal = "" if s.get("calendar", True) else _(" (ignores the holiday calendar)")
        console.print(
            _(
                "schedule {id}: {weekly}{calendar}",
                id=escape(s["id"]),
                weekly=escape("; ".join(s["weekly"])),
                calendar=cal,
            )
        )
    for r in cfg["rule"]:
        where = ", ".join(r.get("doors", [_("every door")]))
        when = r.get("schedule", _("always"))
        console.print(
            _(
                "rule {effect}: {groups} at {where}, {when}",
                effect=r["effect"],
                groups=escape(", ".join(r["groups"])),
                where=escape(where),
                when=escape(when),
            )
        )
    for key in ("deny", "allow"):
        if key in cfg:
            console.print(
                _("{kind} list: {items}", kind=key, items=escape(json.dumps(cfg[key], ensure_ascii=False)))
            )
    for date, kind in cfg.get("holidays", {}).items():
        console.print(_("holiday {date}: {kind}", date=date, kind=kind))


@config_app.command("show")
def show(
    config: Annotated[Path, typer.Argument(help="Signed reader configuration file.")],
    key: Annotated[Path, typer.Option("--key", help="Pinned configuration public key (COSE_Key or PEM).")],
    held_seq: Annotated[int | None, typer.Option("--held-seq", help="Seq a reader already holds.")] = None,
    reader_id: Annotated[
        str | None, typer.Option("--reader-id", help="Refuse a config for another reader.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (status and configuration).")
    ] = False,
) -> None:
    """Verify a signed configuration and print it; exit 0 only when status is ok."""
    with cli_errors(2):
        from cryptography.hazmat.primitives import serialization

        from cbcc.errors import CbccError
        from trustcore import keys, signed_object
        from trustcore import reader_config as rc

        raw = read_input(key, "configuration key")
        public: keys.PublicKey
        try:
            if raw.lstrip().startswith(b"-----BEGIN"):
                loaded = serialization.load_pem_public_key(raw)
                if not isinstance(loaded, keys.PublicKey):
                    raise CbccError(_("{path}: not an RSA or P-256 public key", path=key))
                public = loaded
            else:
                public = keys.load_cose_key(raw)
        except (keys.KeyFormatError, ValueError) as exc:
            raise CbccError(f"{key}: {error_text(exc)}") from None
        result = rc.load(read_input(config, "configuration"), public, held_seq, reader_id=reader_id)
        if as_json:
            print(json.dumps({"status": result.status, "config": result.config}, ensure_ascii=False))
        else:
            stdout_console().print(status_line(result.status))
            if result.config is not None:
                _print_config(result.config)
        if result.status != signed_object.OK:
            raise typer.Exit(1)
