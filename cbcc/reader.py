"""``cbcc reader``: write everything one reader needs (docs/reader-provisioning.md).

Register with ``app.add_typer(reader_app, name="reader")``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import PassphraseFile, cli_errors, read_input, stdout_console, warn
from messages import _

reader_app = typer.Typer(
    no_args_is_help=True, help="Reader provisioning: the files a door reader boots from."
)


class Board(StrEnum):
    DEVKITC = "esp32-devkitc"
    POE_ISO = "olimex-esp32-poe-iso"


class Network(StrEnum):
    WIFI = "wifi"
    LAN = "lan"


class Role(StrEnum):
    DOOR = "door"
    ATTENDANCE = "attendance"
    BOTH = "both"


def _default_firmware() -> str:
    from importlib import metadata

    try:
        return "cbcc-" + metadata.version("cbcc")
    except metadata.PackageNotFoundError:
        return "cbcc-unknown"


@reader_app.command("provision")
def provision(
    reader_id: Annotated[str, typer.Option("--reader-id", help="Reader id as registered at the gateway.")],
    secrets: Annotated[
        Path,
        typer.Option(
            "--secrets", help="SECRETS.json from `cbcc gateway reader add --secrets-out`.", dir_okay=False
        ),
    ],
    broker_host: Annotated[str, typer.Option("--broker-host", help="MQTT broker host name or IP address.")],
    broker_ca: Annotated[
        Path,
        typer.Option(
            "--broker-ca", help="CA certificate that signed the broker's (PEM or DER).", dir_okay=False
        ),
    ],
    root_key: Annotated[Path, typer.Option("--root-key", help="Pinned root public key (root.cose_key).")],
    config_key: Annotated[
        Path, typer.Option("--config-key", help="Pinned configuration public key (config.cose_key).")
    ],
    card_keys_path: Annotated[
        Path, typer.Option("--card-keys", help="Encrypted card master keys (`cbcc keys card-keys init`).")
    ],
    board: Annotated[Board, typer.Option("--board", help="Reader board (hardware/pinmap.json).")],
    network: Annotated[Network, typer.Option("--network", help="wifi (DevKitC) or lan (POE-ISO).")],
    out: Annotated[Path, typer.Option("--out", help="New directory that mirrors the reader's file system.")],
    broker_port: Annotated[int, typer.Option("--broker-port", help="MQTT over TLS port.")] = 8883,
    broker_server_name: Annotated[
        str | None,
        typer.Option("--broker-server-name", help="Name in the broker certificate, if not --broker-host."),
    ] = None,
    ssid: Annotated[str | None, typer.Option("--ssid", help="Wi-Fi network name (--network wifi).")] = None,
    wifi_password_file: Annotated[
        Path | None,
        typer.Option(
            "--wifi-password-file", help="File whose first line is the Wi-Fi password.", dir_okay=False
        ),
    ] = None,
    role: Annotated[Role, typer.Option("--role", help="door, attendance or both.")] = Role.DOOR,
    size_hint: Annotated[
        int, typer.Option("--size-hint", help="Credential bytes read in the first ReadData (0..1024).")
    ] = 512,
    firmware: Annotated[
        str | None,
        typer.Option(
            "--firmware-version", help="Firmware version the reader reports (default: cbcc-<version>)."
        ),
    ] = None,
    pinmap: Annotated[
        Path | None,
        typer.Option("--pinmap", help="Pin map (default: hardware/pinmap.json of this checkout)."),
    ] = None,
    passphrase_file: PassphraseFile = None,
    flash: Annotated[
        str | None,
        typer.Option("--flash", help="Serial port: copy the tree with mpremote (else print the commands)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary (no secrets).")] = False,
) -> None:
    """Check every input, then write the reader's tree: reader.json, pin map, keys, MANIFEST."""
    with cli_errors():
        from cbcc.errors import CbccError
        from provisioning import card_keys
        from provisioning import reader_provision as rp
        from trustcore import passphrase

        # Cheap checks first: nothing is asked for or written while any input is wrong.
        rp.check_reader_id(reader_id)
        rp.check_out_dir(out)
        sec = rp.parse_secrets(read_input(secrets, "secrets file"), str(secrets))
        if sec.reader_id != reader_id:
            raise CbccError(
                _(
                    "{path} is for reader {theirs}, not {ours}",
                    path=secrets,
                    theirs=sec.reader_id,
                    ours=reader_id,
                )
            )
        rp.check_broker_host(broker_host)
        ca = rp.load_broker_ca(read_input(broker_ca, "broker CA"), str(broker_ca))
        root_cose = read_input(root_key, "root key")
        root_kid = rp.check_cose_key(root_cose, str(root_key), "root key")
        config_cose = read_input(config_key, "configuration key")
        config_kid = rp.check_cose_key(config_cose, str(config_key), "configuration key")
        if root_kid == config_kid:
            raise CbccError(
                _("--root-key and --config-key are the same key; the configuration key is its own key")
            )
        pm = rp.load_pinmap(pinmap or rp.DEFAULT_PINMAP)
        spec = rp.board_spec(pm, board.value)
        wifi_pw = rp.read_wifi_password(wifi_password_file) if wifi_password_file is not None else None
        net = rp.network_config(board.value, spec, network.value, ssid, wifi_pw)
        version = firmware if firmware is not None else _default_firmware()
        if not version or len(version) > 64 or not version.isprintable():
            raise CbccError(_("--firmware-version must be 1-64 printable characters"))
        keys = card_keys.load(
            card_keys_path,
            lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(card_keys_path)),
        )
        image = rp.build_image(
            reader_id=reader_id, secrets=sec, broker_host=broker_host, broker_port=broker_port,
            server_hostname=broker_server_name, ca=ca, root_cose=root_cose, config_cose=config_cose,
            share=keys.reader_share(), pinmap=pm, board=board.value, network=net, role=role.value,
            firmware=version, size_hint=size_hint,
        )  # fmt: skip
        for w in image.warnings:
            warn(w)
        hashes = rp.write_tree(out, image)
        flashed = _flash(out, flash, as_json) if flash is not None else False
        summary = dict(
            image.summary, out=str(out), files=hashes, root_kid=root_kid.hex(), config_kid=config_kid.hex(),
            card_key_version=keys.key_version, flashed=flashed,
        )  # fmt: skip
        if as_json:
            print(json.dumps(summary, ensure_ascii=False))
        else:
            from rich.markup import escape

            stdout_console().print(
                _(
                    "[green]reader {id}[/green] ({board}, {net}, role {role}) → {out}\n"
                    "  broker {host}:{port}, CA {ca} (until {until})\n"
                    "  root kid {root}, config kid {config}, card keys generation {generation}\n"
                    "  {n} files, 0600, SHA-256 in {manifest}",
                    id=reader_id,
                    board=board.value,
                    net=net["type"],
                    role=role.value,
                    out=escape(str(out)),
                    host=escape(broker_host),
                    port=broker_port,
                    ca=escape(ca.subject),
                    until=ca.not_after,
                    root=root_kid.hex(),
                    config=config_kid.hex(),
                    generation=keys.key_version,
                    n=len(hashes),
                    manifest=escape(str(out / rp.MANIFEST)),
                )
            )


