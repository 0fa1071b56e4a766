"""Ingest: a batch of MQTT messages → verified, deduplicated event rows and quarantine rows.

One database transaction per batch. Each message is checked (topic, known reader, size, sealed
shape, MAC, record types: :mod:`gateway.sealed`); good events are inserted idempotently on
``(reader_id, seq)``; anything else becomes a :class:`~gateway.models.Quarantine` row. A record
received again unchanged is a *duplicate* (at-least-once delivery: counted, not stored twice); the
same ``(reader, seq)`` with a different record is a *conflict*: quarantined, the stored row is never
overwritten. Times of events stamped with an unset clock are corrected (:mod:`gateway.timefix`).

The caller acknowledges the batch's messages to the broker only after :meth:`IngestWriter.write_batch`
returned: then the rows are committed. If the database is unavailable it raises and nothing of the
batch is acknowledged (the caller retries the same batch later).

One bad message never stops ingest (docs/gateway.md, "Poisoned messages"): fields are validated to
what the columns accept before anything is written (:mod:`gateway.sealed`); should the database
still refuse a batch for its data (a constraint, an encoding), or fail it :data:`MAX_TRIES` times in
a row while it answers a ping, the batch is split in halves until the message at fault stands alone;
that one is quarantined (``db_rejected``, with the database's reason, and an ``ingest_rejected``
alarm) and the rest commit. While the database is unreachable nothing is split or quarantined.
Per-connection state (the staging table's flag) changes only after a commit.

Storage paths (measured by ``tests/bench/ingest.py``):

- PostgreSQL: the rows are COPYed (binary) into a per-connection temporary staging table, then one
  ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` statement inserts them and reports the
  ones that were already there, with whether their stored record is the same. ``pg_method="values"``
  uses SQLAlchemy's multi-row ``INSERT … VALUES … RETURNING`` (executemany) instead.
- SQLite: ``INSERT … ON CONFLICT DO NOTHING`` executemany; SQLite has one writer, so rows whose id
  exceeds the highest id before the insert are exactly the new ones.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
import sqlalchemy as sa
from prometheus_client import Counter as PromCounter
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from gateway import ack, metrics, timefix
from gateway.models import Alarm, Event, Quarantine
from gateway.registry import READER_ID, KeyCache
from gateway.sealed import Rejected, open_sealed, printable

_Dups = list[tuple[str, int, bool | None]]  # (reader, seq, stored record is the same / unknown)
Effects = Callable[[sa.Connection, list[dict[str, Any]]], None]

QUARANTINE_MAX = 4096
# Consecutive failed attempts at batches, while the database answers a ping, after which a batch is
# split to find the message at fault (data errors split at once).
MAX_TRIES = 3
DB_REJECTED = "db_rejected"
EFFECT_KINDS = frozenset({"alarm", "notice"})
TOPIC_PREFIX = "cbcc/v1/r/"

OUT_OF_ORDER = PromCounter("cbcc_events_out_of_order", "Events stored whose seq is below one already seen.",
                           registry=metrics.REGISTRY)  # fmt: skip
TIMES_PROVISIONAL = PromCounter("cbcc_event_times_provisional",
                                "Events stored with a provisional time (clock unset, boot not anchored).",
                                registry=metrics.REGISTRY)  # fmt: skip
TIMES_CORRECTED = PromCounter("cbcc_event_times_corrected", "Event times corrected from a boot anchor.",
                              registry=metrics.REGISTRY)  # fmt: skip

COLUMNS = (
    "reader_id", "seq", "kind", "occurred_at", "reader_time", "time_quality", "time_corrected",
    "received_at", "boot", "uptime_ms", "decision", "reason", "serial", "staff_code", "technology",
    "anti_clone", "door", "direction", "punch", "alarm", "active", "detail", "record", "mac",
)  # fmt: skip
PG_TYPES = (
    "text", "int8", "text", "timestamptz", "timestamptz", "int4", "bool", "timestamptz", "int4", "int8",
    "text", "text", "int8", "text", "text", "bool", "text", "text", "bool", "text", "bool", "text",
    "bytea", "bytea",
)  # fmt: skip
_OPTIONAL = COLUMNS[10:22]  # decision … detail, straight from the record
_I_OCCURRED, _I_CORRECTED = 3, 6

_COLS = ", ".join(COLUMNS)
_STAGE = "_cbcc_stage"
_PG_STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
    + ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, PG_TYPES, strict=True))
    + ") ON COMMIT DELETE ROWS"
)
_PG_COPY = f"COPY {_STAGE} ({_COLS}) FROM STDIN (FORMAT BINARY)"
# The rows that were NOT inserted, each with whether the stored record is the same. The subquery
# reads the statement's snapshot: a row committed concurrently by another gateway process after it
# was taken shows as NULL and is looked up again.
# ruff: noqa: S608 — the SQL below joins this module's constant column list and stage table; no values
_PG_MERGE = f"""
WITH ins AS (
    INSERT INTO event ({_COLS})
    SELECT {_COLS} FROM {_STAGE} ORDER BY reader_id, seq
    ON CONFLICT (reader_id, seq) DO NOTHING
    RETURNING reader_id, seq
)
SELECT s.reader_id, s.seq,
       (SELECT e.record = s.record FROM event e WHERE e.reader_id = s.reader_id AND e.seq = s.seq)
