"""Storage paths: incremental recompute of person-days (a reader that catches up after a day
offline), and punches taken from reader events at ingest (wrong clocks use the gateway's corrected
time; a clock-unset event waits for its correction)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway import db
from gateway.attendance import readers, store
from gateway.models import now_utc

VN = timezone(timedelta(hours=7))
CODES = ("CB01", "CB02", "CB03")


def _t(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=VN).astimezone(UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path}/g.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    db.migrate(url)
    eng = db.make_engine(url)
    with eng.begin() as conn:
        conn.execute(
            sa.insert(store.T_STAFF),
            [
                {
                    "staff_code": c,
                    "full_name": f"Người {c}",
                    "agency_code": "H26",
                    "unit": "VP",
                    "position": "",
                    "active": True,
                    "updated_at": now_utc() - timedelta(days=800),
                }
                for c in CODES
            ],
        )
        store.set_shift(conn, "hc", "HC", "07:30-11:30,13:00-17:00", "Mon-Fri", 0, 0)
        store.assign(conn, "hc", date(2026, 1, 1), None, unit="VP")
    yield eng
    eng.dispose()


def _punches(days: range, codes: tuple[str, ...] = CODES) -> list[store.PunchRow]:
    return [
        store.PunchRow(c, _t(f"2026-03-{d:02d} {hh}"), "import")
        for c in codes
        for d in days
        for hh in ("07:29:00", "17:01:00")
    ]


def _stored_equals_full(engine: Engine) -> None:
    full = store.compute_month(engine, "2026-03")
    want = {(r["staff"], d, r["unit"]): v for r in full["staff"] for d, v in r["days"].items()}
    assert store.stored_days(engine, "2026-03") == want


def test_late_batch_recomputes_only_what_it_touches(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_punches(conn, _punches(range(2, 7)) + _punches(range(11, 14)))  # 9 and 10 March missing
    first = store.refresh_days(engine)  # every month from the assignment's start to next month
    assert first.days_written >= 3 * 31
    _stored_equals_full(engine)
    assert store.refresh_days(engine).person_months == 0  # nothing changed, nothing recomputed
    # The reader of CB02 was offline on 9-10 March and now sends its log, twice (re-sent).
    late = _punches(range(9, 11), ("CB02",))
    with engine.begin() as conn:
        assert store.add_punches(conn, late) == 4
        assert store.add_punches(conn, late) == 0
    again = store.refresh_days(engine)
    assert (again.person_months, again.days_written, again.days_deleted) == (1, 2, 0)  # CB02's 9 and 10 March
    _stored_equals_full(engine)
    assert store.stored_days(engine, "2026-03")[("CB02", "2026-03-10", "VP")]["value"] == 1.0


def test_a_mark_made_while_the_refresh_runs_is_kept(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A punch that arrives while the refresh computes, for a person-month it is computing (already
    marked), keeps its mark: the refresh removes only the marks as it read them, and the next
    refresh writes the new day (it was lost, leaving the stored day stale)."""
    with engine.begin() as conn:
        store.add_punches(conn, _punches(range(2, 7)))
    store.refresh_days(engine)
    with engine.begin() as conn:  # CB02's 9 March: marked, then the refresh starts
        store.add_punches(conn, [store.PunchRow("CB02", _t("2026-03-09 07:29:00"), "import")])
    real = store.load_month
    arrived: list[int] = []

    def meanwhile(conn: Any, *a: Any, **kw: Any) -> Any:
        loaded = real(conn, *a, **kw)  # read before the punch below, as a concurrent commit would be
        if not arrived:  # the evening punch arrives: CB02's March is marked again
            arrived.append(
                store.add_punches(conn, [store.PunchRow("CB02", _t("2026-03-09 17:01:00"), "import")])
            )
        return loaded

    monkeypatch.setattr(store, "load_month", meanwhile)
    store.refresh_days(engine)
    monkeypatch.setattr(store, "load_month", real)
    assert arrived == [1]
    with engine.connect() as conn:
        left = {
            (r[0], r[1]) for r in conn.execute(sa.select(store.T_DIRTY.c.staff_code, store.T_DIRTY.c.month))
        }
    assert ("CB02", "2026-03") in left  # the mark made meanwhile stays
    assert (
        store.stored_days(engine, "2026-03")[("CB02", "2026-03-09", "VP")]["out"] is None
    )  # computed before it
    again = store.refresh_days(engine)
    assert again.person_months >= 1
    assert store.stored_days(engine, "2026-03")[("CB02", "2026-03-09", "VP")]["out"] == "17:01"
    _stored_equals_full(engine)


def _event(seq: int, staff: str, at: datetime, **kw: Any) -> dict[str, Any]:
    row = {
        "reader_id": "r1",
        "seq": seq,
        "kind": "tap",
        "occurred_at": at,
        "reader_time": at,
        "time_quality": 2,
        "time_corrected": False,
        "received_at": at,
        "boot": 1,
        "uptime_ms": 1000,
        "decision": "punch",
        "reason": "ok",
        "serial": 1,
        "staff_code": staff,
        "technology": "desfire",
        "anti_clone": True,
        "door": None,
        "direction": None,
        "punch": None,
        "alarm": None,
        "active": None,
        "detail": None,
        "record": b"x",
        "mac": b"y",
    }
    row.update(kw)
    return row


