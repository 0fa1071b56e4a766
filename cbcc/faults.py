"""How the ``cbcc`` process meets the operator: signals and operational faults.

- SIGTERM (and SIGHUP) raise ``SystemExit`` like Ctrl-C raises ``KeyboardInterrupt``, so every
  ``finally`` and context manager runs: temporary folders holding passphrases are removed however
  the process is stopped.
- An exception that reaches the top becomes one or two lines naming what failed and which setting
  or flag fixes it; the traceback only with ``cbcc --debug``.
- Logs: one JSON format, ``gateway/logjson.py``.
"""

from __future__ import annotations

import errno
import signal
import sys
from types import FrameType

from messages import _

DEBUG = False


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP → ``SystemExit(128 + n)`` in the main thread (cleanup runs)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)


INTERRUPTED_EXIT = 130  # 128 + SIGINT: what a shell reports for Ctrl-C, and typer's code for it


def interrupted() -> int:
    """Ctrl-C: one line saying the stop was asked for (cleanup has run); the exit code."""
    sys.stderr.write(_("Stopped on request (Ctrl-C).") + "\n")
    return INTERRUPTED_EXIT


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 20:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def explain(exc: BaseException) -> str | None:
    """A short operator message for a known operational fault anywhere in ``exc``'s chain."""
    for e in _chain(exc):
        name = type(e).__name__
        module = type(e).__module__
        if isinstance(e, OSError) and e.errno == errno.EADDRINUSE:
            return _(
                "A network port is already in use: {detail}. Another program (often the Mosquitto "
                "service on 1883) listens there; choose another port in the settings."
            ).format(detail=e)
        if module.startswith("sqlalchemy") and name in ("OperationalError", "InterfaceError"):
            first = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e).strip() else name
            return _(
                "The database cannot be reached: {detail}. Check [database] url in the settings "
                "file or CBCC_DATABASE__URL."
            ).format(detail=first)
        if isinstance(e, ConnectionRefusedError):
            return _(
                "Connection refused: {detail}. Is the server running, and are host and port right?"
            ).format(detail=e)
        if isinstance(e, FileNotFoundError):
            return _("File not found: {path}.").format(path=e.filename or e)
        if isinstance(e, PermissionError):
            return _("Permission denied: {path}.").format(path=e.filename or e)
    return None


def report_crash(exc: BaseException) -> int:
    """Print the one-line explanation (or the exception itself) to stderr; the exit code."""
    import traceback

    if DEBUG:
        traceback.print_exception(exc)
    message = explain(exc) or _("Unexpected error: {kind}: {detail}").format(
        kind=type(exc).__name__, detail=exc
    )
    sys.stderr.write(_("error: {message}").format(message=message) + "\n")
    if not DEBUG:
        sys.stderr.write(_("(run with cbcc --debug … to see the traceback)") + "\n")
    return 1
