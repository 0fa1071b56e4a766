"""Shared pytest fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Firmware modules import each other by flat name (as they do from /lib on the reader);
# CPython tests of portable firmware logic put that folder on the path the same way.
for extra in (ROOT / "firmware" / "lib", ROOT / "firmware" / "tools", ROOT / "firmware", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


import pytest  # noqa: E402


@pytest.fixture
def pg_url():  # type: ignore[no-untyped-def]
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    import pg

    url = pg.create_database()
    yield url
    pg.drop_database(url)