def test_reader_events_become_punches(engine: Engine) -> None:
    ev = readers.T_EVENT
    rows = [
        _event(1, "CB01", _t("2026-03-02 07:29:00")),
        _event(2, "CB01", _t("2026-03-02 07:29:00"), reason="duplicate"),  # the reader's own re-tap
        _event(3, "CB02", _t("2026-03-02 07:40:00"), decision="deny", reason="revoked"),
        _event(4, "CB02", _t("2026-03-02 07:41:00"), decision="grant", door="d1"),  # door not opted in
        _event(5, "CB03", _t("2026-03-02 07:42:00"), decision="grant", punch=True),  # "both" terminal
        # The reader's clock said 2000-01-01; the gateway corrected the time at ingest.
        _event(
            6,
            "CB01",
            _t("2026-03-02 17:03:00"),
            reader_time=datetime(2000, 1, 1, tzinfo=UTC),
            time_quality=0,
            time_corrected=True,
        ),
        # Clock unset and not anchored yet: provisional (receive) time, not taken now.
        _event(7, "CB02", _t("2026-03-02 23:59:00"), time_quality=0, received_at=now_utc()),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(ev), rows)
        assert readers.from_ingest(conn, rows) == 3
    d = store.compute_month(engine, "2026-03")["staff"]
    assert (d[0]["days"]["2026-03-02"]["in"], d[0]["days"]["2026-03-02"]["out"]) == ("07:29", "17:03")
    assert d[1]["days"]["2026-03-02"]["in"] is None  # deny and an ordinary door: no punch
    assert d[2]["days"]["2026-03-02"]["in"] == "07:42"
    # The boot gets its anchor: the event's time is corrected to 17:00 and the next report takes it.
    with engine.begin() as conn:
        conn.execute(
            sa.update(ev)
            .where(ev.c.seq == 7)
            .values(occurred_at=_t("2026-03-02 17:00:00"), time_corrected=True)
        )
    d = store.compute_month(engine, "2026-03")["staff"]
    assert d[1]["days"]["2026-03-02"]["in"] == "17:00"
    # A door opted in for attendance: its granted entries count from then on.
    with engine.begin() as conn:
        readers.opt_in_door(conn, "d1", True)
        row = _event(8, "CB02", _t("2026-03-03 07:30:00"), decision="grant", door="d1")
        conn.execute(sa.insert(ev), [row])
        assert readers.from_ingest(conn, [row]) == 1


def test_backfill_takes_events_stored_before_attendance(engine: Engine) -> None:
    ev = readers.T_EVENT
    rows = [
        _event(1, "CB01", _t("2026-03-02 07:29:00")),
        _event(2, "CB01", _t("2026-03-02 17:03:00")),
        _event(3, "CB02", _t("2026-03-02 07:41:00"), decision="grant", door="d1"),  # door opted in later
        _event(4, "CB02", _t("2026-03-02 07:45:00"), decision="deny", reason="revoked"),
        _event(5, "CB03", _t("2026-03-02 08:00:00"), time_quality=0, received_at=now_utc()),  # provisional
        _event(6, "CB01", _t("2026-03-03 07:30:00")),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(ev), rows)  # stored without the attendance hook (before the migration)
        readers.opt_in_door(conn, "d1", True)
    with engine.begin() as conn:
        assert readers.backfill(conn, store.utc_midnight(date(2026, 3, 3))) == 1  # event 6 only
    with engine.begin() as conn:
        assert readers.backfill(conn) == 3  # events 1, 2 and 3
    with engine.begin() as conn:
        assert readers.backfill(conn) == 0  # idempotent
        refs = sorted(r[0] for r in conn.execute(sa.select(store.T_PUNCH.c.ref)))
    assert refs == ["event:r1:1", "event:r1:2", "event:r1:3", "event:r1:6"]
    d = {r["staff"]: r["days"] for r in store.compute_month(engine, "2026-03")["staff"]}
    assert (d["CB01"]["2026-03-02"]["in"], d["CB01"]["2026-03-02"]["out"]) == ("07:29", "17:03")
    assert d["CB02"]["2026-03-02"]["in"] == "07:41" and d["CB02"]["2026-03-02"]["flags"] == ["missing_punch"]
    assert d["CB03"]["2026-03-02"]["in"] is None
    # Incremental store: the back-filled person-days are current after a refresh.
    store.refresh_days(engine)
    _stored_equals_full(engine)


