"""The pieces ``cbcc demo`` adds around its readers: its people from the national simulator through
the sync, the story day, the timesheet it checks against its script (imported history and the
terminal's live taps), and the offline reader's network cable."""

from __future__ import annotations

import copy
import json
import socket
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cbcc import demo_tour as tour
from cbcc.demo_link import Link
from gateway.attendance import store
from gateway.db import make_engine, migrate
from gateway.models import StaffRecord
from gateway.national.feed import HttpChangeFeed
from gateway.national.sync import sync_feed
from simulators.national import NationalSim, create_app

TODAY = date(2026, 3, 11)  # a Wednesday: last month complete, this month so far; story day Tue 10th


def _synced_engine(tmp_path: Path) -> Engine:
    """A gateway database whose staff records came from the simulator through the real sync."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate(url)
    engine = make_engine(url)
    sim = NationalSim(seed=7, records=192, history=0)
    sim.enrol(tour.national_people())
    feed = HttpChangeFeed("http://testserver", client=TestClient(create_app(sim)), prefetch=False)
    sync_feed(engine, feed)
    return engine


def _live_day(engine: Engine, day: date) -> None:
    """The attendance terminal's punches of the story day, as ingest stores them."""
    rows = [
        store.PunchRow(code, datetime.fromtimestamp(tour.at(day, hms) / 1000, UTC), "reader",
                       f"event:hn-snv-cham-cong:{n}", "hn-snv-cham-cong")
        for n, (code, hms) in enumerate([*tour.LIVE_IN.items(), *tour.LIVE_OUT.items()])
    ]  # fmt: skip
    with engine.begin() as conn:
        store.add_punches(conn, rows)


def test_the_agency_comes_from_the_national_simulator_through_the_sync(tmp_path: Path) -> None:
    engine = _synced_engine(tmp_path)
    assert tour.agency_synced(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(StaffRecord)).scalar_one() == 192 + 5


def test_named_people_in_the_simulator_feed_and_snapshot() -> None:
    sim = NationalSim(seed=3, records=192, history=10)
    head = sim.enrol([{"code": "CB010012345", "full_name": "Nguyễn Thị Hương", "agency_code": "000.00.31.H26",
                       "unit": "Phòng Tổ chức cán bộ", "position": "Trưởng phòng"}])  # fmt: skip
    assert head == 192 + 10 + 1
    change = json.loads(sim.page(head - 1, 10))["changes"][0]
    assert change["kind"] == "staff.created" and change["staff"]["full_name"] == "Nguyễn Thị Hương"
    _as_of, staff, _cards, chunks = sim.snapshot()
    rows = [json.loads(line) for line in b"".join(chunks).decode().splitlines()[1 : 1 + staff]]
    codes = [r[0] for r in rows]
    assert "CB010012345" in codes and codes == sorted(codes) and len(codes) == len(set(codes))
    with pytest.raises(ValueError, match="own code pattern"):
        sim.enrol([{"code": "CB00000001", "full_name": "X"}])


def test_the_story_day_is_the_last_working_day_before_today() -> None:
    assert tour.story_day(TODAY) == date(2026, 3, 10)
    assert tour.story_day(date(2026, 3, 16)) == date(2026, 3, 13)  # Monday: last Friday


def test_the_scripted_month_is_what_the_demo_checks(tmp_path: Path) -> None:
    engine = _synced_engine(tmp_path)
    day = tour.story_day(TODAY)
    got, expect = tour.attendance(engine, TODAY, day)
    assert got["imported"] == got["days"] * 3 * 2  # three people punch in and out each workday before it
    files = tour.timesheet(engine, tmp_path, "2026-02", "vi", ("xlsx",))
    assert files[0].read_bytes()[:2] == b"PK"
    # Before the terminal's live taps the story day is missing: the check must say so.
    sheets = [tour.month_days(engine, m) for m in ("2026-02", "2026-03")]
    problems = tour.check_timesheet(sheets, expect, day)
    assert any("Đỗ Quang Minh on 2026-03-10" in p and "from the terminal's live taps" in p for p in problems)
    _live_day(engine, day)
    store.refresh_days(engine)
    sheets = [tour.month_days(engine, m) for m in ("2026-02", "2026-03")]
    assert tour.check_timesheet(sheets, expect, day) == []
    march = {r["staff"]: r for r in sheets[1]["staff"]}
    assert march[tour.LATE]["days"]["2026-03-10"]["flags"] == ["late"]
    assert march[tour.LATE]["totals"]["late_count"] == 2  # the imported 2nd workday and the live day
    # A timesheet that lost Minh's late arrival is caught.
    wrong = copy.deepcopy(sheets)
    for row in wrong[0]["staff"]:
        if row["staff"] == tour.LATE:
            row["totals"]["late_count"] = 0
    assert any("late_count = 0" in p for p in tour.check_timesheet(wrong, expect, day))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_offline_link_refuses_until_plugged_in_then_forwards() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo() -> None:
        conn, _a = server.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    link = Link(server.getsockname()[1], _free_port())
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(link.addr, timeout=2)
        link.up()
        with socket.create_connection(link.addr, timeout=5) as c:
            c.sendall(b"journal")
            assert c.recv(1024) == b"journal"
    finally:
        link.close()
        server.close()
