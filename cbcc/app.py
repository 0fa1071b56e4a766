"""The ``cbcc`` command line: composition root for every command group.

Each group lives in its own module of this package and imports the packages it drives
(trustcore, provisioning, gateway, simulators) only inside its commands, so ``cbcc --help`` and
usage errors stay fast. Nothing outside this package imports it.
"""

from pathlib import Path
from typing import Annotated

import typer

from cbcc.broker import broker_app
from cbcc.card import card_app
from cbcc.card_keys import card_keys_app
from cbcc.config import config_app
from cbcc.crl import crl_app
from cbcc.crl_publish import crl_publish
from cbcc.gateway import gateway_app
from cbcc.keys import keys_app
from cbcc.list_publish import publish_list_command
from cbcc.national import national_sim_app, sync_app
from cbcc.reader import reader_app
from cbcc.rollover import retire, rollover, rollover_report
from cbcc.root import root_transition, show_root_chain

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

    from cbcc import demo_cards as demo_mod
    from cbcc import demo_gateway as gateway_demo

    console = Console(width=max(Console().width, 120))
    with tempfile.TemporaryDirectory(prefix="cbcc-demo-") as tmp:
        work = out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ok = demo_mod.run(work, console)
        ok = gateway_demo.run(work, console, serve=serve) and ok
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app()
