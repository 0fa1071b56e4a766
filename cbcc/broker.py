"""``cbcc broker``: write and maintain the production Mosquitto configuration (docs/broker.md)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import PassphraseFile, fail, stdout_console
from messages import N_, _

broker_app = typer.Typer(
    no_args_is_help=True, help="The MQTT broker: Mosquitto configuration, passwords, ACL."
)

_RELOAD = N_(
    "Reload the broker so it reads the new password file and ACL: "
    "[bold]systemctl reload mosquitto[/bold] (or [bold]kill -HUP <mosquitto pid>[/bold]); "
    "with the dynamic-security plugin (dynamic-security.json) restart it instead: "
    "[bold]systemctl restart mosquitto[/bold] (it saves its queues on the way out)."
)


_LIVE = N_("Applied to the running broker through its dynamic-security API: no restart needed.")
Live = Annotated[
    str | None,
    typer.Option("--live", help="HOST:PORT of the running Mosquitto: apply the change now (no restart)."),
]
AdminPassword = Annotated[
    Path | None,
    typer.Option("--admin-password-file", help="File with the cbcc-admin password (credentials CSV)."),
]


@broker_app.command("config")
def config(
    out: Annotated[Path, typer.Option("--out", help="Folder for mosquitto.conf, passwd, acl, roster.json.")],
    readers_csv: Annotated[
        Path | None,
        typer.Option(
            "--readers", help="CSV of reader ids (column reader_id, or the first column).", dir_okay=False
        ),
    ] = None,
    reader: Annotated[list[str] | None, typer.Option("--reader", help="A reader id (repeatable).")] = None,
    gateway_user: Annotated[
        list[str] | None,
        typer.Option("--gateway-user", help="Gateway username (repeatable; default gateway)."),
    ] = None,
    make_ca: Annotated[
        bool, typer.Option("--make-ca", help="Create a CA (key encrypted) and a server certificate in --out.")
    ] = False,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="DNS name or IP readers dial (repeatable; with --make-ca)."),
    ] = None,
    cafile: Annotated[Path | None, typer.Option("--cafile", help="Existing CA certificate (PEM).")] = None,
    certfile: Annotated[
        Path | None, typer.Option("--certfile", help="Existing server certificate (PEM).")
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option("--keyfile", help="Existing server key (PEM, clear).")
    ] = None,
    passphrase_file: PassphraseFile = None,
    tls_port: Annotated[int, typer.Option("--tls-port", help="TLS listener port.")] = 8883,
    tls_bind: Annotated[
        str | None, typer.Option("--tls-bind", help="Address of the TLS listener (default: all).")
    ] = None,
    local_port: Annotated[
        int | None,
        typer.Option("--local-port", help="Also listen in plain MQTT on 127.0.0.1:PORT for a local gateway."),
    ] = None,
    persistence_dir: Annotated[
        Path, typer.Option("--persistence-dir", help="Where Mosquitto keeps mosquitto.db.")
    ] = Path("/var/lib/mosquitto/"),
    install_dir: Annotated[
        Path | None,
        typer.Option(
            "--install-dir", help="Where these files will live on the broker host (default: --out)."
        ),
    ] = None,
    taps_per_day: Annotated[
        int, typer.Option("--taps-per-day", help="Busiest reader's taps per day (sizes the queue).", min=1)
    ] = 4000,
    max_inflight: Annotated[
        int, typer.Option("--max-inflight", help="max_inflight_messages (0: unlimited).", min=0)
    ] = 1000,
    autosave_seconds: Annotated[
        int, typer.Option("--autosave-seconds", help="Save the persistence file this often.", min=1)
    ] = 60,
    allow_any_clientid: Annotated[
        bool,
        typer.Option("--allow-any-clientid", help="Do not force client id = username (not recommended)."),
    ] = False,
    dynsec_plugin: Annotated[
        Path | None,
        typer.Option("--dynsec-plugin", help="mosquitto_dynamic_security.so (default: where installed)."),
    ] = None,
    acl_file_only: Annotated[
        bool,
        typer.Option("--acl-file-only", help="password_file + acl_file, no plugin (subscribe unchecked)."),
    ] = False,
) -> None:
    """Write a production Mosquitto configuration with one password and ACL block per reader."""
    from rich.markup import escape

    from gateway.mqtt import broker_config as bc
    from trustcore.errors import TrustcoreError

    try:
        ids = list(reader or [])
        if readers_csv is not None:
            ids += bc.read_reader_ids(readers_csv)
        given = [p for p in (cafile, certfile, keyfile) if p is not None]
        if make_ca and given:
            raise bc.BrokerConfigError(
                _("--make-ca creates the CA: do not also give --cafile/--certfile/--keyfile")
            )
        if not make_ca and len(given) != 3:
            raise bc.BrokerConfigError(_("give --cafile, --certfile and --keyfile, or --make-ca"))
        if local_port is not None and local_port == tls_port:
            raise bc.BrokerConfigError(_("--local-port must differ from --tls-port"))
        where = (install_dir or out).absolute()
        files = bc.BrokerFiles(out)
        for p in (files.conf, files.passwd, files.acl, files.roster):
            if p.exists():
                raise bc.BrokerConfigError(_("{path} already exists; use add-reader/remove-reader", path=p))
        out.mkdir(parents=True, exist_ok=True)
        ca_note = ""
        if make_ca:
            from trustcore import passphrase

            names = list(server_name or []) or [socket.getfqdn(), "localhost"]
            secret = passphrase.obtain(passphrase_file, confirm=True, purpose=_("the broker CA key"))
            bc.make_ca_and_server_cert(out, names, secret)
            ca_note = "\n" + _(
                "  CA (pin on readers):  {der}  (PEM for the gateway: {pem})\n"
                "  CA key (encrypted):   {key} — keep it offline\n"
                "  server certificate:   {names}",
                der=out / "ca.der",
                pem=out / "ca.crt",
                key=out / "ca.key",
                names=", ".join(names),
            )
        settings = bc.BrokerSettings(
            install_dir=where,
            tls_port=tls_port,
            tls_bind=tls_bind,
            local_port=local_port,
            cafile=cafile.absolute() if cafile else None,
            certfile=certfile.absolute() if certfile else None,
            keyfile=keyfile.absolute() if keyfile else None,
            persistence_dir=persistence_dir,
            autosave_seconds=autosave_seconds,
            max_inflight=max_inflight,
            max_queued=bc.queue_depth(len(ids), taps_per_day),
            clientid_is_username=not allow_any_clientid,
            dynsec_plugin=None if acl_file_only else (dynsec_plugin or bc.find_dynsec_plugin()),
        )
        cred = bc.write_broker_folder(files, settings, ids, list(gateway_user or ["gateway"]))
    except (bc.BrokerConfigError, TrustcoreError) as exc:
        fail(str(exc), 1)
    written = _(
        "[green]broker configuration written[/green] to {out}: "
        "{n} reader(s), queue {queued} messages, in-flight {inflight}\n"
        "  passwords (once, 0600): {cred} — provision readers from it, then delete it",
        out=escape(str(out)),
        n=len(ids),
        queued=settings.max_queued,
        inflight=max_inflight,
        cred=escape(str(cred)),
    )
    group = escape(files.load_roster().shared_group)
    settings_line = "\n" + _('  gateway settings:     [mqtt] shared_group = "{group}"', group=group)
    no_plugin = _(
        "[yellow]no dynamic-security plugin: subscriptions are checked on delivery only (a reader "
        "could join the gateways' shared group); see docs/broker.md[/yellow]"
    )
    stdout_console().print(
        written + escape(ca_note) + settings_line + ("" if settings.dynsec_plugin else "\n" + no_plugin)
    )


@broker_app.command("add-reader")
def add_reader_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder written by `cbcc broker config`.")],
    reader_id: Annotated[str, typer.Argument(help="The new reader's id (its MQTT username).")],
    secrets: Annotated[
        Path | None,
        typer.Option(
            "--secrets", help="Secrets file of `cbcc gateway reader add --secrets-out`: use its password."
        ),
    ] = None,
    live: Live = None,
    admin_password_file: AdminPassword = None,
) -> None:
    """Add one reader: its password (from --secrets, else new and random), password file and ACL rewritten."""
    import json

    from rich.markup import escape

    from gateway.mqtt import broker_config as bc

    try:
        password = None
        if secrets is not None:
            try:
                doc = json.loads(secrets.read_text())
            except (OSError, ValueError) as exc:
                raise bc.BrokerConfigError(
                    _("cannot read secrets file {path}: {reason}", path=secrets, reason=exc)
                ) from None
            if doc.get("reader_id") != reader_id or not isinstance(doc.get("mqtt_password"), str):
                raise bc.BrokerConfigError(
                    _("{path} is not the secrets file of reader {id}", path=secrets, id=reader_id)
                )
            password = doc["mqtt_password"]
        files = bc.BrokerFiles(folder)
        if live is not None:
            from gateway.mqtt import dynsec_admin

            password = password or bc.generate_password()
            with dynsec_admin.connect(live, _admin_pw(admin_password_file), files) as admin:
                admin.add_reader(reader_id, password)
        cred, _added = bc.add_reader(files, reader_id, password)
    except bc.BrokerConfigError as exc:
        fail(str(exc), 1)
    stdout_console().print(
        _(
            "[green]reader {id} added[/green]; password (once, 0600): {cred}",
            id=escape(reader_id),
            cred=escape(str(cred)),
        )
        + "\n"
        + _(_LIVE if live is not None else _RELOAD)
    )


@broker_app.command("remove-reader")
def remove_reader_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder written by `cbcc broker config`.")],
    reader_id: Annotated[str, typer.Argument(help="The reader to remove.")],
    live: Live = None,
    admin_password_file: AdminPassword = None,
) -> None:
    """Remove one reader: its password line and ACL block are deleted."""
    from rich.markup import escape

    from gateway.mqtt import broker_config as bc

    try:
        files = bc.BrokerFiles(folder)
        if live is not None:  # the running broker first: a refused admin changes nothing
            from gateway.mqtt import dynsec_admin

            if reader_id not in files.load_for_change()[0].readers:
                raise bc.BrokerConfigError(
                    _("{id} is not a reader in {roster}", id=reader_id, roster=files.roster)
                )
            with dynsec_admin.connect(live, _admin_pw(admin_password_file), files) as admin:
                admin.remove_reader(reader_id)
        bc.remove_reader(files, reader_id)
    except bc.BrokerConfigError as exc:
        fail(str(exc), 1)
    said = _(_LIVE if live is not None else _RELOAD)
    stdout_console().print(_("[green]reader {id} removed[/green].", id=escape(reader_id)) + "\n" + said)


def _admin_pw(path: Path | None) -> Path:
    from gateway.mqtt import broker_config as bc

    if path is None:
        raise bc.BrokerConfigError(_("--live needs --admin-password-file (the cbcc-admin password)"))
    return path