FROM {_STAGE} s LEFT JOIN ins i ON i.reader_id = s.reader_id AND i.seq = s.seq
WHERE i.seq IS NULL
"""

_EVENT = Event.__table__  # type: ignore[attr-defined]
_QUARANTINE = Quarantine.__table__  # type: ignore[attr-defined]
_ALARM = Alarm.__table__  # type: ignore[attr-defined]

_DATA_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.DataError, psycopg.IntegrityError, sqlite3.DataError, sqlite3.IntegrityError, ValueError,
    TypeError, OverflowError, sa.exc.DataError, sa.exc.IntegrityError,
)  # fmt: skip


def is_data_error(exc: BaseException) -> bool:
    """Whether the database (or the driver) refused the batch for what it holds, not for being away."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa.exc.StatementError) and isinstance(orig, BaseException):
        exc = orig
    return isinstance(exc, _DATA_ERRORS)


def _reason_of(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    e = orig if isinstance(orig, BaseException) else exc
    return printable(f"{type(e).__name__}: {e}")[:500]


class Message(NamedTuple):
    topic: str
    payload: bytes
    mid: int
    received_at: float  # Unix seconds (time.time()) when the gateway got it


@dataclass
class BatchResult:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    out_of_order: int = 0
    provisional: int = 0  # stored with a provisional time
    corrected: int = 0  # rows (this batch's or earlier ones) given a corrected time
    committed_at: float = 0.0  # time.time() right after the commit
    seconds: float = 0.0
    # reader id -> seqs this commit settled (stored, re-sent, quarantined after a good MAC)
    confirmed: dict[str, set[int]] = field(default_factory=dict)
    # (topic, payload) confirmations to publish now that the batch is committed (gateway/ack.py)
    acks: list[tuple[str, bytes]] = field(default_factory=list)


def _dt(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


class IngestWriter:
    """Turns batches of messages into committed rows; thread-safe for one caller at a time."""

    def __init__(self, engine: Engine, keys: KeyCache, effects: Effects | None = None, *,
                 pg_method: str = "copy", count_metrics: bool = True) -> None:  # fmt: skip
        if pg_method not in ("copy", "values"):
            raise ValueError("pg_method is 'copy' or 'values'")
        self.engine = engine
        self.keys = keys
        self.effects = effects
        self.pg_method = pg_method
        # False in a worker process (gateway.ingest_worker): the parent counts from the results.
        self.count_metrics = count_metrics
        self.is_pg = engine.dialect.name == "postgresql"
        self._anchors: dict[timefix.Pair, int] = {}  # known boot anchors (never move once set)
        self._max_seq: dict[str, int] = {}
        self._lock = threading.Lock()
        self._fails = 0  # consecutive failed batches (see MAX_TRIES)
        self._new_stage: dict[Any, Any] | None = None  # connection info to flag after the commit

    # ---- verification (no I/O but the key cache) ---------------------------------------------

    def _quarantine(self, q: list[dict[str, Any]], m: Message, rid: str | None, reason: str,
                    detail: str) -> None:  # fmt: skip
        payload = bytes(m.payload)
        q.append({"received_at": _dt(m.received_at), "topic": printable(m.topic[:256]), "reader_id": rid,
                  "reason": reason, "detail": printable(detail[:500]), "payload": payload[:QUARANTINE_MAX],
                  "payload_size": len(payload)})  # fmt: skip

    def _verify(self, msgs: Sequence[Message], res: BatchResult, q: list[dict[str, Any]]
                ) -> tuple[dict[tuple[str, int], list[Any]], dict[tuple[str, int], Message],
                           dict[timefix.Pair, tuple[int, int]]]:  # fmt: skip
        rows: dict[tuple[str, int], list[Any]] = {}
        src: dict[tuple[str, int], Message] = {}
        anchors: dict[timefix.Pair, tuple[int, int]] = {}  # pair -> (seq, offset) of its first good event
        keys = self.keys
        for m in msgs:
            topic = m.topic
            ok = topic.startswith(TOPIC_PREFIX) and topic.endswith("/ev")
            rid = topic[len(TOPIC_PREFIX):-3] if ok else ""
            if not rid or not READER_ID.match(rid):
                self._quarantine(q, m, None, "bad_topic", "not cbcc/v1/r/{rid}/ev")
                continue
            key = keys.get(rid)
            if key is None:
                self._quarantine(q, m, rid, "unknown_reader", "no enabled reader with this id")
                continue
            try:
                o = open_sealed(rid, key, m.payload)
            except Rejected as rej:
                self._quarantine(q, m, rid, rej.reason, rej.detail)
                if rej.seq is not None:
                    res.confirmed.setdefault(rid, set()).add(rej.seq)
                continue
            f = o.fields
            k = (rid, o.seq)
            res.confirmed.setdefault(rid, set()).add(o.seq)
            held = rows.get(k)
            if held is not None:  # the same event twice in one batch
                if held[22] == o.record:
                    res.duplicates += 1
                else:
                    res.conflicts += 1
                    self._quarantine(q, m, rid, "conflict", f"seq {o.seq}: differs within the batch")
                continue
            tq = f["time_quality"]
            boot, up = f.get("boot"), f.get("uptime_ms")
            reader_time = _dt(f["time"])
            received = _dt(m.received_at)
            row = [rid, o.seq, f["kind"], reader_time if tq else received, reader_time, tq, False, received,
                   boot, up]  # fmt: skip
            row.extend([f.get(c) for c in _OPTIONAL])
            row.append(o.record)
            row.append(o.mac)
            rows[k] = row
            src[k] = m
            if tq and boot is not None and up is not None:
                a = anchors.get((rid, boot))
                if a is None or o.seq < a[0]:
                    anchors[(rid, boot)] = (o.seq, timefix.offset_from_event(f["time"], up))
        return rows, src, anchors

    # ---- storage -----------------------------------------------------------------------------

    def _fix_times(self, conn: sa.Connection, rows: dict[tuple[str, int], list[Any]],
                   anchors: dict[timefix.Pair, tuple[int, int]], res: BatchResult
                   ) -> tuple[list[timefix.Pair], dict[timefix.Pair, int]]:  # fmt: skip
        """Store this batch's new anchors, correct its clock-unset rows; (new pairs, anchors learned)."""
        new = {p: off for p, (_s, off) in anchors.items() if p not in self._anchors}
        timefix.record_anchors(conn, new)
        need = {(r[0], r[8]) for r in rows.values() if r[5] == 0 and r[8] is not None and r[9] is not None}
        need.update(new)
        unknown = [p for p in need if p not in self._anchors]
        learned = timefix.load_anchors(conn, unknown) if unknown else {}
        for r in rows.values():
            if r[5] != 0:
                continue
            pair = (r[0], r[8])
            anchored = r[8] is not None and r[9] is not None
            off = self._anchors.get(pair, learned.get(pair)) if anchored else None
            t = timefix.corrected(off, r[9]) if off is not None else None
            if t is None:
                res.provisional += 1
            else:
                r[_I_OCCURRED] = t
                r[_I_CORRECTED] = True
                res.corrected += 1
        return list(new), learned

    def _insert_pg_copy(self, conn: sa.Connection, rows: list[list[Any]]) -> _Dups:
        fairy = conn.connection
        dbapi = fairy.driver_connection
        assert dbapi is not None  # noqa: S101 — type narrowing for mypy, not input validation
        cur = dbapi.cursor()
        try:
            if not fairy.info.get("cbcc_stage"):
                cur.execute(_PG_STAGE_DDL)
                # The table exists for this connection once the transaction commits: a rollback
                # takes it away, so the flag is set by _write after the commit, never here.
                self._new_stage = fairy.info
            with cur.copy(_PG_COPY) as cp:
                cp.set_types(list(PG_TYPES))
                for r in rows:
                    cp.write_row(r)
            cur.execute(_PG_MERGE)
            return [(str(a), int(b), c) for a, b, c in cur.fetchall()]
        finally:
            cur.close()

    def _insert_pg_values(self, conn: sa.Connection, rows: list[list[Any]]) -> _Dups:
        stmt = (postgresql.insert(_EVENT).on_conflict_do_nothing(index_elements=["reader_id", "seq"])
                .returning(_EVENT.c.reader_id, _EVENT.c.seq))  # fmt: skip
        done = {(r, s) for r, s in conn.execute(stmt, [dict(zip(COLUMNS, r, strict=True)) for r in rows])}
        return [(r[0], r[1], None) for r in rows if (r[0], r[1]) not in done]

    def _insert_sqlite(self, conn: sa.Connection, rows: list[list[Any]]) -> _Dups:
        before = conn.execute(sa.select(sa.func.max(_EVENT.c.id))).scalar() or 0
        stmt = sa.insert(_EVENT).prefix_with("OR IGNORE")
        res = conn.execute(stmt, [dict(zip(COLUMNS, r, strict=True)) for r in rows])
        if res.rowcount == len(rows):
            return []
        ours: set[tuple[str, int]] = set()
        keys = [(r[0], r[1]) for r in rows]
        for i in range(0, len(keys), 400):
            chunk = keys[i:i + 400]
            q = sa.select(_EVENT.c.reader_id, _EVENT.c.seq).where(
                _EVENT.c.id > before, sa.tuple_(_EVENT.c.reader_id, _EVENT.c.seq).in_(chunk))
            ours.update((a, b) for a, b in conn.execute(q))
        return [(r[0], r[1], None) for r in rows if (r[0], r[1]) not in ours]

    def _compare(self, conn: sa.Connection, rows: dict[tuple[str, int], list[Any]],
                 missing: list[tuple[str, int]]) -> dict[tuple[str, int], bool]:  # fmt: skip
        """Whether the stored record of each of these (reader, seq) equals the one received."""
        out: dict[tuple[str, int], bool] = {}
        for i in range(0, len(missing), 400):
            chunk = missing[i:i + 400]
            q = sa.select(_EVENT.c.reader_id, _EVENT.c.seq, _EVENT.c.record).where(
                sa.tuple_(_EVENT.c.reader_id, _EVENT.c.seq).in_(chunk))
            for r, s, rec in conn.execute(q):
                out[(r, s)] = bytes(rec) == rows[(r, s)][22]
        return out

    def write_batch(self, msgs: Sequence[Message]) -> BatchResult:
        """Verify and store one batch (split if the database refuses part of it); raises, with
        nothing committed that is not idempotent, while the database is unavailable."""
        with self._lock:
            try:
                res = self._write(msgs)
            except Exception as exc:
                if self.count_metrics:
                    metrics.DB_ERRORS.inc()
                if not is_data_error(exc):
                    self._fails += 1
                    if self._fails < MAX_TRIES or not self._db_reachable():
                        raise
                res = self._split(msgs, exc)
            self._fails = 0
            if self.count_metrics:
                count_result(res)
            return res

    def _db_reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    def _split(self, msgs: Sequence[Message], exc: BaseException) -> BatchResult:
        """Commit what the database accepts of ``msgs`` (refused as a whole with ``exc``) by halves;
        quarantine the message that is refused alone. Raises if the database goes away meanwhile."""
        if len(msgs) == 1:
            return self._reject(msgs[0], exc)
        out = BatchResult()
        half = len(msgs) // 2
        for part in (msgs[:half], msgs[half:]):
            try:
                res = self._write(part)
            except Exception as e:
                if not is_data_error(e) and not self._db_reachable():
                    raise
                res = self._split(part, e)
            out = _merged(out, res)
        return out

    def _reject(self, m: Message, exc: BaseException) -> BatchResult:
        """Quarantine one message the database refused, and raise an alarm that says why."""
        topic = m.topic
        rid = topic[len(TOPIC_PREFIX):-3] if topic.startswith(TOPIC_PREFIX) and topic.endswith("/ev") else ""
        rid_or_none = rid if rid and READER_ID.match(rid) else None
        q: list[dict[str, Any]] = []
        why = _reason_of(exc)
        self._quarantine(q, m, rid_or_none, DB_REJECTED, why)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(sa.insert(_QUARANTINE), q)
            conn.execute(sa.insert(_ALARM).values(reader_id=rid_or_none or "gateway", kind="ingest_rejected",
                                                  active=True, raised_at=now, detail=why))  # fmt: skip
        res = BatchResult(messages=1, committed_at=time.time())
        res.quarantined[DB_REJECTED] = 1
        key = self.keys.get(rid) if rid_or_none else None
        if key is not None and rid_or_none is not None:
            seq: int | None
            try:
                seq = open_sealed(rid_or_none, key, m.payload).seq
            except Rejected as rej:
                seq = rej.seq
            if seq is not None:
                res.confirmed[rid_or_none] = {seq}
        return self._with_acks(res)

    def _write(self, msgs: Sequence[Message]) -> BatchResult:
        t0 = time.perf_counter()
        res = BatchResult(messages=len(msgs))
        q: list[dict[str, Any]] = []
        rows, src, anchors = self._verify(msgs, res, q)
        inserted: list[list[Any]] = []
        learned: dict[timefix.Pair, int] = {}
        self._new_stage = None
        with self.engine.begin() as conn:
            if rows:
                new_pairs, learned = self._fix_times(conn, rows, anchors, res)
                staged = list(rows.values())
                if self.is_pg:
                    dup = (self._insert_pg_copy(conn, staged) if self.pg_method == "copy"
                           else self._insert_pg_values(conn, staged))  # fmt: skip
                else:
                    dup = self._insert_sqlite(conn, staged)
                unknown = [(r, s) for r, s, same in dup if same is None]
                same_of = self._compare(conn, rows, unknown) if unknown else {}
                not_new: set[tuple[str, int]] = set()
                for r, s, same in dup:
                    not_new.add((r, s))
                    if same is None:
                        same = same_of.get((r, s), True)
                    if same:
                        res.duplicates += 1
                    else:
                        res.conflicts += 1
                        self._quarantine(q, src[(r, s)], r, "conflict", f"seq {s}: differs from stored")
                inserted = staged if not not_new else [v for k, v in rows.items() if k not in not_new]
                res.stored = len(inserted)
                if new_pairs:
                    res.corrected += timefix.fix_pending(conn, new_pairs)
                taps = [dict(zip(COLUMNS, r, strict=True)) for r in inserted if r[2] == "tap"]
                if taps:  # attendance punches, in the same transaction as their events
                    from gateway.attendance.readers import from_ingest

                    from_ingest(conn, taps)
                if self.effects is not None:
                    fx = [dict(zip(COLUMNS, r, strict=True)) for r in inserted if r[2] in EFFECT_KINDS]
                    if fx:
                        self.effects(conn, fx)
            if q:
                conn.execute(sa.insert(_QUARANTINE), q)
        if self._new_stage is not None:  # committed: the staging table now outlives transactions
            self._new_stage["cbcc_stage"] = True
            self._new_stage = None
        res.committed_at = time.time()
        res.quarantined = Counter(x["reason"] for x in q)
        if len(self._anchors) > 200_000:
            self._anchors.clear()
        self._anchors.update(learned)
        for row in inserted:
            rid, seq = row[0], row[1]
            top = self._max_seq.get(rid)
            if top is not None and seq < top:
                res.out_of_order += 1
            elif top is None or seq > top:
                self._max_seq[rid] = seq
        res.seconds = time.perf_counter() - t0
        return self._with_acks(res)

    def _with_acks(self, res: BatchResult) -> BatchResult:
        """Build the confirmations of a committed result (keys are at hand here, also in a worker)."""
        res.acks = []
        for rid, seqs in res.confirmed.items():
            key = self.keys.get(rid)
            if key is not None:
                res.acks.extend((ack.topic(rid), p) for p in ack.messages(key, rid, seqs))
        return res


def _merged(a: BatchResult, b: BatchResult) -> BatchResult:
    """Two committed parts of one split batch, as one result."""
    return BatchResult(
        messages=a.messages + b.messages, stored=a.stored + b.stored, duplicates=a.duplicates + b.duplicates,
        conflicts=a.conflicts + b.conflicts, quarantined=a.quarantined + b.quarantined,
        out_of_order=a.out_of_order + b.out_of_order, provisional=a.provisional + b.provisional,
        corrected=a.corrected + b.corrected, committed_at=max(a.committed_at, b.committed_at),
        seconds=a.seconds + b.seconds, acks=a.acks + b.acks,
        confirmed={r: a.confirmed.get(r, set()) | b.confirmed.get(r, set())
                   for r in {*a.confirmed, *b.confirmed}},
    )  # fmt: skip


def count_result(res: BatchResult) -> None:
    """The Prometheus counters of one committed batch."""
    metrics.BATCHES.inc()
    metrics.BATCH_SECONDS.observe(res.seconds)
    if res.stored:
        metrics.EVENTS_STORED.inc(res.stored)
    if res.duplicates:
        metrics.EVENTS_DUPLICATE.inc(res.duplicates)
    for reason, n in res.quarantined.items():
        metrics.QUARANTINED.labels(reason).inc(n)
    if res.out_of_order:
        OUT_OF_ORDER.inc(res.out_of_order)
    if res.provisional:
        TIMES_PROVISIONAL.inc(res.provisional)
    if res.corrected:
        TIMES_CORRECTED.inc(res.corrected)
