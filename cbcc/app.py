"""The ``cbcc`` command line: composition root for every command group.

Each group lives in its own module of this package and imports the packages it drives
(trustcore, provisioning, gateway, simulators) only inside its commands, so ``cbcc --help`` and
usage errors stay fast. Nothing outside this package imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cbcc.attendance import attendance_app, report_app
from cbcc.broker import broker_app
from cbcc.card import card_app
from cbcc.card_keys import card_keys_app
from cbcc.config import config_app
from cbcc.crl import crl_app
from cbcc.crl_publish import crl_publish
from cbcc.gateway import gateway_app
from cbcc.issue import register as register_issue
from cbcc.issue import register_keys as register_issue_keys
from cbcc.keys import keys_app
from cbcc.list_publish import publish_list_command
from cbcc.national import national_sim_app, sync_app
from cbcc.reader import reader_app
from cbcc.reader_device import register as register_reader_device
from cbcc.reader_setup import register as register_reader_setup
from cbcc.rollover import retire, rollover, rollover_report
from cbcc.root import root_transition, show_root_chain
from messages import _

app = typer.Typer(
    no_args_is_help=True,
    help=("cbcc — electronic civil-servant card (thẻ CBCCVC điện tử): door and attendance system."),
    pretty_exceptions_enable=False,  # faults are explained in one line by main(); --debug: traceback
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(card_app, name="card")
app.add_typer(crl_app, name="crl")
crl_app.command("publish")(crl_publish)
app.add_typer(config_app, name="config")
app.add_typer(gateway_app, name="gateway")
app.add_typer(broker_app, name="broker")
app.add_typer(reader_app, name="reader")
app.add_typer(national_sim_app, name="national-sim")
app.add_typer(sync_app, name="sync")
app.add_typer(attendance_app, name="attendance")
app.add_typer(report_app, name="report")
keys_app.add_typer(card_keys_app, name="card-keys")
register_issue(card_app)  # card issue | reissue | issue-batch | pending | abandon
register_issue_keys(keys_app)  # keys new-issuer-hsm
register_reader_device(reader_app)  # reader flash | deploy
register_reader_setup(reader_app)  # reader setup: register, flash, deploy, provision, copy


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        try:
            version = metadata.version("cbcc")
        except metadata.PackageNotFoundError:
            version = "unknown"
        typer.echo(f"cbcc {version}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and every library's debug log.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options for every command (before the command name: cbcc --debug gateway run)."""
    from cbcc import faults
    from gateway import logjson

    faults.DEBUG = debug
    logjson.configure_logging(debug)
keys_app.command("root-transition")(root_transition)
keys_app.command("show-root-chain")(show_root_chain)
keys_app.command("rollover")(rollover)
keys_app.command("rollover-report")(rollover_report)
keys_app.command("retire")(retire)
gateway_app.command("publish-list")(publish_list_command)


@app.command("demo")
def demo(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Keep the demo's files in this folder (default: discarded)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Run the story headless and exit; non-zero on any mismatch."),
    ] = False,
) -> None:
    """The product end to end: cards verified on host and reader, then a gateway with virtual readers.

    Without --out everything lives in a temporary folder that is removed however the demo ends
    (Ctrl-C, SIGTERM, an error): it holds a passphrase and the gateway's master key."""
    import tempfile

    from rich.console import Console

    from cbcc import demo_cards as demo_mod
    from cbcc import demo_gateway as gateway_demo

    console = Console(width=max(Console().width, 120))
    with tempfile.TemporaryDirectory(prefix="cbcc-demo-") as tmp:
        work = out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        issuers: dict[str, Any] = {}
        ok = demo_mod.run(work, console, issuers)
        ok = gateway_demo.run(work, console, serve=not check, issuers=issuers, check=check) and ok
    raise typer.Exit(0 if ok else 1)


def command() -> Any:
    """The command tree, with switches shown as switches (typer labels every flag ``<bool>``) and
    each command's summary and option help in the operator's language (messages/vi.po)."""
    import inspect

    def quiet_metavar(option: Any) -> Any:
        if option is not None:
            option.metavar = ""
            option.help = _("Show this message and exit.")
        return option

    def walk(cmd: Any) -> None:
        if cmd.help:  # the first paragraph (what --help lists) from the catalog
            first, sep, rest = inspect.cleandoc(cmd.help).partition("\n\n")
            cmd.help = _(first) + sep + rest
        for param in cmd.params:
            if getattr(param, "help", None):  # msgids: messages/extract.py finds every help= text
                param.help = _(param.help)
            if getattr(param, "is_flag", False):
                param.metavar = ""
        help_option = cmd.get_help_option
        setattr(cmd, "get_help_option", lambda ctx: quiet_metavar(help_option(ctx)))  # noqa: B010
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    from cbcc import clilang

    clilang.install()  # Typer's panels and Click's usage errors in the same language
    root = typer.main.get_command(app)
    walk(root)
    return root


def main() -> None:
    """Entry point: SIGTERM cleans up like Ctrl-C; faults become one or two lines (--debug: traceback)."""
    import sys

    from cbcc import faults as cli_faults

    cli_faults.install_signal_handlers()
    try:
        command()(prog_name="cbcc")
    except SystemExit as exc:
        if exc.code == cli_faults.INTERRUPTED_EXIT:  # typer turns KeyboardInterrupt into this, silently
            cli_faults.interrupted()
        raise
    except KeyboardInterrupt:  # before typer runs the command
        sys.exit(cli_faults.interrupted())
    except Exception as exc:
        sys.exit(cli_faults.report_crash(exc))
