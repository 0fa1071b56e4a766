"""Sync the national card database into the gateway database.

One page of the feed is one transaction: its changes not yet applied (``CardChange.change_id`` is
unique) are recorded, staff records and cards are upserted (last state of each entity in the page
wins — every change carries the whole state), and the feed cursor in :class:`SyncState` moves
from the page's starting cursor to its ``next_cursor`` (compare-and-set). A crash anywhere before
the commit leaves nothing of the page; after it, the page is complete and the cursor says so, so
a restart neither loses nor repeats a change.

PostgreSQL: COPY into temporary staging tables, then ``INSERT ... ON CONFLICT DO UPDATE``
(cardchange is COPYed directly, its duplicates filtered first). SQLite: ``executemany`` upserts.

A card a facility manager locked here (``pending_upstream``) keeps its local status against a
national change that would make it ``issued`` again, until the lock has been pushed upstream.
After each commit ``on_change`` receives the serials whose revocation status (denied or not)
changed, for the revocation-list publisher.
"""
# ruff: noqa: S608 — SQL text here joins this module's constant column lists and table names; every value is bound

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.db import is_sqlite
from gateway.models import Card, StaffRecord, now_utc
from gateway.national.feed import (
    CardState,
    ChangeFeed,
    FeedError,
    Page,
    SnapshotBatch,
    SnapshotReader,
    SnapshotSource,
    StaffState,
    check_page,
    prefetched,
)
from messages import _

log = logging.getLogger(__name__)

OnChange = Callable[[list[int]], None]
Fault = Callable[[str], None]  # test hook, called with each stage name of a page
STAGES = ("filtered", "changes", "staff", "cards", "cursor", "committed")
# Stages of a snapshot load (one transaction): after each batch, after the last, after the index build.
SNAPSHOT_STAGES = ("snapshot.batch", "snapshot.loaded", "snapshot.indexed", "cursor", "committed")


@dataclass(frozen=True, slots=True)
class Item:
    """One change to apply, whatever its source."""

    change_id: str  # national:<id> | file:<digest>:<row> | local:<n>
    kind: str
    at: datetime
    staff: StaffState | None
    card: CardState | None
    detail: str = "{}"


@dataclass
class SyncReport:
    pages: int = 0
    changes: int = 0  # seen
    applied: int = 0  # newly recorded
    duplicates: int = 0  # already applied before (skipped)
    revocation_changed: int = 0
    cursor: str = ""
    head: int | None = None
    seconds: float = 0.0
    hook_errors: list[str] = field(default_factory=list)
    snapshot: int | None = None  # as_of of the snapshot loaded first (None: none)
    snapshot_staff: int = 0
    snapshot_cards: int = 0


def denied(status: str) -> bool:
    return status != "issued"


# ---- cursor -------------------------------------------------------------------------------------


def get_cursor(engine: Engine, name: str = "national") -> str:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT cursor FROM syncstate WHERE name = :n"), {"n": name}).first()
    return "" if row is None else str(row[0])


