"""Refused attendance input: a message naming the row or field; nothing was changed."""

from __future__ import annotations

from gateway.errors import GatewayError


class AttendanceError(GatewayError):
    """Refused input (CLI exit 1, HTTP 422). ``lines``: one ``row N: column: reason`` each."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        self.lines = lines or []
        super().__init__(message if not self.lines else message + "\n" + "\n".join(self.lines))


class AssignmentInUse(AttendanceError):
    """An assignment that already applies to a computed timesheet day is ended, not deleted (HTTP 409)."""
