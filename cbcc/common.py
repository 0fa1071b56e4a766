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

from messages import N_, _, render
from trustcore.errors import set_renderer

set_renderer(render)  # the trust core's prompts (passphrase) in the operator's language

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


# What read_input reads, as the operator is told it ("cannot read the trust list …")
INPUT_KINDS = (
    N_("base list"), N_("broker CA"), N_("root chain"), N_("configuration"), N_("configuration key"),
    N_("credential"), N_("revocation list"), N_("national list"), N_("root key"), N_("serials file"),
    N_("ranges file"), N_("secrets file"), N_("trust list"), N_("trust"), N_("root"),
)  # fmt: skip


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    from rich.markup import escape

    from messages import _

    label = _("warning:")
    stderr_console().print(f"[yellow]{label}[/yellow] {escape(message)}")


def fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    from messages import _

    label = _("error:")
    stderr_console().print(f"[bold red]{label}[/bold red] {escape(message)}")
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
    except TrustcoreError as exc:
        fail(error_text(exc), code)
    except (CbccError, ProvisioningError, GatewayError) as exc:
        fail(str(exc), code)


def error_text(exc: Exception) -> str:
    """An error's message in the operator's language: a trust-core error from its template (the
    trust core cannot import the catalog), anything else as raised (``_()`` already translated it)."""
    from trustcore.errors import TrustcoreError

    if isinstance(exc, TrustcoreError) and exc.template:
        return render(exc.template, exc.fields)
    return str(exc)


def status_line(code: str, label: str = N_("status:")) -> str:
    """``status: CODE (words)``: the code stays (scripts and auditors match it), the words explain it."""
    from rich.markup import escape

    from messages import words

    meaning = words.status(code)
    return _(label) + f" [bold]{escape(code)}[/bold]" + (f" ({escape(meaning)})" if meaning != code else "")


def read_input(path: Path, what: str) -> bytes:
    from cbcc.errors import CbccError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise CbccError(
            _("cannot read {what} {path}: {reason}", what=_(what), path=path, reason=exc.strerror)
        ) from None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (public outputs: credentials, lists)."""
    from cbcc.errors import CbccError
    from trustcore import files

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomic(path, data)
    except OSError as exc:
        raise CbccError(_("cannot write {path}: {reason}", path=path, reason=exc.strerror)) from None


def read_root_key(path: Path) -> PublicKey:
    """The pinned root public key (CBOR COSE_Key) from a file; a bad file is a CbccError."""
    from cbcc.errors import CbccError
    from trustcore import keys

    try:
        return keys.load_cose_key(read_input(path, "root key"))
    except keys.KeyFormatError as exc:
        raise CbccError(f"{path}: {error_text(exc)}") from None