def _ensure_state(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT 1 FROM syncstate WHERE name = :n"), {"n": name}).first() is None:
            conn.execute(sa.text("INSERT INTO syncstate (name, cursor, updated_at) VALUES (:n, '', :t)"),
                         {"n": name, "t": now_utc()})  # fmt: skip


# ---- national feed ------------------------------------------------------------------------------


def national_items(page: Page) -> list[Item]:
    out = []
    for ch in page.changes:
        card, staff, ref = ch.get("card"), ch.get("staff"), ch.get("ref")
        if card is not None:
            detail = f'{{"status":"{card["status"]}","gen":{card["gen"]}'
        else:
            assert staff is not None  # noqa: S101 — type narrowing for mypy, not input validation
            active = "true" if staff["active"] else "false"
            detail = f'{{"agency_code":"{staff["agency_code"]}","active":{active}'
        if ref is not None:
            detail += f',"ref":{json.dumps(ref)}'
        out.append(Item(f"national:{ch['id']}", ch["kind"], ch["at"], staff, card, detail + "}"))
    return out


def sync_feed(
    engine: Engine,
    feed: ChangeFeed,
    *,
    name: str = "national",
    on_change: OnChange | None = None,
    fault: Fault | None = None,
    progress: Callable[[SyncReport], None] | None = None,
    max_pages: int | None = None,
    snapshot: bool = True,
) -> SyncReport:
    """Apply every page after the stored cursor; each page atomically with its cursor.

    With an empty cursor and a feed that offers one (``snapshot()``), the first load is a snapshot
    (:func:`load_snapshot`, one transaction) and the feed is followed from its ``as_of``."""
    t0 = time.perf_counter()
    _ensure_state(engine, name)
    report = SyncReport(cursor=get_cursor(engine, name))
    if report.cursor == "" and snapshot and isinstance(feed, SnapshotSource):
        snap = feed.snapshot()
        if snap is not None:
            with snap:
                changed = load_snapshot(engine, snap, name=name, fault=fault)
            report.snapshot, report.snapshot_staff, report.snapshot_cards = snap.as_of, snap.staff, snap.cards
            report.cursor = str(snap.as_of)
            report.applied += 1
            _notify(on_change, changed, report)
            if progress is not None:
                progress(report)
    for page in feed.pages(report.cursor):
        check_page(page, report.cursor)  # a feed implementation's bug must not reach the database
        items = national_items(page)
        applied, dup, changed = apply_items(
            engine, items, source="national", cursor=(name, report.cursor, page.next_cursor), fault=fault
        )
        report.pages += 1
        report.changes += len(items)
        report.applied += applied
        report.duplicates += dup
        report.cursor = page.next_cursor
        report.head = page.head
        _notify(on_change, changed, report)
        if progress is not None:
            progress(report)
        if max_pages is not None and report.pages >= max_pages:
            break
    report.seconds = time.perf_counter() - t0
    return report


def _notify(on_change: OnChange | None, changed: list[int], report: SyncReport) -> None:
    report.revocation_changed += len(changed)
    if on_change is None or not changed:
        return
    try:
        on_change(changed)
    except Exception as exc:  # the page is committed; the publisher must not stop the sync
        log.exception(_("on_change hook failed"))
        report.hook_errors.append(f"{type(exc).__name__}: {exc}")


# ---- applying a batch ---------------------------------------------------------------------------


def apply_items(
    engine: Engine,
    items: Sequence[Item],
    *,
    source: str,
    cursor: tuple[str, str, str] | None = None,
    fault: Fault | None = None,
) -> tuple[int, int, list[int]]:
    """Apply ``items`` in one transaction (with the cursor move ``(name, old, new)`` if given).

    Returns (applied, duplicates, serials whose revocation status changed). Items already
    recorded are skipped, so a batch can be offered again safely."""
    hit = fault or (lambda _stage: None)
    now = now_utc()
    with engine.begin() as conn:
        pg = not is_sqlite(engine)
        seen = _existing(conn, "cardchange", "change_id", [i.change_id for i in items], pg)
        fresh = [i for i in items if i.change_id not in seen]
        hit("filtered")
        changes: list[tuple[Any, ...]] = []
        staff: dict[str, tuple[Any, ...]] = {}
        cards: dict[int, tuple[Any, ...]] = {}
        for i in fresh:
            s, c = i.staff, i.card
            changes.append((i.change_id, source, i.kind, c["serial"] if c else None,
                            s["code"] if s else c["staff_code"] if c else None, i.detail, now))  # fmt: skip
            if s is not None:
                staff[s["code"]] = (s["code"], s["full_name"], s["agency_code"], s["unit"], s["position"],
                                    s["active"], i.at)  # fmt: skip
            if c is not None:
                cards[c["serial"]] = (c["serial"], c["staff_code"], c["issuer"], c["gen"], c["status"],
                                      c["issued_at"], c["expires_at"], i.at, False)  # fmt: skip
        old = _card_states(conn, list(cards), pg)
        changed = []
        for serial, row in cards.items():
            prev = old.get(serial)
            if prev is None:
                if denied(row[4]):
                    changed.append(serial)
                continue
            prev_status, pending = prev
            new_status = prev_status if pending and row[4] == "issued" else row[4]
            if denied(prev_status) != denied(new_status):
                changed.append(serial)
        if pg:
            known_staff = _existing(conn, "staffrecord", "staff_code", list(staff), pg)
            _apply_pg(conn, changes, staff, known_staff, cards, set(old), hit)
        else:
            _apply_sqlite(conn, changes, list(staff.values()), list(cards.values()), hit)
        if cursor is not None:
            name, old_cursor, new_cursor = cursor
            res = conn.execute(
                sa.text(
                    "UPDATE syncstate SET cursor = :new, updated_at = :t WHERE name = :n AND cursor = :old"
                ),
                {"new": new_cursor, "t": now, "n": name, "old": old_cursor},
            )
            if res.rowcount != 1:
                raise FeedError(
                    _(
                        "cursor {name!r} is no longer {cursor!r} (another sync is running?)",
                        name=name,
                        cursor=old_cursor,
                    )
                )
        hit("cursor")
    hit("committed")
    return len(fresh), len(items) - len(fresh), sorted(changed)


def _pg(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert raw is not None  # noqa: S101 — type narrowing for mypy, not input validation
    return cast("psycopg.Connection[Any]", raw)


def _chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _existing(conn: Connection, table: str, col: str, keys: list[Any], pg: bool) -> set[Any]:
    if not keys:
        return set()
    if pg:
        with _pg(conn).cursor() as cur:
            cur.execute(f"SELECT {col} FROM {table} WHERE {col} = ANY(%s)", (keys,))
            return {r[0] for r in cur.fetchall()}
    out: set[Any] = set()
    for part in _chunks(keys, 500):
        marks = ",".join("?" * len(part))
        out.update(r[0] for r in conn.exec_driver_sql(
            f"SELECT {col} FROM {table} WHERE {col} IN ({marks})", tuple(part)))  # fmt: skip
    return out


def _card_states(conn: Connection, serials: list[int], pg: bool) -> dict[int, tuple[str, bool]]:
    if not serials:
        return {}
    if pg:
        with _pg(conn).cursor() as cur:
            cur.execute(
                "SELECT serial, status, pending_upstream FROM card WHERE serial = ANY(%s)", (serials,)
            )
            return {r[0]: (r[1], bool(r[2])) for r in cur.fetchall()}
    out: dict[int, tuple[str, bool]] = {}
    for part in _chunks(serials, 500):
        marks = ",".join("?" * len(part))
        for r in conn.exec_driver_sql(
            f"SELECT serial, status, pending_upstream FROM card WHERE serial IN ({marks})", tuple(part)
        ):
            out[r[0]] = (r[1], bool(r[2]))
    return out


_STAFF_COLS = "staff_code, full_name, agency_code, unit, position, active, updated_at"
_CARD_COLS = "serial, staff_code, issuer, gen, status, issued_at, expires_at, updated_at, pending_upstream"
_CHANGE_COLS = "change_id, source, kind, serial, staff_code, detail, applied_at"
_STAFF_SET = (
    "full_name = excluded.full_name, agency_code = excluded.agency_code, unit = excluded.unit, "
    "position = excluded.position, active = excluded.active, updated_at = excluded.updated_at"
)
_CARD_SET = ("staff_code = excluded.staff_code, issuer = excluded.issuer, gen = excluded.gen, "
             "status = CASE WHEN card.pending_upstream AND excluded.status = 'issued' THEN card.status "
             "ELSE excluded.status END, issued_at = excluded.issued_at, expires_at = excluded.expires_at, "
             "updated_at = excluded.updated_at")  # fmt: skip


def _sqlite_ts(v: datetime | date | None) -> str | None:
    """SQLAlchemy's storage form on SQLite: naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{v.isoformat()} 00:00:00.000000"


def _apply_sqlite(conn: Connection, changes: list[tuple[Any, ...]], staff: list[tuple[Any, ...]],
                  cards: list[tuple[Any, ...]], hit: Fault) -> None:  # fmt: skip
    raw = conn.connection.dbapi_connection
    assert raw is not None  # noqa: S101 — type narrowing for mypy, not input validation
    changes = [(*r[:6], _sqlite_ts(r[6])) for r in changes]
    staff = [(*r[:6], _sqlite_ts(r[6])) for r in staff]
    cards = [(*r[:5], _sqlite_ts(r[5]), _sqlite_ts(r[6]), _sqlite_ts(r[7]), r[8]) for r in cards]
    cur = raw.cursor()
    try:
        cur.executemany(f"INSERT INTO cardchange ({_CHANGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)", changes)
        hit("changes")
        cur.executemany(
            f"INSERT INTO staffrecord ({_STAFF_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (staff_code) DO UPDATE SET {_STAFF_SET}", staff)  # fmt: skip
        hit("staff")
        cur.executemany(
            f"INSERT INTO card ({_CARD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (serial) DO UPDATE SET {_CARD_SET}", cards)  # fmt: skip
        hit("cards")
    finally:
        cur.close()


_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_staff (staff_code varchar(32), full_name varchar(200), "
    "agency_code varchar(32), unit varchar(200), position varchar(200), active boolean, "
    "updated_at timestamptz) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS stage_card (serial bigint, staff_code varchar(32), issuer varchar(32), "
    "gen integer, status varchar(16), issued_at timestamptz, expires_at timestamptz, updated_at timestamptz, "
    "pending_upstream boolean) ON COMMIT DELETE ROWS",
)
# COPY text format: backslash, tab, newline and carriage return escaped; \N is NULL.
_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _t(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, str):
        return v.translate(_ESC)
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return f"{v.isoformat()} 00:00:00+00"  # a card date is a UTC day
    return str(v)


def _change_line(r: tuple[Any, ...]) -> str:
    serial = "\\N" if r[3] is None else str(r[3])
    return f"{_t(r[0])}\t{_t(r[1])}\t{_t(r[2])}\t{serial}\t{_t(r[4])}\t{_t(r[5])}\t{r[6]}\n"


def _staff_line(r: tuple[Any, ...]) -> str:
    return (f"{r[0]}\t{_t(r[1])}\t{r[2]}\t{_t(r[3])}\t{_t(r[4])}\t{'t' if r[5] else 'f'}\t"
            f"{r[6].isoformat()}\n")  # fmt: skip


def _card_line(r: tuple[Any, ...]) -> str:
    return (f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{_t(r[5])}\t{_t(r[6])}\t{r[7].isoformat()}\t"
            f"{'t' if r[8] else 'f'}\n")  # fmt: skip


def _copy(cur: psycopg.Cursor[Any], sql: str, lines: Iterable[str]) -> None:
    with cur.copy(sql) as cp:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 2000:
                cp.write("".join(buf))
                buf.clear()
        if buf:
            cp.write("".join(buf))


def _apply_pg(conn: Connection, changes: list[tuple[Any, ...]], staff: dict[str, tuple[Any, ...]],
              known_staff: set[Any], cards: dict[int, tuple[Any, ...]], known_cards: set[int],
              hit: Fault) -> None:  # fmt: skip
    """New staff and cards are COPYed straight into their tables; known ones go through staging
    tables and ``INSERT ... ON CONFLICT DO UPDATE`` (the same statement also covers a row that
    appeared meanwhile)."""
    with _pg(conn).cursor() as cur:
        if changes:
            _copy(cur, f"COPY cardchange ({_CHANGE_COLS}) FROM STDIN", map(_change_line, changes))
        hit("changes")
        if len(known_staff) < len(staff):
            _copy(cur, f"COPY staffrecord ({_STAFF_COLS}) FROM STDIN",
                  (_staff_line(r) for k, r in staff.items() if k not in known_staff))  # fmt: skip
        if known_staff or known_cards:
            for ddl in _STAGE_DDL:
                cur.execute(ddl)
        if known_staff:
            _copy(cur, f"COPY stage_staff ({_STAFF_COLS}) FROM STDIN",
                  (_staff_line(staff[k]) for k in known_staff))  # fmt: skip
            cur.execute(f"INSERT INTO staffrecord ({_STAFF_COLS}) SELECT {_STAFF_COLS} FROM stage_staff "
                        f"ON CONFLICT (staff_code) DO UPDATE SET {_STAFF_SET}")  # fmt: skip
        hit("staff")
        if len(known_cards) < len(cards):
            _copy(cur, f"COPY card ({_CARD_COLS}) FROM STDIN",
                  (_card_line(r) for k, r in cards.items() if k not in known_cards))  # fmt: skip
        if known_cards:
            _copy(cur, f"COPY stage_card ({_CARD_COLS}) FROM STDIN",
                  (_card_line(cards[k]) for k in known_cards))  # fmt: skip
            cur.execute(f"INSERT INTO card ({_CARD_COLS}) SELECT {_CARD_COLS} FROM stage_card "
                        f"ON CONFLICT (serial) DO UPDATE SET {_CARD_SET}")  # fmt: skip
        hit("cards")


# ---- snapshot (first load) ----------------------------------------------------------------------


def _secondary_indexes(conn: Connection) -> list[sa.Index]:
    """The models' indexes that this database has (some are PostgreSQL only, e.g. the console's
    name search index: dropping it on SQLite would fail the first load)."""
    out: list[sa.Index] = []
    insp = sa.inspect(conn)
    for model in (StaffRecord, Card):
        table = cast("sa.Table", model.__table__)  # type: ignore[union-attr]
        present = {ix["name"] for ix in insp.get_indexes(table.name)}
        out += sorted((ix for ix in table.indexes if ix.name in present), key=lambda ix: str(ix.name))
    return out


def load_snapshot(
    engine: Engine,
    snap: SnapshotReader,
    *,
    name: str = "national",
    fault: Fault | None = None,
    rebuild_indexes: bool = True,
    prefetch: bool = True,
) -> list[int]:
    """Load a snapshot (state as of change ``snap.as_of``) in ONE transaction with the cursor move
    ``"" -> as_of`` and one ``CardChange`` (kind ``snapshot``, change id ``snapshot:<as_of>``).

    A crash or a bad line anywhere leaves nothing (the next run starts the snapshot again); after
    the commit the feed resumes after ``as_of``. Into empty tables the rows are COPYed (PostgreSQL)
    or inserted (SQLite) with the secondary indexes of ``staffrecord`` and ``card`` dropped and
    rebuilt inside the same transaction (DDL is transactional on both; the tables are locked
    against readers until the commit). Tables that already hold rows (a file import came first)
    are upserted like feed pages, local locks kept. Returns the serials whose revocation status
    changed (for the publisher). ``prefetch`` reads and validates the stream in a thread."""
    hit = fault or (lambda _stage: None)
    now = now_utc()
    changed: list[int] = []
    _ensure_state(engine, name)
    with engine.begin() as conn:
        pg = not is_sqlite(engine)
        lock = " FOR UPDATE" if pg else ""
        if not pg:
            # pysqlite opens its transaction at the first write and runs DDL before it in autocommit:
            # write first (this also takes SQLite's write lock), so the index drop is rolled back too.
            conn.execute(
                sa.text("UPDATE syncstate SET updated_at = :t WHERE name = :n"), {"t": now, "n": name}
            )
            raw = conn.connection.dbapi_connection
            assert raw is not None and raw.in_transaction  # noqa: S101 — type narrowing for mypy, not input validation
        cur_row = conn.execute(
            sa.text(f"SELECT cursor FROM syncstate WHERE name = :n{lock}"), {"n": name}
        ).one()
        if cur_row[0] != "":
            raise FeedError(
                _(
                    "a snapshot loads only before the feed (cursor {name!r} is {cursor!r})",
                    name=name,
                    cursor=cur_row[0],
                )
            )
        if pg:
            conn.exec_driver_sql("LOCK TABLE staffrecord, card IN SHARE ROW EXCLUSIVE MODE")
        empty = not any(
            conn.exec_driver_sql(f"SELECT 1 FROM {t} LIMIT 1").first() for t in ("staffrecord", "card")
        )
        indexes = _secondary_indexes(conn) if empty and rebuild_indexes else []
        for ix in indexes:
            conn.execute(sa.schema.DropIndex(ix))
        batches = prefetched(snap.batches()) if prefetch else snap.batches()
        at = snap.at  # rows carry the snapshot's time, as feed rows carry their change's
        for batch in batches:
            if empty and pg:
                changed += [c[0] for c in batch.cards if c[4] != "issued"]
                _copy_snapshot(conn, batch, at)
                hit("snapshot.batch")
                continue
            staff = {s[0]: (*s, at) for s in batch.staff}
            cards = {c[0]: (*c, at, False) for c in batch.cards}
            if empty:  # SQLite
                changed += [c[0] for c in batch.cards if c[4] != "issued"]
                _apply_sqlite(conn, [], list(staff.values()), list(cards.values()), _noop)
            else:
                old = _card_states(conn, list(cards), pg)
                for serial, row in cards.items():
                    prev = old.get(serial)
                    if prev is None:
                        new_status, was = row[4], False
                    else:
                        new_status = prev[0] if prev[1] and row[4] == "issued" else row[4]
                        was = denied(prev[0])
                    if denied(new_status) != was:
                        changed.append(serial)
                if pg:
                    known_staff = _existing(conn, "staffrecord", "staff_code", list(staff), pg)
                    _apply_pg(conn, [], staff, known_staff, cards, set(old), _noop)
                else:
                    _apply_sqlite(conn, [], list(staff.values()), list(cards.values()), _noop)
            hit("snapshot.batch")
        hit("snapshot.loaded")
        if pg and indexes:  # sort in memory (server side, this transaction only)
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for ix in indexes:
            ix.create(conn)
        if pg and indexes:
            conn.exec_driver_sql("ANALYZE staffrecord, card")
        hit("snapshot.indexed")
        detail = json.dumps({"as_of": snap.as_of, "staff": snap.staff, "cards": snap.cards})
        conn.execute(
            sa.text(
                f"INSERT INTO cardchange ({_CHANGE_COLS}) "
                "VALUES (:cid, 'national', 'snapshot', NULL, NULL, :d, :t)"
            ),
            {"cid": f"snapshot:{snap.as_of}", "d": detail, "t": now},
        )
        res = conn.execute(
            sa.text("UPDATE syncstate SET cursor = :new, updated_at = :t WHERE name = :n AND cursor = ''"),
            {"new": str(snap.as_of), "t": now, "n": name},
        )
        if res.rowcount != 1:
            raise FeedError(
                _("cursor {name!r} moved during the snapshot (another sync is running?)", name=name)
            )
        hit("cursor")
    hit("committed")
    return sorted(changed)


def _noop(_stage: str) -> None:
    pass


_MIDNIGHT = time_of_day(tzinfo=UTC)


def _copy_snapshot(conn: Connection, batch: SnapshotBatch, now: datetime) -> None:
    """Binary COPY of validated rows straight into empty tables (no text building: psycopg dumps
    the Python values in C)."""
    with _pg(conn).cursor() as cur:
        if batch.staff:
            with cur.copy(f"COPY staffrecord ({_STAFF_COLS}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["varchar", "varchar", "varchar", "varchar", "varchar", "bool", "timestamptz"])
                for s in batch.staff:
                    cp.write_row((*s, now))
        if batch.cards:
            days: dict[date, datetime] = {}
            with cur.copy(f"COPY card ({_CARD_COLS}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "varchar", "varchar", "int4", "varchar", "timestamptz", "timestamptz",
                              "timestamptz", "bool"])  # fmt: skip
                for c in batch.cards:
                    i, e = c[5], c[6]
                    if i is not None:
                        i = days.get(i) or days.setdefault(i, datetime.combine(i, _MIDNIGHT))
                    if e is not None:
                        e = days.get(e) or days.setdefault(e, datetime.combine(e, _MIDNIGHT))
                    cp.write_row((c[0], c[1], c[2], c[3], c[4], i, e, now, False))
