"""``cbcc keys root-transition`` / ``show-root-chain``: replacing the national root (key ceremony).

The current root signs the next one; the transition is appended to the root chain the gateway
publishes to readers (kind ``root``, docs/key-ceremony.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cbcc.common import (
    PassphraseFile,
    cli_errors,
    read_input,
    read_root_key,
    status_line,
    stdout_console,
    write_atomic,
)
from messages import _


def root_transition(
    root_key: Annotated[
        Path, typer.Option("--root-key", help="The CURRENT root private key (encrypted PEM).")
    ],
    new_root: Annotated[
        Path, typer.Option("--new-root", help="The new root's public COSE_Key (root.cose_key).")
    ],
    chain: Annotated[
        Path, typer.Option("--chain", help="Root chain file: read if it exists, rewritten with the new link.")
    ],
    pinned: Annotated[
        Path, typer.Option("--pinned", help="The root readers were provisioned with (root.cose_key).")
    ],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Sign the next root with the current one and append the transition to the chain."""
    with cli_errors():
        from cryptography.hazmat.primitives.asymmetric import rsa

        from cbcc.errors import CbccError
        from trustcore import keys, passphrase, root_transition

        first = read_root_key(pinned)
        links = root_transition.read_chain(chain.read_bytes()) if chain.exists() else []
        if links:
            got = root_transition.verify_chain(root_transition.build_chain(links), first)
            if got.status != "ok" or got.root is None:
                raise CbccError(
                    _("the existing chain {path} does not verify from the pinned root ({status})", path=chain,
                      status=got.status)
                )  # fmt: skip
            current_pub = got.root
        else:
            current_pub = first
        key = keys.load_private_key(
            root_key, lambda: passphrase.obtain(passphrase_file, confirm=False, purpose=str(root_key))
        )
        if not isinstance(key, rsa.RSAPrivateKey) or keys.kid_of(key.public_key()) != keys.kid_of(
            current_pub
        ):
            raise CbccError(
                _(
                    "--root-key is not the current root (kid {kid}, after {n} transition(s))",
                    kid=keys.kid_of(current_pub).hex(),
                    n=len(links),
                )
            )
        new_pub = read_root_key(new_root)
        seq = len(links) + 1
        blob = root_transition.build_chain(
            [*links, root_transition.build_link(key, new_pub, seq, int(time.time()))]
        )
        check = root_transition.verify_chain(blob, first)
        if check.status != "ok" or check.seq != seq:
            raise CbccError(
                _("internal error: the new chain does not verify ({status})", status=check.status)
            )
        write_atomic(chain, blob)
        stdout_console().print(
            _(
                "root transition {seq}: {old} → [bold]{new}[/bold] → {chain} ({size} bytes)",
                seq=seq,
                old=keys.kid_of(current_pub).hex(),
                new=keys.kid_of(new_pub).hex(),
                chain=chain,
                size=len(blob),
            )
        )


def show_root_chain(
    chain: Annotated[Path, typer.Argument(help="Root chain file.")],
    root: Annotated[Path, typer.Option("--root", help="The root a reader holds (COSE_Key).")],
    held_seq: Annotated[int, typer.Option("--held-seq", help="Transitions that root already is past.")] = 0,
) -> None:
    """What a reader holding --root at --held-seq does with the chain; exit 0 only for ok."""
    with cli_errors(2):
        from trustcore import keys, root_transition

        got = root_transition.verify_chain(read_input(chain, "root chain"), read_root_key(root), held_seq)
        stdout_console().print(status_line(got.status))
        if got.root is not None:
            stdout_console().print(
                _("root after transition {seq}: {kid}", seq=got.seq, kid=keys.kid_of(got.root).hex())
            )
        if got.status != "ok":
            raise typer.Exit(1)
