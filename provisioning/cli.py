"""The ``cbcc`` command line: composition root for every subcommand.

Each sub-app lives in its own module and imports the crypto stack only inside its commands, so
``cbcc --help`` and usage errors stay fast.
"""

import typer

from provisioning.cli_card import card_app
from provisioning.cli_crl import crl_app
from provisioning.cli_keys import keys_app

app = typer.Typer(no_args_is_help=True, help="cbcc — thẻ CBCCVC điện tử: door and attendance system.")
app.add_typer(keys_app, name="keys")
app.add_typer(card_app, name="card")
app.add_typer(crl_app, name="crl")


def main() -> None:
    app()
