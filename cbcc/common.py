"""Shared CLI plumbing: error reporting, the passphrase option, and atomic output files.

Kept free of heavy imports so that ``cbcc --help`` stays fast; the crypto stack is imported inside
each command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from trustcore.keys import PublicKey

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File whose first line is the key passphrase (else $CBCC_PASSPHRASE, else a hidden prompt).",
        dir_okay=False,
    ),
]


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    from rich.markup import escape

    stderr_console().print(f"[yellow]warning:[/yellow] {escape(message)}")


def fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    stderr_console().print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(code)


@contextmanager
def cli_errors(code: int = 1) -> Iterator[None]:
    """Turn each package's user-facing error into a one-line message and exit ``code``.

    The packages raise their own types (``TrustcoreError``, ``ProvisioningError``, ``GatewayError``)
    and know nothing of the command line; this is the one place that maps them to exit codes.
    """
    from cbcc.errors import CbccError
    from gateway.errors import GatewayError
    from provisioning.errors import ProvisioningError
    from trustcore.errors import TrustcoreError

    try:
        yield
    except (CbccError, TrustcoreError, ProvisioningError, GatewayError) as exc:
        fail(str(exc), code)


def read_input(path: Path, what: str) -> bytes:
    from cbcc.errors import CbccError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise CbccError(f"cannot read {what} {path}: {exc.strerror}") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (public outputs: credentials, lists)."""
    from cbcc.errors import CbccError
    from trustcore import files

    try:
        files.write_atomic(path, data)
    except OSError as exc:
        raise CbccError(f"cannot write {path}: {exc.strerror}") from None


def read_root_key(path: Path) -> PublicKey:
    """The pinned root public key (CBOR COSE_Key) from a file; a bad file is a CbccError."""
    from cbcc.errors import CbccError
    from trustcore import keys

    try:
        return keys.load_cose_key(read_input(path, "root key"))
    except keys.KeyFormatError as exc:
        raise CbccError(f"{path}: {exc}") from None
