"""The pieces ``cbcc demo`` adds around its readers: the timesheet it checks against its script,
and the offline reader's network cable."""

from __future__ import annotations

import copy
import socket
import threading
from datetime import date
from pathlib import Path

import pytest

from cbcc import demo_tour as tour
from cbcc.demo_link import Link
from gateway.db import make_engine, migrate

TODAY = date(2026, 3, 11)  # a Wednesday: last month complete, this month so far


def _sheets(tmp_path: Path) -> tuple[dict[str, object], dict[str, object]]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrate(url)
    engine = make_engine(url)
    assert tour.staff_records(engine) == len(tour.AGENCY)
    got = tour.attendance(engine, TODAY)
    assert got["imported"] == got["days"] * 3 * 2  # three people punch in and out each workday
    files = tour.timesheet(engine, tmp_path, "2026-02", "vi", ("xlsx",))
    assert files[0].read_bytes()[:2] == b"PK"
    return tour.month_days(engine, "2026-02"), tour.month_days(engine, "2026-03")


def test_the_scripted_month_is_what_the_demo_checks(tmp_path: Path) -> None:
    last, this = _sheets(tmp_path)
    assert tour.check_timesheet(last, this, TODAY, {}) == []
    # Nobody punched today in this run: the live-punch check must say so.
    problems = tour.check_timesheet(last, this, TODAY, {"CB010012345": "Nguyễn Thị Hương"})
    assert problems == ["timesheet 2026-03: Nguyễn Thị Hương's punch of today is missing"]
    # A timesheet that lost Minh's late arrival is caught.
    wrong = copy.deepcopy(last)
    for row in wrong["staff"]:  # type: ignore[attr-defined]
        if row["staff"] == tour.LATE:
            row["totals"]["late_count"] = 0
    assert any("late_count = 0" in p for p in tour.check_timesheet(wrong, this, TODAY, {}))


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
