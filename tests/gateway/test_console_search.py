"""The console's name search on PostgreSQL (gateway/console/search.py): a scoped search reads each
agency code's matches from ``ix_staffrecord_unit_name`` and gives the same people, in the same
order, as checking every row in Python would — also past the codes cap (name first) and for
prefixes at the edges of the byte order. Real PostgreSQL (tests/support/pg.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session
from support import pg

from gateway import db
from gateway.auth import Principal, in_scope
from gateway.console import search
from gateway.models import StaffRecord
from gateway.textfold import fold

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
NAMES = ["Nguyễn Văn An", "Nguyễn Văn Anh", "Nguyễn Thị Ánh", "Trần Văn An", "Đặng Thị Đào", "Lê Zy", "Ngô Ư"]
CODES = ["H01", "H01.01", "H01.02", "H01.02.07", "H01-9", "H010", "H02.01", "H02"]


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    url = pg.create_database()  # one for the module: the parametrized searches only read it
    db.migrate(url)
    eng = db.make_engine(url)
    rng = random.Random(5)
    with Session(eng) as s:
        for i in range(600):
            s.add(
                StaffRecord(
                    staff_code=f"S{i:04d}",
                    full_name=rng.choice(NAMES),
                    agency_code=rng.choice(CODES),
                    updated_at=T0,
                )
            )
        s.commit()
    with eng.begin() as conn:
        conn.execute(sa.text("ANALYZE staffrecord"))
    yield eng
    eng.dispose()
    pg.drop_database(url)


def expected(s: Session, scope: str, query: str, limit: int) -> list[str]:
    rows = [r for r in s.exec(sa.select(StaffRecord)).scalars() if in_scope(scope, r.agency_code)]  # type: ignore[call-overload]
    rows = [r for r in rows if fold(r.full_name).startswith(fold(query))]
    rows.sort(key=lambda r: (fold(r.full_name).encode(), r.staff_code))
    return [r.staff_code for r in rows[:limit]]


@pytest.mark.parametrize("scope", ["", "H01", "H01.02", "H01.", "H02", "H0", "H03"])
@pytest.mark.parametrize("query", ["nguyen van an", "nguyen", "ng", "le zy", "ngo u", "dang thi dao", "zz"])
@pytest.mark.parametrize("cap", [search.MAX_CODES, 2])
def test_scoped_search_matches_brute_force(
    engine: Engine, scope: str, query: str, cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "MAX_CODES", cap)  # 2: the scopes with more codes read name first
    who = Principal("t", "t", "facility" if scope else "admin", scope)
    with Session(engine) as s:
        got = [h.staff.staff_code for h in search.search(s, who, query, limit=20)]
        assert got == expected(s, scope, query, 20)


def test_byte_order_edges() -> None:
    assert search._after("ab") == "ac"
    assert search._after("a\U0010ffff") is None
    assert search._after("a\ud7ff") is None  # the next code point is a surrogate


def test_scoped_branches_use_the_unit_index_without_a_filter(engine: Engine) -> None:
    """Each agency code's branch is an index range (no per-row fold in a filter)."""
    stmts: list[tuple[str, object]] = []

    def grab(conn: object, cursor: object, statement: str, params: object, *rest: object) -> None:
        stmts.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", grab)
    try:
        with Session(engine) as s:
            search.search(s, Principal("t", "t", "facility", "H01"), "nguyen van", limit=20)
    finally:
        sa.event.remove(engine, "before_cursor_execute", grab)
    union, params = next((st, p) for st, p in stmts if "UNION ALL" in st and "RECURSIVE" not in st)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.execute("SET enable_seqscan = off")
        cur.execute("SET enable_bitmapscan = off")
        cur.execute("EXPLAIN " + union, params)
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "ix_staffrecord_unit_name" in plan and "ix_staffrecord_name_fold" not in plan, plan
    assert "Filter" not in plan, plan
