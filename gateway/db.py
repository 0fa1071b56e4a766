"""Engines and migrations for the two supported databases.

SQLite (one machine): WAL so the API reads while ingest writes, ``synchronous=FULL`` because a
message is acknowledged to the broker as soon as its row is committed — a commit must survive
power loss, not just a crash. PostgreSQL (site, province, nation): psycopg 3.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from gateway import textfold

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def is_sqlite(url_or_engine: str | Engine) -> bool:
    name = url_or_engine.dialect.name if isinstance(url_or_engine, Engine) else url_or_engine
    return str(name).startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Search without diacritics (PostgreSQL has the same function from the migrations).
            dbapi_conn.create_function("cbcc_fold", 1, textfold.fold, deterministic=True)

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (Alembic); safe to run on every start."""
    command.upgrade(alembic_config(url), revision)


def utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for what was stored as UTC; make them aware again."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
