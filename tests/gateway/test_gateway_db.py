"""Schema migrations on both engines, and reader keys sealed at rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import gateway.models  # noqa: F401
from gateway import db
from gateway.secretbox import SecretBox
from gateway.settings import load_settings


def _no_drift(url: str) -> None:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
        if engine.dialect.name == "postgresql":
            # Alembic reflects an index without its COLLATE, so it always reports these as
            # changed: compare their definitions here instead.
            (definition,) = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_staffrecord_name_fold'")
            ).one()
            assert 'cbcc_fold((full_name)::text) COLLATE "C", staff_code)' in definition, definition
            (definition,) = conn.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_staffrecord_unit_name'")
            ).one()
            want = '(agency_code COLLATE "C", cbcc_fold((full_name)::text) COLLATE "C", staff_code)'
            assert want in definition, definition
            index_ops = ("add_index", "remove_index")
            diff = [d for d in diff if not (d[0] in index_ops and d[1].name in _COLLATED)]
            # the agencies' head counts: kept by the database's triggers, no model (0010_consolegaps)
            kept_ops = ("remove_table", "remove_index")
            diff = [d for d in diff if not (d[0] in kept_ops and d[1].name in _DB_KEPT)]
            mine = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'staffrecord'::regclass"
            triggers = conn.execute(sa.text(mine)).scalars()
            assert {t for t in triggers if "headcount" in t} == {
                f"staffrecord_headcount_{op}" for op in ("ins", "upd", "del", "truncate")
            }
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


# indexes with a COLLATE, which Alembic reflects without it (their definitions are checked above)
_COLLATED = ("ix_staffrecord_name_fold", "ix_staffrecord_unit_name")
_DB_KEPT = ("agency_headcount", "ix_agency_headcount")


def _roundtrip(url: str) -> None:
    db.migrate(url)
    _no_drift(url)
    engine = db.make_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"event", "reader", "quarantine", "alarm", "command", "apitoken", "auditentry"} <= names
    command.downgrade(db.alembic_config(url), "base")
    db.migrate(url)  # and up again: migrations are reversible
    _no_drift(url)


def test_migrations_sqlite(tmp_path: Path) -> None:
    _roundtrip(f"sqlite:///{tmp_path / 'g.db'}")


def test_migrations_postgresql(pg_url: str) -> None:
    _roundtrip(pg_url)


def test_sqlite_is_wal_and_durable(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_url_normalisation() -> None:
    assert db.normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalise_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_secretbox_binds_reader(tmp_path: Path) -> None:
    box = SecretBox.from_file(tmp_path / "master.key", create=True)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    blob = box.seal(b"k" * 32, "reader:a")
    assert b"k" * 32 not in blob
    assert box.open(blob, "reader:a") == b"k" * 32
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        box.open(blob, "reader:b")
    (tmp_path / "loose.key").write_bytes(b"x" * 32)
    (tmp_path / "loose.key").chmod(0o644)
    with pytest.raises(PermissionError):
        SecretBox.from_file(tmp_path / "loose.key")


def test_settings_from_toml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "gw.toml"
    f.write_text('[database]\nurl = "postgresql://x@y/z"\n[mqtt]\nhost = "broker"\nembedded = false\n')
    monkeypatch.setenv("CBCC_MQTT__PORT", "8883")
    s = load_settings(f)
    assert s.database.url == "postgresql://x@y/z"
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.embedded) == ("broker", 8883, False)
    assert load_settings(f, http={"port": 9000}).http.port == 9000
