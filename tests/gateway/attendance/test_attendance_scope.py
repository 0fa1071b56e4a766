"""A report within a unit scope loads and computes only the people ever in it, under the one scope
rule of ``gateway.auth.in_scope`` (whole segments: ``H01`` covers ``H01.05``, never ``H010``), and
holds exactly the rows the whole month holds for them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway import db
from gateway.attendance import store
from gateway.auth import in_scope
from gateway.models import now_utc

VN = timezone(timedelta(hours=7))
PEOPLE = {"CB-A": "H01", "CB-B": "H01.05", "CB-C": "H010", "CB-D": "H02", "CB-T": "H02"}


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
                    "agency_code": "AG",
                    "unit": "H01" if c == "CB-T" else u,  # CB-T: in H01 until 15 March (below)
                    "position": "",
                    "active": True,
                    "updated_at": now_utc() - timedelta(days=800),
                }
                for c, u in PEOPLE.items()
            ],
        )
        store.refresh_spans(conn)
        store.record_transfer(conn, "CB-T", "H02", date(2026, 3, 16), "AG")
        store.set_shift(conn, "hc", "HC", "07:30-11:30,13:00-17:00", "Mon-Fri", 0, 0)
        for u in sorted(set(PEOPLE.values())):
            store.assign(conn, "hc", date(2026, 1, 1), None, unit=u)
        rows = [
            store.PunchRow(c, _t(f"2026-03-{d:02d} {hh}"), "import")
            for c in PEOPLE
            for d in (2, 3, 7, 16, 17)  # 7 March is a Saturday: overtime candidates
            for hh in ("07:29:00", "17:31:00")
        ]
        store.add_punches(conn, rows)
    yield eng
    eng.dispose()


@pytest.mark.parametrize("scope", ["H01", "H01.", "H01.05", "H010", "H02", "AG", "X"])
def test_scoped_report_is_the_whole_months_rows_in_scope(engine: Engine, scope: str) -> None:
    full = store.compute_month(engine, "2026-03")
    want = [r for r in full["staff"] if in_scope(scope, r["unit"]) or in_scope(scope, r["agency"])]
    got = store.compute_month(engine, "2026-03", scope=scope)
    assert got == {**full, "staff": want}
    assert store.report_json(got) == store.report_json({**full, "staff": want})


def test_scope_is_whole_segments(engine: Engine) -> None:
    staff = {(r["staff"], r["unit"]) for r in store.compute_month(engine, "2026-03", scope="H01")["staff"]}
    assert staff == {("CB-A", "H01"), ("CB-B", "H01.05"), ("CB-T", "H01")}  # not CB-C of H010
    staff = {(r["staff"], r["unit"]) for r in store.compute_month(engine, "2026-03", scope="H010")["staff"]}
    assert staff == {("CB-C", "H010")}
    # a scoped unit report: the unit's rows within the scope only
    assert store.compute_month(engine, "2026-03", unit="H010", scope="H01")["staff"] == []


def test_scoped_overtime_is_the_whole_months_for_the_people_in_scope(engine: Engine) -> None:
    full = store.overtime(engine, "2026-03")
    assert {o["staff"] for o in full} == set(PEOPLE)
    got = store.overtime(engine, "2026-03", scope="H01")
    assert got == [o for o in full if o["staff"] in {"CB-A", "CB-B", "CB-T"}]
    assert {o["staff"] for o in store.overtime(engine, "2026-03", unit="H010")} == {"CB-C"}


def test_people_and_units_in_view(engine: Engine) -> None:
    assert store.people_in_view(engine, "") == 5
    assert store.people_in_view(engine, "", bound=2) == 3  # counting stops past the bound
    assert store.people_in_view(engine, "AG") == 5
    assert store.people_in_view(engine, "AG.") == store.people_in_view(engine, "A") == 0  # whole segments
    assert store.people_in_view(engine, "H01") == 0  # counted by agency code only
    assert store.agencies_in_view(engine, "AG") == store.agencies_in_view(engine, "") == [("AG", 5)]
    assert store.agencies_in_view(engine, "", limit=0) == store.agencies_in_view(engine, "AGX") == []
    # a unit within a scope: only its people in the scope are loaded
    assert {r["staff"] for r in store.compute_month(engine, "2026-03", unit="AG", scope="H01")["staff"]} == {
        "CB-A",
        "CB-B",
        "CB-T",
    }


def test_agency_head_counts_follow_every_kind_of_write(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL keeps the counts by triggers (migration 0010_consolegaps): after inserts, an
    agency change, deletes and a truncate they equal a GROUP BY of the records; SQLite counts."""
    t = store.T_STAFF

    def counted() -> list[tuple[str, int]]:
        with engine.connect() as conn:
            q = sa.select(t.c.agency_code, sa.func.count()).group_by(t.c.agency_code)
            q = q.order_by(t.c.agency_code)
            return [(str(a), int(n)) for a, n in conn.execute(q)]

    new = [f"N{i:03d}" for i in range(120)]  # 120 agencies: more than the old 50 with counts
    with engine.begin() as conn:
        conn.execute(
            sa.insert(t),
            [{"staff_code": f"X{i}", "full_name": "X", "agency_code": new[i % 120], "unit": new[i % 120],
              "position": "", "active": True, "updated_at": now_utc()} for i in range(600)],
        )  # fmt: skip
    assert store.agencies_in_view(engine, "") == counted() and len(counted()) == 121
    assert store.agencies_in_view(engine, "N001") == [("N001", 5)]
    assert store.agencies_in_view(engine, "", limit=3) == [("AG", 5), ("N000", 5), ("N001", 5)]
    with engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.agency_code == "N002").values(agency_code="AG"))
        conn.execute(sa.update(t).where(t.c.staff_code == "X3").values(full_name="Y"))  # same agency
        conn.execute(sa.delete(t).where(t.c.agency_code == "N004", t.c.staff_code != "X4"))
    assert store.agencies_in_view(engine, "") == counted()
    if engine.dialect.name == "postgresql":  # the appended changes fold back to one row per agency
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM agency_headcount")).scalar_one() > 121
        monkeypatch.setattr(store, "HEADCOUNT_FOLD_AT", 0)
        assert store.agencies_in_view(engine, "") == counted()  # read, then folded
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT count(*) FROM agency_headcount")).scalar_one()
        assert rows == len(counted()) and store.agencies_in_view(engine, "") == counted()  # N002 gone
    assert dict(counted())["AG"] == 10 and dict(counted())["N004"] == 1 and "N002" not in dict(counted())
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM att_unit_span"))
        conn.execute(sa.text("DELETE FROM staffrecord") if engine.dialect.name == "sqlite"
                     else sa.text("TRUNCATE staffrecord CASCADE"))  # fmt: skip
    assert store.agencies_in_view(engine, "") == counted() == []


def test_head_counts_of_a_database_migrated_with_its_staff(pg_url: str) -> None:
    """A database that already holds staff records gets their counts when migrated."""
    db.migrate(pg_url, "0009_attnfast")
    eng = db.make_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(
            sa.insert(store.T_STAFF),
            [{"staff_code": f"S{i}", "full_name": "S", "agency_code": f"A{i % 3}", "unit": "U",
              "position": "", "active": True, "updated_at": now_utc()} for i in range(10)],
        )  # fmt: skip
    db.migrate(pg_url)
    assert store.agencies_in_view(eng, "") == [("A0", 4), ("A1", 3), ("A2", 3)]
    eng.dispose()