def _flash(out: Path, port: str, quiet: bool) -> bool:
    """Copy the tree with mpremote when it is installed (not exercised by the tests: needs a reader)."""
    import shlex
    import shutil
    import subprocess

    from cbcc.errors import CbccError
    from provisioning import reader_provision as rp

    cmds = rp.mpremote_commands(out, port)
    if shutil.which("mpremote") is None:
        console = stdout_console() if not quiet else None
        warn(
            _("mpremote is not installed: run these commands to write the reader (uv tool install mpremote)")
        )
        text = "\n".join(shlex.join(c) for c in cmds)
        if console is not None:
            console.print(text, markup=False)
        else:
            typer.echo(text, err=True)
        return False
    for cmd in cmds[:-1]:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603 — argv list: mpremote and the bundle's own paths; no shell
        if proc.returncode != 0:
            raise CbccError(
                _(
                    "{command} failed: {output}",
                    command=shlex.join(cmd[:5]),
                    output=(proc.stderr or proc.stdout).strip()[:300],
                )
            )
    proc = subprocess.run(cmds[-1], capture_output=True, text=True, check=False, timeout=120)  # noqa: S603 — argv list: mpremote and the bundle's own paths; no shell
    device = rp.parse_device_hashes(proc.stdout)
    expected = rp.verify_tree(out)
    bad = [p for p in rp.DEVICE_FILES if device.get(p) != expected.get(p)]
    if bad:
        raise CbccError(
            _(
                "the reader's copy differs from {manifest}: {files}",
                manifest=out / rp.MANIFEST,
                files=", ".join(bad),
            )
        )
    return True
