"""Refused attendance input: a message naming the row or field; nothing was changed."""

from __future__ import annotations

from gateway.errors import GatewayError
from messages import Joined, _


def row_error(row: int, column: str, reason: str) -> str:
    """The contract's ``row N: column: reason`` (attendance-v1 §3), kept structured until shown:
    English exactly as the contract writes it, Vietnamese for a reader in Vietnamese. ``column`` is
    the file's column name (a code, never translated); ``reason`` a message (``messages._``)."""
    return _("row {row}: {column}: {reason}", row=row, column=column, reason=reason)


def field_error(field: str, reason: str) -> str:
    """``field: reason`` for a refused option or field (its name is a code, never translated)."""
    return _("{field}: {reason}", field=field, reason=reason)


def bad_rows(name: str, count: int) -> str:
    """The headline above the rows of a refused file."""
    return _("{file}: {count} bad row(s), nothing imported", file=name, count=count)


class AttendanceError(GatewayError):
    """Refused input (CLI exit 1, HTTP 422). ``lines``: one ``row N: column: reason`` each
    (:func:`row_error`); the message is the headline and those lines, each rendered again in the
    language of whoever reads it (``messages.Joined``)."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        self.headline = message
        self.lines = lines or []
        super().__init__(message if not self.lines else Joined([message, *self.lines]))


def cause(exc: BaseException) -> str:
    """An exception's message, still a ``messages.Message`` when it was one (so a row or field
    naming it renders whole in the reader's language)."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, str) else str(exc)


class AssignmentInUse(AttendanceError):
    """An assignment that already applies to a computed timesheet day is ended, not deleted (HTTP 409)."""
