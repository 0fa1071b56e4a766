"""Where a private key's passphrase comes from: a file, ``CBCC_PASSPHRASE``, or a hidden prompt.

Keys are never written in clear text, so when none of these sources is available (no file, no
environment variable, no terminal) the operation fails with a clear message instead.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from trustcore.errors import N_, TrustcoreError, text

ENV_VAR = "CBCC_PASSPHRASE"


def obtain(passphrase_file: Path | None, *, confirm: bool, purpose: str) -> bytes:
    """Return the passphrase (UTF-8 bytes) from the first available source.

    Order: ``passphrase_file`` (first line; one trailing newline dropped), then the ``CBCC_PASSPHRASE``
    environment variable, then an interactive hidden prompt when stdin is a terminal (asked twice when
    ``confirm``, i.e. when a new key is being encrypted). An empty passphrase is refused.
    """
    if passphrase_file is not None:
        try:
            secret = passphrase_file.read_bytes().split(b"\n", 1)[0].removesuffix(b"\r")
        except OSError as exc:
            raise TrustcoreError(
                N_("cannot read passphrase file {path}: {reason}"), path=passphrase_file, reason=exc.strerror
            ) from None
        source = text(N_("passphrase file {path}"), path=passphrase_file)
    elif os.environ.get(ENV_VAR):
        secret = os.environ[ENV_VAR].encode("utf-8")
        source = f"${ENV_VAR}"
    elif sys.stdin is not None and sys.stdin.isatty():
        secret = getpass.getpass(text(N_("Passphrase for {purpose}: "), purpose=purpose)).encode("utf-8")
        if confirm and getpass.getpass(text(N_("Repeat passphrase: "))).encode("utf-8") != secret:
            raise TrustcoreError(N_("passphrases do not match"))
        source = text(N_("the prompt"))
    else:
        raise TrustcoreError(
            N_("a passphrase is needed for {purpose} but none was given: use --passphrase-file FILE, "
               "set {env}, or run on a terminal to be prompted (private keys are never stored in clear)"),
            purpose=purpose, env=ENV_VAR,
        )  # fmt: skip
    if not secret:
        raise TrustcoreError(N_("empty passphrase from {source}"), source=source)
    return secret
