"""ISO 8601 UTC text ⇄ Unix seconds: records and issuer files use text, the CBOR uses integers."""

from __future__ import annotations

import datetime as dt

from trustcore.errors import N_, TrustcoreError


def parse_iso_utc(text: str) -> int:
    """Unix seconds for an ISO 8601 timestamp with an explicit UTC offset (``Z`` or ``+00:00``...).

    Naive timestamps are refused (their zone would be a guess) and so are fractional seconds (the
    credential holds whole seconds and silently dropping a fraction would change what was signed).
    """
    if not isinstance(text, str):
        raise TrustcoreError(N_("timestamp must be an ISO 8601 string, not {type}"), type=type(text).__name__)
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise TrustcoreError(N_("not an ISO 8601 timestamp: {text!r}"), text=text) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise TrustcoreError(
            N_("timestamp {text!r} has no UTC offset; write it as e.g. 2025-01-01T00:00:00Z"), text=text
        )
    if when.microsecond:
        raise TrustcoreError(N_("timestamp {text!r} has fractional seconds"), text=text)
    seconds = int(when.timestamp())
    if seconds < 0:
        raise TrustcoreError(N_("timestamp {text!r} is before 1970"), text=text)
    return seconds


def to_iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_years(seconds: int, years: int) -> int:
    """Same calendar day ``years`` later (29 February becomes 28 February)."""
    start = dt.datetime.fromtimestamp(seconds, dt.UTC)
    try:
        end = start.replace(year=start.year + years)
    except ValueError:
        end = start.replace(year=start.year + years, day=28)
    return int(end.timestamp())
