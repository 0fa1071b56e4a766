"""``cbcc national-sim`` (the national database simulator) and ``cbcc sync ...`` (national card
database sync, file import, local locks pushed upstream). Register with::

    app.add_typer(national_sim_app, name="national-sim")
    app.add_typer(sync_app, name="sync")
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import cli_errors, stdout_console
from cbcc.gateway import ConfigFile, _settings
from messages import _

national_sim_app = typer.Typer(help="Simulator of the national CBCCVC database's change feed (tests, demos).")
sync_app = typer.Typer(no_args_is_help=True, help="National card database: sync, file import, local locks.")


@national_sim_app.callback(invoke_without_command=True)
def national_sim(
    seed: Annotated[int, typer.Option(help="Everything is generated from this seed.")] = 1,
    records: Annotated[int, typer.Option(help="People enrolled (national: 2,073,460).")] = 2_073_460,
    history: Annotated[int, typer.Option(help="Lifecycle changes after enrolment.")] = 100_000,
    reveal: Annotated[
        int | None,
        typer.Option(
            help="History changes visible at start (default all); POST /sim/advance?n= reveals more."
        ),
    ] = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8750,
    token: Annotated[
        str | None, typer.Option(help="Require this bearer token.", envvar="CBCC_SIM_TOKEN")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    client_ca: Annotated[Path | None, typer.Option(help="Require client certificates from this CA.")] = None,
) -> None:
    """Serve GET /v1/changes, POST /v1/cards/{serial}/actions, GET /v1/status."""
    from simulators.national import NationalSim, serve

    con = stdout_console()
    sim = NationalSim(seed, records, history, reveal)
    con.print(_("national simulator: {records} records, {issuers} issuers, head {head}, {url}",
                records=f"{records:,}", issuers=len(sim.u.issuers), head=f"{sim.head:,}",
                url=f"http{'s' if tls_cert else ''}://{host}:{port}/v1/changes"))  # fmt: skip
    serve(sim, host, port, token, str(tls_cert) if tls_cert else None, str(tls_key) if tls_key else None,
          str(client_ca) if client_ca else None)  # fmt: skip


def _progress() -> tuple[object, object]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    )
    return prog, prog.add_task(_("sync"), total=None)


@sync_app.command("national")
def sync_national(
    url: Annotated[
        str, typer.Option(help="Base URL of the national feed, e.g. https://ndxp.example/cbccvc.")
    ],
    config: ConfigFile = None,
    token: Annotated[str | None, typer.Option(help="Bearer token.", envvar="CBCC_NATIONAL_TOKEN")] = None,
    cert: Annotated[Path | None, typer.Option(help="Client certificate (PEM) for mutual TLS.")] = None,
    key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    ca: Annotated[Path | None, typer.Option(help="CA bundle that signs the national server.")] = None,
    page_size: Annotated[int, typer.Option(help="Changes per page.")] = 10_000,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    snapshot: Annotated[
        bool, typer.Option(help="First load from the service's snapshot when it offers one.")
    ] = True,
) -> None:
    """Apply every change after the stored cursor (the first time: a snapshot, then the changes
    after it); safe to interrupt."""
    with cli_errors():
        from rich.progress import Progress

        from gateway import db
        from gateway.national.feed import HttpChangeFeed
        from gateway.national.sync import SyncReport, sync_feed

        settings = _settings(config)
        db.migrate(settings.database.url)
        engine = db.make_engine(settings.database.url)
        feed = HttpChangeFeed(url, token=token, cert=cert, key=key, ca=ca, page_size=page_size)
        prog, task = _progress()
        assert isinstance(prog, Progress)  # noqa: S101 — type narrowing for mypy, not input validation

        def show(r: SyncReport) -> None:
            prog.update(task, completed=int(r.cursor or 0), total=r.head)  # type: ignore[arg-type]

        try:
            if quiet:
                report = sync_feed(engine, feed, snapshot=snapshot)
            else:
                with prog:
                    report = sync_feed(engine, feed, progress=show, snapshot=snapshot)
        finally:
            feed.close()
        if report.snapshot is not None:
            label = _("snapshot")
            said = _("as of change {n}: {staff} staff, {cards} cards", n=f"{report.snapshot:,}",
                     staff=f"{report.snapshot_staff:,}", cards=f"{report.snapshot_cards:,}")  # fmt: skip
            stdout_console().print(f"[green]{label}[/green] {said}")
        label = _("synced")
        said = _("{n} changes in {pages} pages ({dup} already applied), cursor {cursor}, {rev} revocation "
                 "changes, {s} s", n=f"{report.applied:,}", pages=report.pages, dup=report.duplicates,
                 cursor=report.cursor or "-", rev=f"{report.revocation_changed:,}",
                 s=f"{report.seconds:.1f}")  # fmt: skip
        stdout_console().print(f"[green]{label}[/green] {said}")


@sync_app.command("import")
def sync_import(
    file: Annotated[
        Path, typer.Argument(help="CSV or XLSX file (docs/national-sync.md: columns).", dir_okay=False)
    ],
    config: ConfigFile = None,
    allow_partial: Annotated[bool, typer.Option(help="Apply the good rows even if some are bad.")] = False,
) -> None:
    """Import staff and cards from a file; bad rows are listed with their row numbers."""
    with cli_errors():
        from cbcc.errors import CbccError
        from gateway import db
        from gateway.national.fileimport import import_file

        if not file.is_file():
            raise CbccError(_("{path} does not exist", path=file))
        settings = _settings(config)
        db.migrate(settings.database.url)
        engine = db.make_engine(settings.database.url)
        report = import_file(engine, file, allow_partial=allow_partial)
        con = stdout_console()
        for line in report.errors:
            con.print(f"[red]{line}[/red]", markup=True, highlight=False)
        if report.bad and not allow_partial:
            raise CbccError(
                _("{bad} bad row(s) of {rows}: nothing imported", bad=report.bad, rows=report.rows)
            )
        label = _("imported")
        said = _("{n} rows ({dup} already imported, {bad} bad skipped)", n=f"{report.applied:,}",
                 dup=report.duplicates, bad=report.bad)  # fmt: skip
        con.print(f"[green]{label}[/green] {said}")


@sync_app.command("lock")
def sync_lock(
    serial: Annotated[int, typer.Argument(help="Card serial.")],
    config: ConfigFile = None,
    actor: Annotated[str, typer.Option(help="Who locks it (audit).")] = "cli",
    reason: Annotated[str, typer.Option(help="Why, e.g. 'báo mất thẻ'.")] = "",
) -> None:
    """Lock a card here at once (lost card); it is pushed upstream by ``cbcc sync push``."""
    with cli_errors():
        from gateway import db
        from gateway.national.local import lock_card

        settings = _settings(config)
        change = lock_card(db.make_engine(settings.database.url), serial, actor=actor, reason=reason)
        stdout_console().print(
            _(
                "[green]card {serial} locked[/green] ({change}, pending upstream)",
                serial=serial,
                change=change,
            )
        )


@sync_app.command("push")
def sync_push(
    url: Annotated[str, typer.Option(help="Base URL of the national service.")],
    config: ConfigFile = None,
    token: Annotated[str | None, typer.Option(help="Bearer token.", envvar="CBCC_NATIONAL_TOKEN")] = None,
    cert: Annotated[Path | None, typer.Option(help="Client certificate (PEM) for mutual TLS.")] = None,
    key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    ca: Annotated[Path | None, typer.Option(help="CA bundle that signs the national server.")] = None,
) -> None:
    """Push local locks upstream; a card's pending flag clears only when the service accepted it."""
    with cli_errors():
        from cbcc.errors import CbccError
        from gateway import db
        from gateway.national.feed import national_client
        from gateway.national.local import push_pending

        settings = _settings(config)
        with national_client(url, token=token, cert=cert, key=key, ca=ca, timeout=30) as client:
            report = push_pending(client, db.make_engine(settings.database.url))
        con = stdout_console()
        con.print(_("pushed {n} local action(s)", n=len(report.pushed)))
        if report.failed:
            for serial, why in report.failed.items():
                con.print("[red]" + _("card {serial}: {reason}", serial=serial, reason=why) + "[/red]")
            raise CbccError(_("{n} local action(s) still pending", n=len(report.failed)))


@sync_app.command("status")
def sync_status(config: ConfigFile = None) -> None:
    """Cursor, cards by status, pending local actions."""
    with cli_errors():
        import sqlalchemy as sa

        from gateway import db
        from gateway.national.sync import get_cursor

        settings = _settings(config)
        engine = db.make_engine(settings.database.url)
        con = stdout_console()
        con.print(_("national cursor: {cursor}", cursor=get_cursor(engine) or "-"))
        with engine.connect() as conn:
            for status, n in conn.execute(sa.text("SELECT status, count(*) FROM card GROUP BY status")):
                con.print(f"  {status}: {n:,}")
            pending = conn.execute(sa.text("SELECT count(*) FROM card WHERE pending_upstream")).scalar()
            staff = conn.execute(sa.text("SELECT count(*) FROM staffrecord")).scalar()
        con.print(_("staff records: {staff}; local actions pending upstream: {pending}", staff=f"{staff:,}",
                    pending=pending))  # fmt: skip
