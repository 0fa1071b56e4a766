"""The ``cbcc`` command line: composition root for every subcommand.

Each sub-app lives in its own module and imports the crypto stack only inside its commands, so
``cbcc --help`` and usage errors stay fast.
"""

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import gateway_app
from gateway.cli_broker import broker_app
from gateway.cli_crl_publish import crl_publish
from gateway.cli_national import national_sim_app, sync_app
from gateway.list_publish import publish_list_command
from provisioning.cli_card import card_app
from provisioning.cli_card_keys import card_keys_app
from provisioning.cli_config import config_app
from provisioning.cli_crl import crl_app
from provisioning.cli_keys import keys_app
from provisioning.cli_reader import reader_app
from provisioning.cli_rollover import retire, rollover, rollover_report
from provisioning.cli_root import root_transition, show_root_chain

app = typer.Typer(no_args_is_help=True, help="cbcc — thẻ CBCCVC điện tử: door and attendance system.")
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
keys_app.add_typer(card_keys_app, name="card-keys")
keys_app.command("root-transition")(root_transition)
keys_app.command("show-root-chain")(show_root_chain)
keys_app.command("rollover")(rollover)
keys_app.command("rollover-report")(rollover_report)
keys_app.command("retire")(retire)
gateway_app.command("publish-list")(publish_list_command)


@app.command("demo")
def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help="Keep the demo's files in this folder (default: discarded).")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the demo gateway running afterwards to explore its API.")
    ] = False,
) -> None:
    """The product end to end: cards verified on host and reader, then a gateway with virtual readers."""
    import tempfile

    from rich.console import Console

    from gateway import demo as gateway_demo
    from provisioning import demo as demo_mod

    console = Console(width=max(Console().width, 120))
    with tempfile.TemporaryDirectory(prefix="cbcc-demo-") as tmp:
        work = out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ok = demo_mod.run(work, console)
        ok = gateway_demo.run(work, console, serve=serve) and ok
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app()
