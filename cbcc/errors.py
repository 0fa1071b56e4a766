"""The command layer's own error: a user-facing failure of a ``cbcc`` command (bad option, missing file)."""


class CbccError(Exception):
    """A user-facing failure found by a command itself; shown as one line, never as a traceback."""
