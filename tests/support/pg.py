"""A throwaway PostgreSQL database per test session, on the machine's real server.

The admin URL defaults to the local server (trust auth on 127.0.0.1) and can be set with
``CBCC_TEST_PG_ADMIN``. Without a server the tests that need one skip, except under CI=true,
where they fail: CI must never go green by skipping the database tests.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

ADMIN = os.environ.get("CBCC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def require(what: str, why: str) -> None:
    """Skip for a stated reason, or fail when CI=true (the suite must run it there)."""
    msg = f"needs {what}: {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI=true: this test may not skip)")
    pytest.skip(msg)


def admin_connect() -> psycopg.Connection:
    return psycopg.connect(ADMIN, autocommit=True, connect_timeout=5)


def create_database(prefix: str = "cbcc_test") -> str:
    """A new empty database; returns its URL (postgresql://...)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        require("PostgreSQL", f"cannot reach {ADMIN} ({exc})")
    base = ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    try:
        with admin_connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    except psycopg.OperationalError:
        pass
