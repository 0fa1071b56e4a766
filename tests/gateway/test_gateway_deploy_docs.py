"""The deployment documents are exercised, not just written: the example settings load, the
compose file parses, and the national partitioning script keeps ingest idempotent on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import yaml

from gateway import db
from gateway.settings import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def test_example_settings_load() -> None:
    s = load_settings(DEPLOY / "gateway.example.toml")
    assert s.database.url.startswith("postgresql://")
    assert s.mqtt.tls and s.mqtt.shared_group == "cbcc-ingest" and not s.mqtt.embedded
    assert s.retention.events_days == 730


def test_compose_file_parses() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {"broker", "db", "gateway-1", "gateway-2"} <= set(doc["services"])
    ids = {doc["services"][g]["environment"]["CBCC_MQTT__CLIENT_ID"] for g in ("gateway-1", "gateway-2")}
    assert len(ids) == 2  # each process needs its own client id


def test_partitioning_script_keeps_idempotent_ingest(pg_url: str) -> None:
    db.migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute((DEPLOY / "partition-events.sql").read_text())
        q = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'event'::regclass"
        parts = conn.execute(q).fetchone()
        assert parts is not None and parts[0] == 32
        now = datetime.now(UTC)
        sql = ("INSERT INTO event (reader_id, seq, kind, occurred_at, received_at, time_quality,"
               " time_corrected, record, mac) VALUES (%s, %s, 'tap', %s, %s, 2, false, %s, %s)"
               " ON CONFLICT (reader_id, seq) DO NOTHING")  # fmt: skip
        for rid in ("r-a", "r-b", "r-c"):
            for seq in (1, 2, 2, 3, 1):
                conn.execute(sql, (rid, seq, now, now, b"rec", b"mac"))
        n = conn.execute("SELECT count(*), count(DISTINCT id) FROM event").fetchone()
        assert n == (9, 9)
    db.migrate(pg_url)  # still at head: nothing to do, no error
