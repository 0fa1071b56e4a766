"""Issue 15, findings 1, 3 and 7: ingest that one poisoned event cannot stop, connections that a
failed transaction cannot spoil, records with repeated keys refused. Real PostgreSQL (and SQLite);
events sealed here with valid MACs, as an attacker holding a reader's key (or a reader journalling
a forged card) would send them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from support.ingest import TOPIC, Store, reader_key, record, setup_store, tap

from gateway import db
from gateway.ingest import IngestWriter, Message
from gateway.ingest_health import IngestHealth
from gateway.models import Alarm, Event, Quarantine
from gateway.registry import KeyCache
from gateway.sealed import Rejected, open_sealed, seal

RIDS = ["rd-h001", "rd-h002"]


@pytest.fixture
def pg_store(pg_url: str, tmp_path: Path) -> Iterator[Store]:
    s = setup_store(pg_url, RIDS, tmp_path / "master.key")
    yield s
    s.engine.dispose()


def msg(rid: str, payload: bytes, mid: int = 1) -> Message:
    return Message(TOPIC.format(rid), payload, mid, time.time())


def sealed_tap(rid: str, seq: int, **fields: Any) -> bytes:
    return seal(reader_key(rid), rid, seq, record("tap", 1_760_000_000 + seq, 2, 1, 1000 * seq, **fields))


def rows(engine: sa.Engine) -> set[tuple[str, int]]:
    with engine.connect() as c:
        return {(r, s) for r, s in c.execute(sa.select(Event.reader_id, Event.seq))}  # type: ignore[call-overload]


def quarantine(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as c:
        return [(r, d) for r, d in c.execute(sa.select(Quarantine.reason, Quarantine.detail))]  # type: ignore[call-overload]


# ---- finding 1: a NUL (or any control character) in a field ---------------------------------------


def test_finding1_nul_staff_code_is_quarantined_and_the_rest_commit(pg_store: Store) -> None:
    """Before: the whole batch failed with CharacterNotInRepertoire, again on every redelivery."""
    w = IngestWriter(pg_store.engine, pg_store.keys)
    batch = [msg("rd-h001", tap("rd-h001", s)) for s in range(1, 6)]
    batch.insert(2, msg("rd-h002", sealed_tap("rd-h002", 1, decision="deny", staff="CB\x000001")))
    batch.append(msg("rd-h002", sealed_tap("rd-h002", 2, decision="deny", detail="a\x1bb")))
    res = w.write_batch(batch)
    assert res.stored == 5 and res.quarantined["bad_record"] == 2
    assert rows(pg_store.engine) == {("rd-h001", s) for s in range(1, 6)}
    assert {r for r, _ in quarantine(pg_store.engine)} == {"bad_record"}
    assert all("control character" in d for _, d in quarantine(pg_store.engine))


def test_finding1_a_row_the_database_refuses_is_split_out_and_quarantined(pg_store: Store) -> None:
    """Whatever the database refuses for its data (here a constraint the validator does not know),
    the batch is split, the message at fault quarantined with the database's reason and an alarm,
    and every other event stored. Before: the batch raised, and was retried forever."""
    with pg_store.engine.begin() as c:
        c.execute(sa.text("ALTER TABLE event ADD CONSTRAINT no_poison "
                          "CHECK (staff_code IS DISTINCT FROM 'POISON')"))  # fmt: skip
    w = IngestWriter(pg_store.engine, pg_store.keys)
    batch = [msg("rd-h001", tap("rd-h001", s)) for s in range(1, 40)]
    batch.insert(17, msg("rd-h002", sealed_tap("rd-h002", 9, decision="deny", staff="POISON")))
    res = w.write_batch(batch)
    assert res.stored == 39 and res.quarantined == {"db_rejected": 1}
    assert rows(pg_store.engine) == {("rd-h001", s) for s in range(1, 40)}
    ((reason, detail),) = quarantine(pg_store.engine)
    assert reason == "db_rejected" and "CheckViolation" in detail and "no_poison" in detail
    with pg_store.engine.connect() as c:
        alarms = c.execute(sa.select(Alarm.reader_id, Alarm.kind, Alarm.active)).all()  # type: ignore[call-overload]
    assert [tuple(a) for a in alarms] == [("rd-h002", "ingest_rejected", True)]
    # the same batch again (the broker redelivers): duplicates and the same verdict, never a stall
    res = w.write_batch(batch)
    assert res.duplicates == 39 and res.quarantined == {"db_rejected": 1}


def test_finding1_database_away_is_not_quarantine(pg_store: Store) -> None:
    """While the database cannot be reached nothing is split or quarantined: the batch raises (the
    consumer keeps it un-acknowledged) and health turns red after the configured time, with why."""
    dead = db.make_engine("postgresql://nobody@127.0.0.1:1/none")
    w = IngestWriter(dead, pg_store.keys)
    health = IngestHealth(stuck_after_s=1.0)
    batch = [msg("rd-h001", tap("rd-h001", 1))]
    for _ in range(4):
        with pytest.raises(sa.exc.OperationalError):
            w.write_batch(batch)
        health.failed(sa.exc.OperationalError("x", None, Exception("away")))
    assert health.stuck() is None  # not yet: a short outage is not an alarm
    time.sleep(1.1)
    why = health.stuck()
    assert why is not None and "OperationalError" in why
    health.committed()
    assert health.stuck() is None
    assert quarantine(pg_store.engine) == []


def test_finding1_sqlite_refusal_is_split_too(tmp_path: Path) -> None:
    store = setup_store(f"sqlite:///{tmp_path / 'g.db'}", RIDS, tmp_path / "master.key")
    with store.engine.begin() as c:  # SQLite cannot add a constraint: a trigger refuses the row
        c.execute(sa.text("CREATE TRIGGER poison BEFORE INSERT ON event WHEN NEW.staff_code = 'POISON' "
                          "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"))  # fmt: skip
    w = IngestWriter(store.engine, store.keys)
    batch = [msg("rd-h001", tap("rd-h001", s)) for s in range(1, 9)]
    batch.insert(3, msg("rd-h002", sealed_tap("rd-h002", 1, staff="POISON")))
    res = w.write_batch(batch)
    assert res.stored == 8 and res.quarantined == {"db_rejected": 1}
    store.engine.dispose()


# ---- finding 7: repeated map keys -----------------------------------------------------------------


def test_finding7_duplicate_record_keys_are_refused() -> None:
    """Before: cbor2 kept the last value, so a record could say two things to two decoders."""
    rid, key = "rd-h001", reader_key("rd-h001")
    base = record("tap", 1_760_000_000, 2, 1, 1000, decision="grant")
    assert base[0] == 0xA6  # a map of 6 entries
    dup = bytes([0xA7]) + base[1:] + bytes([0x0A]) + b"\x64deny"  # decision again: "deny"
    with pytest.raises(Rejected) as e:
        open_sealed(rid, key, seal(key, rid, 1, dup))
    assert e.value.reason == "bad_record" and "duplicate" in e.value.detail
    indefinite = bytes([0xBF]) + base[1:] + b"\xff"
    with pytest.raises(Rejected):
        open_sealed(rid, key, seal(key, rid, 2, indefinite))
    assert open_sealed(rid, key, seal(key, rid, 3, base)).fields["decision"] == "grant"


# ---- finding 3: per-connection state after a failed transaction ----------------------------------


class _Injector:
    """Makes the k-th database operation of the next batch fail with a real server error
    (statement timeout: what a busy server does), counting every execute/executemany/copy that
    the driver connections of the engine run — SQLAlchemy's and ingest's own COPY cursor alike."""

    def __init__(self) -> None:
        self.armed_at: int | None = None
        self.ops = 0
        self.fired = False

    def hit(self, cur: Any) -> None:
        self.ops += 1
        if self.armed_at is not None and self.ops == self.armed_at and not self.fired:
            self.fired = True
            cur.execute("SET LOCAL statement_timeout = 1")
            cur.execute("SELECT pg_sleep(0.2)")  # QueryCanceled: the transaction is aborted


def _wrap_cursor(inj: _Injector, monkeypatch: pytest.MonkeyPatch) -> None:
    real_cursor = psycopg.Connection.cursor

    class Cur:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def execute(self, *a: Any, **k: Any) -> Any:
            inj.hit(self._inner)
            return self._inner.execute(*a, **k)

        def executemany(self, *a: Any, **k: Any) -> Any:
            inj.hit(self._inner)
            return self._inner.executemany(*a, **k)

        def copy(self, *a: Any, **k: Any) -> Any:
            inj.hit(self._inner)
            return self._inner.copy(*a, **k)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def __enter__(self) -> Cur:
            return self

        def __exit__(self, *a: Any) -> None:
            self._inner.close()

    def cursor(self: Any, *a: Any, **k: Any) -> Any:
        return Cur(real_cursor(self, *a, **k))

    monkeypatch.setattr(psycopg.Connection, "cursor", cursor)


@pytest.mark.parametrize("used", [False, True], ids=["fresh-connection", "used-connection"])
def test_finding3_a_failed_step_never_spoils_the_connection(
    pg_url: str, tmp_path: Path, used: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every database operation of the ingest transaction in turn fails; the next batch, on the
    same pooled connection, must succeed. Before: a failure after the staging table's DDL on a
    fresh connection left the "table exists" flag set while the rollback dropped the table, and
    every later batch on that connection failed (UndefinedTable)."""
    store = setup_store(pg_url, RIDS, tmp_path / "master.key")
    engine = db.make_engine(pg_url, pool_size=1)
    store.engine.dispose()
    keys = KeyCache(engine, store.box)
    keys.load_all()
    inj = _Injector()
    _wrap_cursor(inj, monkeypatch)
    seq = 0

    def batch() -> list[Message]:
        nonlocal seq
        out = []
        for _ in range(5):
            seq += 1
            out.append(msg("rd-h001", tap("rd-h001", seq, tq=0 if seq % 2 else 2)))
        seq += 1  # an alarm: the effects callback runs in the transaction
        out.append(msg("rd-h001", seal(reader_key("rd-h001"), "rd-h001", seq,
                                       record("alarm", 1_760_000_000, 2, 1, 1, alarm="tamper",
                                              active=True))))  # fmt: skip
        out.append(Message("cbcc/v1/r/rd-h001/ev", b"junk", 1, time.time()))  # a quarantine row too
        return out

    steps_seen = 0
    k = 1
    while True:
        engine.dispose()  # a new connection for each round
        w = IngestWriter(engine, keys, effects=lambda conn, fx: conn.execute(sa.text("SELECT 1")))
        if used:
            w.write_batch(batch())
        inj.ops, inj.fired, inj.armed_at = 0, False, k
        b = batch()
        try:
            w.write_batch(b)
        except Exception:  # the injected failure
            assert inj.fired
        if not inj.fired:
            break  # k is past the last operation of the transaction: every step was tried
        steps_seen += 1
        inj.armed_at = None
        after = batch()
        res = w.write_batch(after)  # must succeed on the same connection
        assert res.stored == 6, (k, res)
        k += 1
    # anchors, stage DDL (fresh connection only), COPY, merge, effects, quarantine, ...
    assert steps_seen >= (6 if not used else 5), steps_seen
    engine.dispose()


def test_finding1_unknown_failure_is_split_after_bounded_tries(pg_store: Store) -> None:
    """Not a data error, the database answers pings, the batch still fails (here: an effect that
    crashes on one event): raised MAX_TRIES - 1 times (the consumer keeps it and retries), then
    split, the message at fault quarantined, the rest stored. Before: retried forever."""

    def effects(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if any(r["detail"] == "boom" for r in rows):
            raise RuntimeError("effect crashed")

    w = IngestWriter(pg_store.engine, pg_store.keys, effects=effects)
    batch = [msg("rd-h001", tap("rd-h001", s)) for s in range(1, 11)]
    bad = record("alarm", 1_760_000_000, 2, 1, 1, alarm="tamper", active=True, detail="boom")
    batch.insert(4, msg("rd-h002", seal(reader_key("rd-h002"), "rd-h002", 1, bad)))
    from gateway.ingest import MAX_TRIES

    for _ in range(MAX_TRIES - 1):
        with pytest.raises(RuntimeError):
            w.write_batch(batch)
    res = w.write_batch(batch)
    assert res.stored == 10 and res.quarantined == {"db_rejected": 1}
    ((reason, detail),) = quarantine(pg_store.engine)
    assert reason == "db_rejected" and "effect crashed" in detail
