"""``cbcc gateway ...``: set up, migrate, run and administer a gateway.

Heavy imports (SQLAlchemy, FastAPI, paho) happen inside the commands so ``cbcc --help`` stays fast.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cbcc.common import PassphraseFile, cli_errors, stdout_console
from messages import N_, _
from messages.api import TOKEN_STATE

READER_COLUMNS = (N_("id"), N_("site"), N_("door"), N_("role"), N_("online"), N_("last seen"), N_("firmware"),
                  N_("config"))  # fmt: skip
TOKEN_COLUMNS = (N_("id"), N_("name"), N_("role"), N_("unit"), N_("state"), N_("created"), N_("last used"))


def state_word(state: str) -> str:
    return _(TOKEN_STATE[state]) if state in TOKEN_STATE else state


if TYPE_CHECKING:
    from gateway.settings import Settings

gateway_app = typer.Typer(no_args_is_help=True, help="The gateway: ingest, reader fleet, REST API.")
reader_app = typer.Typer(no_args_is_help=True, help="Register and list readers.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (roles: admin, facility, hr, auditor).")
door_app = typer.Typer(no_args_is_help=True, help="Doors: site, building, unit.")
gateway_app.add_typer(reader_app, name="reader")
gateway_app.add_typer(token_app, name="token")
gateway_app.add_typer(door_app, name="door")

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Settings file (TOML); CBCC_* variables override it.", dir_okay=False
    ),
]


def _settings(config: Path | None) -> Settings:
    from cbcc.errors import CbccError
    from gateway.settings import load_settings

    if config is not None and not config.is_file():
        raise CbccError(_("settings file {path} does not exist", path=config))
    try:
        return load_settings(config)
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise CbccError(_("bad settings: {error}", error=exc)) from None


@gateway_app.command("init")
def init(
    config: ConfigFile = None,
    passphrase_file: PassphraseFile = None,
    admin_name: Annotated[str, typer.Option(help="Name of the first admin token.")] = "admin",
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Name or IP readers dial for the embedded broker (repeatable)."),
    ] = None,
) -> None:
    """First start: data folder, master key, configuration signing key, database, first admin token."""
    with cli_errors():
        from gateway import bootstrap

        settings = _settings(config)
        out = bootstrap.init(settings, passphrase_file, admin_name, server_name or None)
        con = stdout_console()
        for line in out.lines:
            con.print(line)
        if out.admin_token:
            label = _("Admin API token (shown once, keep it safe):")
            con.print(f"[bold]{label}[/bold]")
            con.print(out.admin_token, markup=False)


@gateway_app.command("migrate")
def migrate(config: ConfigFile = None) -> None:
    """Bring the database schema up to date (run before every start; safe to repeat)."""
    with cli_errors():
        from gateway import db

        settings = _settings(config)
        db.migrate(settings.database.url)
        stdout_console().print(_("[green]database schema is current[/green]"))


@gateway_app.command("run")
def run(
    config: ConfigFile = None,
    host: Annotated[str | None, typer.Option(help="HTTP listen address (overrides settings).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (overrides settings).")] = None,
    mqtt_port: Annotated[
        int | None, typer.Option("--mqtt-port", help="Embedded broker's plain port for the gateway itself.")
    ] = None,
    mqtt_tls_port: Annotated[
        int | None, typer.Option("--mqtt-tls-port", help="Embedded broker's TLS port for readers.")
    ] = None,
) -> None:
    """Run the gateway: MQTT ingest and fleet, HTTP API (and the embedded broker if configured).

    Stops cleanly on Ctrl-C or SIGTERM. Logs are JSON lines on stderr (cbcc --debug: everything)."""
    with cli_errors():
        from gateway import preflight, service

        settings = _settings(config)
        if host is not None:
            settings.http.host = host
        if port is not None:
            settings.http.port = port
        if mqtt_port is not None:
            settings.mqtt.port = mqtt_port
        if mqtt_tls_port is not None:
            settings.mqtt.embedded_tls_port = mqtt_tls_port
        preflight.check_ports(settings)
        if service.run(settings) == signal.SIGINT:
            raise KeyboardInterrupt  # stopped cleanly; Ctrl-C exits 130 with one line (cbcc.app.main)


@gateway_app.command("purge")
def purge(config: ConfigFile = None) -> None:
    """Delete events, quarantined messages and audit entries past their retention period now."""
    with cli_errors():
        from gateway import db, retention

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        report = retention.purge(engine, settings.retention)
        stdout_console().print(
            _(
                "purged {events} events, {quarantine} quarantined messages, {audit} audit entries",
                events=report.events,
                quarantine=report.quarantine,
                audit=report.audit,
            )
        )


@reader_app.command("add")
def reader_add(
    reader_id: Annotated[str, typer.Argument(help="Reader id = MQTT username, e.g. hn-snv-t3-p301.")],
    config: ConfigFile = None,
    name: Annotated[str, typer.Option(help="Human name, e.g. 'Cửa chính tầng 3'.")] = "",
    site: Annotated[str, typer.Option(help="Site code.")] = "",
    unit: Annotated[str, typer.Option(help="Unit code (for role scoping).")] = "",
    door: Annotated[str | None, typer.Option(help="Door id (must exist).")] = None,
    role: Annotated[str, typer.Option(help="door | attendance | both")] = "door",
    secrets_out: Annotated[
        Path | None,
        typer.Option(
            "--secrets-out",
            help="Write the reader's MAC key and MQTT "
            "password to this new file (mode 0600) for provisioning.",
        ),
    ] = None,
) -> None:
    """Register a reader: makes its event MAC key and MQTT password (shown once)."""
    with cli_errors():
        import json

        from sqlmodel import Session

        from cbcc.errors import CbccError
        from gateway import audit, db, registry
        from gateway.secretbox import SecretBox
        from trustcore import keys

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        box = SecretBox.from_file(settings.resolved_master_key_file())
        with Session(engine) as s:
            try:
                new = registry.register(
                    s, box, reader_id, name=name, site=site, unit=unit, door_id=door, role=role
                )
            except registry.RegistryError as exc:
                raise CbccError(str(exc)) from None
            audit.record(s, "cli", "reader.register", reader_id, role="admin", site=site, unit=unit)
            s.commit()
        secret = {"reader_id": reader_id, "mac_key": new.mac_key.hex(), "mqtt_password": new.mqtt_password}
        _teach_broker(settings, reader_id, new.mqtt_password)
        if secrets_out is not None:
            keys.write_new_file(secrets_out, (json.dumps(secret) + "\n").encode(), private=True)
            said = _("reader {rid} registered; secrets written to {path}")
            stdout_console().print(said.format(rid=reader_id, path=secrets_out))
        else:
            stdout_console().print(json.dumps(secret), markup=False)


def _teach_broker(settings: Settings, reader_id: str, password: str) -> None:
    """The broker learns the password as it does for the API (``gateway.service.teach_broker``)."""
    from cbcc.common import warn
    from gateway.mqtt import broker_config
    from gateway.service import teach_broker

    try:
        teach_broker(settings, reader_id, password)
    except broker_config.BrokerConfigError as exc:
        warn(
            _(
                "the broker was not updated ({reason}); add the reader with "
                "`cbcc broker add-reader FOLDER {id} --secrets FILE --live HOST:PORT`",
                reason=exc,
                id=reader_id,
            )
        )


@reader_app.command("list")
def reader_list(config: ConfigFile = None) -> None:
    """List registered readers with their last known state."""
    with cli_errors():
        from rich.table import Table
        from sqlmodel import Session, select

        from gateway import db
        from gateway.models import Reader

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        table = Table(*map(_, READER_COLUMNS))
        with Session(engine) as s:
            for r in s.exec(select(Reader).order_by(Reader.id)):
                table.add_row(
                    r.id,
                    r.site,
                    r.door_id or "",
                    r.role,
                    _("yes") if r.online else _("no"),
                    str(db.utc(r.last_seen) or ""),
                    r.firmware or "",
                    f"{r.config_seq}/{r.pushed_config_seq}",
                )
        stdout_console().print(table)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="What the token is for.")],
    role: Annotated[str, typer.Option(help="admin | facility | hr | auditor")],
    config: ConfigFile = None,
    unit: Annotated[str, typer.Option(help="Unit-code prefix the token is limited to ('' = all).")] = "",
) -> None:
    """Create an API token (printed once)."""
    with cli_errors():
        from sqlmodel import Session

        from cbcc.errors import CbccError
        from gateway import audit, auth, db

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        with Session(engine) as s:
            try:
                tok, plain = auth.create_token(s, name, role, unit, "cli")
            except ValueError as exc:
                raise CbccError(str(exc)) from None
            audit.record(s, "cli", "token.create", tok.id, role="admin", token_role=role, unit=unit)
            s.commit()
        stdout_console().print(plain, markup=False)


def _when(t: object) -> str:
    from datetime import datetime

    return t.strftime("%Y-%m-%d %H:%M:%SZ") if isinstance(t, datetime) else ""


@token_app.command("list")
def token_list(
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token.")] = False,
) -> None:
    """List API tokens (never their secrets): id, name, role, unit scope, state, last use."""
    with cli_errors():
        import json

        from rich.table import Table
        from sqlmodel import Session

        from gateway import auth, db

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        with Session(engine) as s:
            rows = [auth.describe(t) for t in auth.list_tokens(s)]
        if as_json:
            for row in rows:
                print(json.dumps(row, default=str, ensure_ascii=False))
            return
        table = Table(*map(_, TOKEN_COLUMNS))
        for row in rows:
            state = state_word(row["state"])
            table.add_row(row["id"], row["name"], row["role"], row["unit_scope"] or "*", state,
                          _when(row["created_at"]), _when(row["last_used_at"]))  # fmt: skip
        stdout_console().print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (the part after cbcc_, as `token list` shows).")],
    config: ConfigFile = None,
) -> None:
    """Revoke an API token at once (revoking twice keeps the first time)."""
    with cli_errors():
        from sqlmodel import Session

        from cbcc.errors import CbccError
        from gateway import audit, auth, db

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        with Session(engine) as s:
            try:
                tok = auth.revoke_token(s, token_id)
            except auth.TokenError as exc:
                raise CbccError(str(exc)) from None
            audit.record(s, "cli", "token.revoke", f"token:{tok.id}", role="admin", name=tok.name,
                         token_role=tok.role)  # fmt: skip
            s.commit()
            revoked = db.utc(tok.revoked_at)
        said = _("token {id} revoked at {when}", id=token_id, when=revoked)
        stdout_console().print(said, markup=False)


# ---- doors: the REST API's own handlers and schemas (one rule for every field) -------------------


def _door_call(config: Path | None, fn_name: str, *args: object) -> object:
    """Run ``gateway.api.doors.<fn_name>`` as the CLI (an unscoped admin, audited as ``cli``):
    the API's validation (``DoorCreate`` / ``DoorUpdate``), scope and audit entries."""
    from dataclasses import dataclass

    from pydantic import ValidationError
    from sqlmodel import Session

    from cbcc.errors import CbccError
    from gateway import db
    from gateway.api import doors as api_doors
    from gateway.api.errors import ApiError
    from gateway.auth import Principal

    @dataclass(frozen=True)
    class CliPrincipal(Principal):
        @property
        def actor(self) -> str:
            return "cli"

    settings = _settings(config)
    db.migrate(settings.database.url)
    engine = db.make_engine(settings.database.url)
    fn = getattr(api_doors, fn_name)
    try:
        with Session(engine) as s:
            return fn(*args, session=s, principal=CliPrincipal("cli", "cli", "admin"))
    except ValidationError as exc:
        raise CbccError("; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from None
    except ApiError as exc:
        from messages import lang

        raise CbccError(exc.text(lang())) from None


def _door_body(model: str, **fields: object) -> object:
    from pydantic import ValidationError

    from cbcc.errors import CbccError
    from gateway.api import schemas

    try:
        return getattr(schemas, model).model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise CbccError("; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from None


def _door_line(d: object) -> str:
    return "\t".join(str(getattr(d, f)) for f in ("id", "site", "building", "unit", "name"))


@door_app.command("add")
def door_add(
    door_id: Annotated[str, typer.Argument(metavar="ID", help="Door id: letters, digits, . _ -")],
    name: Annotated[str, typer.Option("--name", help="Door name, e.g. 'Cửa chính tòa A'.")],
    site: Annotated[str, typer.Option("--site", help="Site code.")] = "",
    building: Annotated[
        str, typer.Option("--building", help="Building within the site (same rule as a site code).")
    ] = "",
    unit: Annotated[str, typer.Option("--unit", help="Unit code (role scoping).")] = "",
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    config: ConfigFile = None,
) -> None:
    """Add a door (the same rules as POST /api/v1/doors)."""
    with cli_errors():
        body = _door_body("DoorCreate", id=door_id, name=name, site=site, building=building, unit=unit,
                          description=description)  # fmt: skip
        typer.echo(_door_line(_door_call(config, "create_door", body)))


@door_app.command("set")
def door_set(
    door_id: Annotated[str, typer.Argument(metavar="ID", help="Door id.")],
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="New site code.")] = None,
    building: Annotated[str | None, typer.Option("--building", help="New building ('' = none).")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="New unit code.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="New free text.")] = None,
    config: ConfigFile = None,
) -> None:
    """Change a door's fields (the same rules as PATCH /api/v1/doors/ID)."""
    with cli_errors():
        body = _door_body("DoorUpdate", name=name, site=site, building=building, unit=unit,
                          description=description)  # fmt: skip
        typer.echo(_door_line(_door_call(config, "update_door", door_id, body)))


@door_app.command("list")
def door_list(config: ConfigFile = None) -> None:
    """List doors: id, site, building, unit, name (tab-separated)."""
    with cli_errors():
        from sqlmodel import Session, col, select

        from gateway import db
        from gateway.models import Door

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        with Session(engine) as s:
            for d in s.exec(select(Door).order_by(col(Door.site), col(Door.building), col(Door.id))):
                typer.echo(_door_line(d))
