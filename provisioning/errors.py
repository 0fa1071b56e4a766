"""The one exception type the CLI turns into a clean message instead of a traceback."""


class CbccError(Exception):
    """A user-facing failure: bad input, missing passphrase, a refused overwrite, a bad key file."""
