"""``cbcc reader setup``: one reader from a bare ESP32 to a board that boots into the door loop.

Steps, each recorded in ``WORK/setup.json`` when it succeeded, so a second run after a failure
at any step continues where the first stopped and a run on a finished reader changes nothing:

1. **register** the reader in the gateway's database (its MAC key and MQTT password go to
   ``WORK/secrets.json``, 0600); with the embedded broker, its password hash into the data
   folder; with ``--broker-folder``, into the Mosquitto folder (and, with ``--broker-live``, into
   the running broker through the dynamic-security API: no restart);
2. **flash** MicroPython with esptool (only with ``--image``; skipped when it is on the board);
3. **deploy** the firmware compiled for xtensawin (``cbcc reader deploy``), checked by SHA-256 on
   the board;
4. **provision**: the reader's own tree (``cbcc reader provision``) in ``WORK/tree``;
5. **copy** that tree to the board and compare the board's SHA-256 with ``MANIFEST``; then reset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cbcc.common import PassphraseFile, cli_errors, stdout_console
from cbcc.reader import Board, Network, Role
from messages import N_, _

STEPS = ("register", "flash", "deploy", "provision", "copy")
STATE = "setup.json"

_TAKEN = N_(
    "reader {id} is already registered at the gateway, and this --work folder holds no secrets for "
    "it: choose a new reader id (ids are never reused)"
)


class SetupState:
    """``WORK/setup.json``: which steps are done, for which reader (written atomically)."""

    def __init__(self, work: Path, reader_id: str) -> None:
        from cbcc.errors import CbccError

        self.path = work / STATE
        self.doc: dict[str, Any] = {"version": 1, "reader_id": reader_id, "done": {}}
        if self.path.exists():
            doc = json.loads(self.path.read_text())
            if doc.get("reader_id") != reader_id:
                raise CbccError(
                    _(
                        "{work} holds the set-up of reader {other}, not {id}: use another --work folder",
                        work=work,
                        other=doc.get("reader_id"),
                        id=reader_id,
                    )
                )
            self.doc = doc

    def done(self, step: str) -> bool:
        return step in self.doc["done"]

    def mark(self, step: str, **info: Any) -> None:
        from trustcore import files

        self.doc["done"][step] = info
        files.write_atomic(self.path, (json.dumps(self.doc, indent=1) + "\n").encode(), 0o600)


def _mpremote(port: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "mpremote", "connect", port, *args]


def register(reader_app: typer.Typer) -> None:
    @reader_app.command("setup")
    def setup(
        reader_id: Annotated[str, typer.Option("--reader-id", help="The new reader's id (MQTT username).")],
        port: Annotated[str, typer.Option("--port", help="The ESP32's serial port, e.g. /dev/ttyUSB0.")],
        work: Annotated[
            Path, typer.Option("--work", help="Folder for this reader's set-up (state, secrets, tree).")
        ],
        broker_host: Annotated[str, typer.Option("--broker-host", help="MQTT broker host readers dial.")],
        root_key: Annotated[Path, typer.Option("--root-key", help="Pinned root public key (root.cose_key).")],
        card_keys_path: Annotated[
            Path, typer.Option("--card-keys", help="Encrypted card master keys (`cbcc keys card-keys init`).")
        ],
        board: Annotated[Board, typer.Option("--board", help="Reader board (hardware/pinmap.json).")],
        network: Annotated[Network, typer.Option("--network", help="wifi (DevKitC) or lan (POE-ISO).")],
        config: Annotated[
            Path | None, typer.Option("--config", "-c", help="Gateway settings file (TOML).", dir_okay=False)
        ] = None,
        gateway_url: Annotated[
            str | None,
            typer.Option("--gateway-url", help="Register through this gateway's API (a bench elsewhere)."),
        ] = None,
        token_file: Annotated[
            Path | None,
            typer.Option("--token-file", help="File with an API token allowed to register readers."),
        ] = None,
        image: Annotated[
            Path | None,
            typer.Option("--image", help="MicroPython .bin to flash first (omit: it is on the board)."),
        ] = None,
        sha256: Annotated[str | None, typer.Option("--sha256", help="Expected SHA-256 of --image.")] = None,
        broker_ca: Annotated[
            Path | None,
            typer.Option("--broker-ca", help="Broker CA (default: the gateway's broker/ca.der)."),
        ] = None,
        config_key: Annotated[
            Path | None,
            typer.Option("--config-key", help="Configuration public key (default: the gateway's)."),
        ] = None,
        broker_port: Annotated[int, typer.Option("--broker-port", help="MQTT over TLS port.")] = 8883,
        ssid: Annotated[str | None, typer.Option("--ssid", help="Wi-Fi network name.")] = None,
        wifi_password_file: Annotated[
            Path | None,
            typer.Option("--wifi-password-file", help="File whose first line is the Wi-Fi password."),
        ] = None,
        role: Annotated[Role, typer.Option("--role", help="door, attendance or both.")] = Role.DOOR,
        name: Annotated[str, typer.Option("--name", help="Human name, e.g. 'Cửa chính tầng 3'.")] = "",
        site: Annotated[str, typer.Option("--site", help="Site code.")] = "",
        unit: Annotated[str, typer.Option("--unit", help="Unit code.")] = "",
        door: Annotated[str | None, typer.Option("--door", help="Door id (must exist).")] = None,
        broker_folder: Annotated[
            Path | None,
            typer.Option("--broker-folder", help="Mosquitto folder of `cbcc broker config`: add the reader."),
        ] = None,
        broker_live: Annotated[
            str | None,
            typer.Option("--broker-live", help="HOST:PORT of that Mosquitto: apply the change live."),
        ] = None,
        admin_password_file: Annotated[
            Path | None,
            typer.Option("--admin-password-file", help="File with the broker admin's password."),
        ] = None,
        passphrase_file: PassphraseFile = None,
    ) -> None:
        """Register, flash, deploy, provision and copy one reader in one resumable flow."""
        with cli_errors():
            from cbcc import device as rd
            from cbcc.errors import CbccError
            from provisioning import reader_provision as rp

            con = stdout_console()
            rp.check_reader_id(reader_id)
            for label, p in (("--root-key", root_key), ("--card-keys", card_keys_path),
                             ("--broker-ca", broker_ca), ("--config-key", config_key),
                             ("--wifi-password-file", wifi_password_file), ("--image", image),
                             ("--admin-password-file", admin_password_file)):  # fmt: skip
                if p is not None and not p.is_file():
                    raise CbccError(_("{option} {path} does not exist", option=label, path=p))
            if broker_live is not None and (broker_folder is None or admin_password_file is None):
                raise CbccError(_("--broker-live needs --broker-folder and --admin-password-file"))
            if gateway_url is not None and (token_file is None or broker_ca is None or config_key is None):
                raise CbccError(_("--gateway-url needs --token-file, --broker-ca and --config-key "
                                  "(the gateway's files are not on this machine)"))  # fmt: skip
            if token_file is not None and not token_file.is_file():
                raise CbccError(_("{option} {path} does not exist", option="--token-file", path=token_file))
            digest = rd.check_image(image, sha256) if image is not None else None
            settings = _settings(config) if gateway_url is None else None
            work.mkdir(parents=True, exist_ok=True, mode=0o700)
            state = SetupState(work, reader_id)
            secrets_path = work / "secrets.json"

            def step(n: int, what: str, detail: str = "") -> None:
                con.print(f"[bold][{n}/{len(STEPS)}][/bold] {what}" + (f" — {detail}" if detail else ""))

            # 1. register
            if state.done("register"):
                step(1, _("register"), _("done before"))
            else:
                step(1, _("register"), _("reader {rid} at the gateway").format(rid=reader_id))
                fields = dict(name=name, site=site, unit=unit, door_id=door, role=role.value)
                if gateway_url is not None and token_file is not None:
                    password = _register_api(gateway_url, token_file, reader_id, secrets_path, fields)
                else:
                    password = _register(settings, reader_id, secrets_path, **fields)
                if broker_folder is not None:
                    _broker_add(broker_folder, reader_id, password, broker_live, admin_password_file)
                state.mark("register", broker_folder=str(broker_folder) if broker_folder else None)
            # 2. flash
            if state.done("flash"):
                step(2, _("flash"), _("done before"))
            elif image is None:
                step(2, _("flash"), _("skipped (no --image: MicroPython is on the board)"))
            else:
                step(2, _("flash"), _("{name} with esptool").format(name=image.name))
                rd.run_all(rd.esptool_commands(port, image), "esptool")
                state.mark("flash", image=image.name, sha256=digest)
            # 3. deploy
            fw = work / "fw"
            if state.done("deploy"):
                step(3, _("deploy"), _("done before"))
            else:
                step(3, _("deploy"), _("firmware compiled for xtensawin, copied with mpremote"))
                compiled = rd.compile_firmware(fw)
                out = rd.run_all(rd.mpremote_copy_commands(port, compiled, reset=False), "mpremote")
                rd.check_deployed(compiled, out)
                state.mark("deploy", files=len(compiled.files))
            # 4. provision
            tree = work / "tree"
            if state.done("provision") and (tree / rp.MANIFEST).exists():
                rp.verify_tree(tree)
                step(4, _("provision"), _("done before"))
            else:
                step(4, _("provision"), _("the reader's files in {path}").format(path=tree))
                if tree.exists() and not (tree / rp.MANIFEST).exists():
                    raise CbccError(
                        _("{path} exists without a MANIFEST: move it away and run again", path=tree)
                    )
                from cbcc.reader import provision

                datadir = settings.data_dir if settings is not None else Path(".")
                provision(
                    reader_id=reader_id, secrets=secrets_path, broker_host=broker_host,
                    broker_ca=broker_ca or datadir / "broker" / "ca.der", root_key=root_key,
                    config_key=config_key or datadir / "config.cose_key", card_keys_path=card_keys_path,
                    board=board, network=network, out=tree, broker_port=broker_port,
                    broker_server_name=None, ssid=ssid, wifi_password_file=wifi_password_file,
                    role=role, size_hint=512, firmware=None, pinmap=None,
                    passphrase_file=passphrase_file, flash=None, as_json=False,
                )  # fmt: skip
                state.mark("provision")
            # 5. copy
            if state.done("copy"):
                step(5, _("copy"), _("done before"))
            else:
                step(5, _("copy"), _("the reader's files to the board, checked against MANIFEST"))
                _copy_tree(tree, port)
                rd.run_all([_mpremote(port, "reset")], "mpremote")
                state.mark("copy")
            said = _("reader {rid} is set up: it boots into the door loop and should show online "
                     "at the gateway within a minute.")
            con.print(f"[green]{said.format(rid=reader_id)}[/green]")


def _settings(config: Path | None) -> Any:
    from cbcc.gateway import _settings as gateway_settings

    return gateway_settings(config)


def _register(settings: Any, reader_id: str, secrets_path: Path, **kw: Any) -> str:
    """Register at the gateway (database), write the secrets, return the MQTT password. A reader
    registered before with these secrets is taken as is; one registered elsewhere is refused."""
    from sqlmodel import Session

    from cbcc.errors import CbccError
    from gateway import audit, db, registry
    from gateway.models import Reader
    from gateway.secretbox import SecretBox
    from trustcore import keys

    engine = db.make_engine(settings.database.url)
    box = SecretBox.from_file(settings.resolved_master_key_file())
    with Session(engine) as s:
        existing = s.get(Reader, reader_id)
        if existing is not None:
            if secrets_path.exists():
                doc = json.loads(secrets_path.read_text())
                if doc.get("reader_id") == reader_id and bytes.fromhex(doc["mac_key"]) == box.open(
                    existing.mac_key_enc, registry.key_context(reader_id)
                ):
                    password = str(doc["mqtt_password"])
                    _teach_broker(settings, reader_id, password)
                    return password
            raise CbccError(_(_TAKEN, id=reader_id))
        if secrets_path.exists():
            secrets_path.unlink()  # from a run whose registration never committed
        try:
            new = registry.register(s, box, reader_id, **kw)
        except registry.RegistryError as exc:
            raise CbccError(str(exc)) from None
        secret = {"reader_id": reader_id, "mac_key": new.mac_key.hex(), "mqtt_password": new.mqtt_password}
        keys.write_new_file(secrets_path, (json.dumps(secret) + "\n").encode(), private=True)
        audit.record(s, "cli", "reader.register", reader_id, role="admin", site=kw["site"], unit=kw["unit"])
        s.commit()
    _teach_broker(settings, reader_id, new.mqtt_password)
    return new.mqtt_password


def _register_api(url: str, token_file: Path, reader_id: str, secrets_path: Path,
                  fields: dict[str, Any]) -> str:  # fmt: skip
    """Register through ``POST /api/v1/readers`` (the gateway also tells its broker). A reader
    the gateway knows is taken as is only when this --work folder holds its secrets."""
    import httpx

    from cbcc.errors import CbccError
    from trustcore import keys

    token = (token_file.read_text(encoding="utf-8").split() or [""])[0]
    api = httpx.Client(base_url=url.rstrip("/") + "/api/v1",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    try:
        with api:
            if secrets_path.exists():
                doc = json.loads(secrets_path.read_text())
                known = api.get(f"/readers/{reader_id}")
                if known.status_code == 200 and doc.get("reader_id") == reader_id:
                    return str(doc["mqtt_password"])
                if known.status_code == 404:
                    secrets_path.unlink()  # from a run whose registration never reached the gateway
            r = api.post("/readers", json={"id": reader_id, **fields})
    except httpx.HTTPError as exc:
        raise CbccError(
            _("cannot reach the gateway at {url} ({reason}): check --gateway-url", url=url, reason=exc)
        ) from None
    if r.status_code == 409:
        raise CbccError(_(_TAKEN, id=reader_id))
    if r.status_code != 201:
        raise CbccError(
            _(
                "the gateway refused the registration ({status}): {detail}; check the --token-file "
                "token (role admin)",
                status=r.status_code,
                detail=r.text[:300],
            )
        )
    body = r.json()
    secret = {"reader_id": reader_id, "mac_key": body["mac_key_hex"], "mqtt_password": body["mqtt_password"]}
    keys.write_new_file(secrets_path, (json.dumps(secret) + "\n").encode(), private=True)
    return str(body["mqtt_password"])


def _teach_broker(settings: Any, reader_id: str, password: str) -> None:
    """The broker learns the password as it does for the API (``gateway.service.teach_broker``);
    here a broker that could not be told stops the set-up (the reader could not log in)."""
    from cbcc.errors import CbccError
    from gateway.mqtt import broker_config as bc
    from gateway.service import teach_broker

    try:
        teach_broker(settings, reader_id, password)
    except bc.BrokerConfigError as exc:
        raise CbccError(
            _(
                "reader {id} is registered, but the broker was not updated: {reason}. Check [mqtt] "
                "admin_password_file, host and port in the gateway settings, or add the reader with "
                "`cbcc broker add-reader --live`",
                id=reader_id,
                reason=exc,
            )
        ) from None


def _broker_add(folder: Path, reader_id: str, password: str, live: str | None, admin_pw: Path | None) -> None:
    from cbcc.errors import CbccError
    from gateway.mqtt import broker_config as bc

    files = bc.BrokerFiles(folder)
    try:
        stored = files.load_hashes().get(reader_id)
        if stored is None:
            if live is not None and admin_pw is not None:
                from gateway.mqtt import dynsec_admin

                with dynsec_admin.connect(live, admin_pw, files) as admin:
                    admin.add_reader(reader_id, password)
            bc.add_reader(files, reader_id, password)
        elif not bc.verify_password(password, stored):
            raise CbccError(
                _("{folder} already holds reader {id} with another password", folder=folder, id=reader_id)
            )
    except bc.BrokerConfigError as exc:
        raise CbccError(str(exc)) from None


def _copy_tree(tree: Path, port: str) -> None:
    from cbcc.errors import CbccError
    from provisioning import reader_provision as rp

    expected = rp.verify_tree(tree)
    output = ""
    for cmd in rp.mpremote_commands(tree, port):
        argv = [sys.executable, "-m", *cmd]
        p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300,  # noqa: S603 — argv list: mpremote, the tree's own paths; no shell
                           env={**os.environ})  # fmt: skip
        if p.returncode != 0:
            detail = (p.stderr or p.stdout).strip()[-300:]
            raise CbccError(
                _(
                    "{what} failed (check --port and the board's USB cable): {detail}",
                    what="mpremote",
                    detail=detail,
                )
            )
        output = p.stdout
    device = rp.parse_device_hashes(output)
    bad = [p for p in rp.DEVICE_FILES if device.get(p) != expected.get(p)]
    if bad:
        raise CbccError(
            _(
                "the reader's copy differs from {manifest}: {files}; run the copy again",
                manifest=tree / rp.MANIFEST,
                files=", ".join(bad),
            )
        )