def test_punches_of_unknown_staff_are_stored_once_the_record_arrives(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_punches(conn, _punches(range(2, 4), ("CB09",)))
    store.refresh_days(engine)
    assert not any(k[0] == "CB09" for k in store.stored_days(engine, "2026-03"))
    with engine.begin() as conn:  # the national sync brings the record
        conn.execute(
            sa.insert(store.T_STAFF).values(
                staff_code="CB09", full_name="Người CB09", agency_code="H26", unit="VP", position="",
                active=True, updated_at=now_utc() - timedelta(days=800),
            )
        )  # fmt: skip
    store.refresh_days(engine)
    days = store.stored_days(engine, "2026-03")
    assert days[("CB09", "2026-03-02", "VP")]["value"] == 1.0  # 07:29-17:01 on hc
    _stored_equals_full(engine)


def test_kept_rows_follow_every_input(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's kept computation (``kept=True``) equals a fresh one after each kind of change,
    and recomputes only the people whose own inputs changed."""
    from collections import OrderedDict

    from gateway.attendance import engine as rules

    monkeypatch.setattr(store, "_MEMO", OrderedDict())
    computed: list[list[str]] = []
    real = rules.compute

    def spy(inp: Any, **kw: Any) -> Any:
        computed.append(sorted(inp.names))
        return real(inp, **kw)

    monkeypatch.setattr(rules, "compute", spy)

    def same(unit: str | None = None) -> None:
        computed.clear()
        assert store.compute_month(engine, "2026-03", unit=unit, kept=True) == store.compute_month(
            engine, "2026-03", unit=unit
        )
        fresh = store.overtime(engine, "2026-03", unit=unit)
        assert store.overtime(engine, "2026-03", unit=unit, kept=True) == fresh
        assert store.overtime_page(engine, "2026-03", unit, "", 0, 1) == (fresh[:1], len(fresh))
        assert store.overtime_page(engine, "2026-03", unit, "", 1, 2) == (fresh[1:3], len(fresh))
        big = [o for o in fresh if o["minutes"] >= 60]
        assert store.overtime_page(engine, "2026-03", unit, "", 0, 99, 60) == (big, len(big))

    with engine.begin() as conn:
        store.add_punches(conn, _punches(range(2, 7)))
    same("VP")
    assert computed[0] == list(CODES)  # the first time, everyone
    computed.clear()
    loads: list[Any] = []
    real_load = store.load_month

    def load_spy(*a: Any, **kw: Any) -> Any:
        loads.append(a)
        return real_load(*a, **kw)

    monkeypatch.setattr(store, "load_month", load_spy)
    gen = store.kept_month(engine, "2026-03", "VP").gen
    store.compute_month(engine, "2026-03", unit="VP", kept=True)
    assert computed == [] and loads == []  # nothing changed: no person's inputs read, none computed
    assert store.kept_month(engine, "2026-03", "VP").gen == gen  # ... and the same content number
    with engine.begin() as conn:  # CB02 stays late: a new punch, an overtime candidate
        store.add_punches(conn, [store.PunchRow("CB02", _t("2026-03-09 07:20:00"), "import")])
        store.add_punches(conn, [store.PunchRow("CB02", _t("2026-03-09 19:05:00"), "import")])
    same("VP")
    assert computed[0] == ["CB02"]
    assert store.kept_month(engine, "2026-03", "VP").gen != gen  # a row changed: a new number
    with engine.begin() as conn:
        store.add_leave(conn, "CB01", "P", date(2026, 3, 10), date(2026, 3, 11), None, "ốm")
        store.correct(conn, "CB03", "void", _t("2026-03-03 07:29:00"), "nhầm", "hr")
        store.correct(conn, "CB03", "add", _t("2026-03-03 07:31:00"), "quên", "hr")
    same("VP")
    assert computed[0] == ["CB01", "CB03"]
    with engine.begin() as conn:
        store.approve_overtime(conn, "CB02", date(2026, 3, 9), 30, "dự án", "hr")
    same("VP")
    with engine.begin() as conn:  # the rules every row depends on: everyone again
        store.set_shift(conn, "hc", "HC", "07:30-11:30,13:00-17:00", "Mon-Fri", 10, 10)
    same("VP")
    assert computed[0] == list(CODES)
    with engine.begin() as conn:
        store.calendar_set(conn, date(2026, 3, 4), "holiday", "Nghỉ bù")
        store.record_transfer(conn, "CB03", "KT", date(2026, 3, 16), "H26")
    same("VP")
    same("KT")
    same()
    with engine.begin() as conn:  # the national sync: CB01 moves to KT, CB02's name is corrected
        for code, change in (("CB01", {"unit": "KT"}), ("CB02", {"full_name": "Người CB02 (sửa)"})):
            conn.execute(
                sa.update(store.T_STAFF)
                .where(store.T_STAFF.c.staff_code == code)
                .values(updated_at=_t("2026-03-20 08:00:00"), **change)
            )
    same("VP")
    assert computed[0] == ["CB01", "CB02"]
    same("KT")
    with engine.begin() as conn:
        assert store.calendar_unset(conn, date(2026, 3, 4))
        store.add_punches(conn, [store.PunchRow("CB03", _t("2026-03-31 23:00:00"), "import")])
    same("VP")
    same("KT")
    rows = store.compute_month(engine, "2026-03", unit="VP", kept=True)["staff"]
    rows[0]["overtime"] = {"weekday": 1}  # a caller adding to a row (attach_overtime) ...
    found = store.overtime(engine, "2026-03", unit="VP", kept=True)
    found[0]["approved_min"] = 999  # ... or to a candidate changes nothing kept
    same("VP")
