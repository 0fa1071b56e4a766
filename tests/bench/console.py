"""Console speed with a national-size database in PostgreSQL (final JSON line).

    uv run python tests/bench/console.py                     # 2.07 M staff and cards, 10 M events
    uv run python tests/bench/console.py --events 2000000    # a scaled run
    uv run python tests/bench/console.py --reuse             # keep the loaded database between runs

1. Load: staff records (Vietnamese names, 96 agencies × units), one card each, and events over
   2,000 readers in 10 units, generated inside PostgreSQL (INSERT … SELECT generate_series: no
   client round trips) with the event and name indexes dropped during the load and built after,
   as the national snapshot load does. Then a month and a half of attendance for one agency
   (``attendance_data``: shifts, assignment, punches, leave and stored person-days, through the
   store's own functions), added once to a kept database.
2. Server time per page: every console page requested N times in-process (FastAPI TestClient: the
   whole request through routing, session, queries and templates) by an unscoped admin, a
   facility manager and an HR officer scoped to one unit (pages a role may not open are left out):
   p50 / p95 / p99 / worst per page, and the same over all of a user's pages. With
   ``--attendance`` also ``hr_live_*``: the agency's pages with a new punch of one of its people
   written (``store.add_punches``, as ingest does) before each request, as while people tap.
3. Name search without diacritics (``search.search``: folded-name prefix on the expression index)
   for random existing names typed without accents: p50 / p95 / p99 / worst; and
   ``name_search_scoped_prefix``: a facility manager of one unit typing short prefixes that match
   many people elsewhere (the case that took seconds before the per-code search).
4. Tap to browser: a gateway (tests/support/console_rig.py) on this database with a virtual reader (the
   real firmware under MicroPython) tapping every 1.5 s, the console's live page open in headless
   Chromium. Each tap is paired with its own row by its journal seq (the row's ``data-ev``), all
   times from the host's wall clock: ``tap_to_browser`` from the reader's PUBLISH written to the
   socket to the row in the page (a MutationObserver stamps it), ``decision_to_browser`` from the
   decision printed, and the split at the gateway's ``received_at``: p50 / p95 / p99 / worst.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "firmware" / "tools"))

from support import pg  # noqa: E402
from toolkit import json_line  # noqa: E402

FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
    "Đinh",
    "Trịnh",
    "Đoàn",
    "Lương",
]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Ngọc", "Thu", "Quang", "Thanh", "Xuân", "Hoàng", "Kim"]
GIVEN = [
    "An",
    "Anh",
    "Bình",
    "Châu",
    "Cường",
    "Dũng",
    "Đạt",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hiếu",
    "Hoa",
    "Hùng",
    "Hương",
    "Khánh",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Minh",
    "Nam",
    "Nga",
    "Ngân",
    "Nhung",
    "Phúc",
    "Phương",
    "Quân",
    "Quỳnh",
    "Sơn",
    "Tâm",
    "Thảo",
    "Thắng",
    "Trang",
    "Trung",
    "Tuấn",
    "Vân",
    "Việt",
    "Xuân",
    "Yến",
]


def _arr(words: list[str]) -> str:
    return "ARRAY[" + ",".join("'" + w + "'" for w in words) + "]"


def load(url: str, staff: int, events: int, readers: int) -> dict[str, float]:
    import psycopg

    t: dict[str, float] = {}
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    cur = conn.cursor()
    cur.execute("SET maintenance_work_mem = '256MB'")
    t0 = time.monotonic()
    # the staff and card indexes (whatever the migrations made) are built after the load
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('staffrecord', 'card')"
        " AND indexname NOT IN ('staffrecord_pkey', 'card_pkey')"
    )
    staff_idx = cur.fetchall()
    for name, _ in staff_idx:
        cur.execute(f"DROP INDEX {name}")
    fam, mid, giv = _arr(FAMILY), _arr(MIDDLE), _arr(GIVEN)
    cur.execute(f"""
        INSERT INTO staffrecord (staff_code, full_name, agency_code, unit, position, active, updated_at)
        SELECT 'NV' || lpad(i::text, 9, '0'),
               ({fam})[1 + (i * 7) % {len(FAMILY)}] || ' ' || ({mid})[1 + (i / 3) % {len(MIDDLE)}]
                 || ' ' || ({giv})[1 + (i * 13 / 7) % {len(GIVEN)}],
               '000.00.' || lpad((i % 96)::text, 2, '0') || '.H' || lpad((i % 10)::text, 2, '0'),
               'Phòng ' || (i % 12), 'Chuyên viên', true, now()
        FROM generate_series(1::bigint, {staff}) AS i""")
    cur.execute(f"""
        INSERT INTO card (serial, staff_code, issuer, gen, status, updated_at, pending_upstream)
        SELECT 10000000 + i, 'NV' || lpad(i::text, 9, '0'), '000.00.' || lpad((i % 96)::text, 2, '0'), 1,
               CASE WHEN i % 50 = 0 THEN 'revoked' ELSE 'issued' END, now(), false
        FROM generate_series(1::bigint, {staff}) AS i""")
    for _, definition in staff_idx:
        cur.execute(definition)
    t["staff_load_s"] = time.monotonic() - t0
    print(f"staff and cards loaded in {t['staff_load_s']:.1f} s", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    cur.execute(f"""
        INSERT INTO reader (id, name, site, unit, role, mac_key_enc, enabled, registered_at, online)
        SELECT 'bench-' || lpad(i::text, 5, '0'), 'Đầu đọc ' || i, 'site-' || (i % 50),
               '000.00.' || lpad((i % 10)::text, 2, '0'), 'door', '\\x00'::bytea, true, now(), false
        FROM generate_series(0, {readers - 1}) AS i""")
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'event' AND indexname <> 'event_pkey'"
    )
    idx = cur.fetchall()
    cons = [r for r in idx if r[0] == "uq_event_reader_seq"]
    if cons:
        cur.execute("ALTER TABLE event DROP CONSTRAINT uq_event_reader_seq")
    for name, _ in idx:
        if name != "uq_event_reader_seq":
            cur.execute(f"DROP INDEX {name}")
    # events: reader r gets every readers-th event; one day ≈ 10 M / 30 days; taps of staff of its unit
    cur.execute(f"""
        INSERT INTO event (reader_id, seq, kind, occurred_at, time_quality, time_corrected, received_at,
                           decision, reason, serial, staff_code, technology, record, mac)
        SELECT 'bench-' || lpad((i % {readers})::text, 5, '0'), i / {readers} + 1, 'tap',
               now() - make_interval(secs => ({events} - i) * 0.26), 2, false,
               now() - make_interval(secs => ({events} - i) * 0.26),
               CASE WHEN i % 23 = 0 THEN 'deny' ELSE 'grant' END,
               CASE WHEN i % 23 = 0 THEN 'no_access' ELSE 'granted' END,
               10000000 + 1 + (i * 7919) % {staff}, 'NV' || lpad((1 + (i * 7919) % {staff})::text, 9, '0'),
               'desfire', '\\xa1'::bytea, '\\x00'::bytea
        FROM generate_series(0::bigint, {events - 1}) AS i""")
    t["events_insert_s"] = time.monotonic() - t0
    print(f"events inserted in {t['events_insert_s']:.1f} s", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    for name, definition in idx:
        if name == "uq_event_reader_seq":
            cur.execute("ALTER TABLE event ADD CONSTRAINT uq_event_reader_seq UNIQUE (reader_id, seq)")
        else:
            cur.execute(definition)
    cur.execute(f"SELECT setval(pg_get_serial_sequence('event', 'id'), {events} + 1)")
    cur.execute("ANALYZE")
    t["events_index_s"] = time.monotonic() - t0
    conn.close()
    return t


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def summary(prefix: str, xs: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": statistics.median(xs) * 1000,
        f"{prefix}_p95_ms": pct(xs, 95) * 1000,
        f"{prefix}_p99_ms": pct(xs, 99) * 1000,
        f"{prefix}_max_ms": max(xs) * 1000,
    }


AGENCY = "000.00.03.H03"  # one agency of the scoped users' unit: 4,312 people of 2.07 M
SHIFT = "bench-hc"  # the agency's office hours (its presence marks a base with attendance data)


def months_of_attendance(today: dt.date) -> tuple[dt.date, str, str]:
    """The first day punched (the 1st of last month), last month and this month ("YYYY-MM")."""
    last = today.replace(day=1) - dt.timedelta(1)
    return last.replace(day=1), last.strftime("%Y-%m"), today.strftime("%Y-%m")


def attendance_data(url: str, today: dt.date) -> dict[str, float]:
    """A real month and a half of attendance for the benchmarked agency, written through the
    product's own store functions (as the commands and the API do): office hours Mon-Fri
    07:30-11:30, 13:00-17:00 (5 min grace) assigned to the agency, each person-day's taps as
    reader punches (late, early, forgotten check-out, absent, double taps, a lunch pair, staying
    late, some Saturday work), some leave, then ``store.refresh_days`` (the periodic refresh)
    computes the stored person-days. Seeded: the same data every time."""
    from gateway import db
    from gateway.attendance import store
    from gateway.attendance.times import VN

    t: dict[str, float] = {}
    t0 = time.monotonic()
    engine = db.make_engine(url)
    first, _, _ = months_of_attendance(today)
    with engine.begin() as conn:
        store.set_shift(conn, SHIFT, "Hành chính", "07:30-11:30,13:00-17:00", "Mon-Fri", 5, 5)
        store.assign(conn, SHIFT, first, None, unit=AGENCY)
        codes = sorted(
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT staff_code FROM staffrecord WHERE agency_code = %s", (AGENCY,)
            )
        )
    rng = random.Random(11)
    rows: list[Any] = []
    leaves: list[tuple[str, str, dt.date, str | None]] = []
    days = [first + dt.timedelta(i) for i in range((today - first).days)]  # up to yesterday

    def at(d: dt.date, minute: int, second: int = 0) -> dt.datetime:
        local = dt.datetime(d.year, d.month, d.day, tzinfo=VN) + dt.timedelta(minutes=minute, seconds=second)
        return local.astimezone(dt.UTC)

    for code in codes:
        for d in days:
            if d.weekday() == 5 and rng.random() < 0.02:  # a Saturday worked: overtime candidate
                taps = [8 * 60 + rng.randrange(30), 11 * 60 + rng.randrange(60)]
            elif d.weekday() >= 5:
                continue
            else:
                r = rng.random()
                if r < 0.015:  # absent
                    continue
                if r < 0.03:
                    leaves.append(
                        (code, rng.choice(("P", "P", "Ô", "CT")), d, rng.choice((None, None, "am", "pm")))
                    )
                    if leaves[-1][3] is None:
                        continue
                arrive = (
                    7 * 60 + 5 + rng.randrange(30) if rng.random() > 0.08 else 7 * 60 + 40 + rng.randrange(50)
                )
                leave = 17 * 60 + rng.randrange(30)
                if rng.random() < 0.05:
                    leave = 16 * 60 + rng.randrange(50)  # early
                elif rng.random() < 0.06:
                    leave = 18 * 60 + rng.randrange(120)  # stayed late: overtime candidate
                taps = [arrive]
                if rng.random() < 0.4:  # a lunch pair
                    taps += [11 * 60 + 30 + rng.randrange(15), 12 * 60 + 50 + rng.randrange(15)]
                if rng.random() > 0.02:  # 2 % forget to check out
                    taps.append(leave)
            for m in taps:
                sec = rng.randrange(60)
                rows.append(store.PunchRow(code, at(d, m, sec), "reader", terminal="bench-00003"))
                if rng.random() < 0.2:  # a double tap 20-90 s later (dropped by the engine)
                    rows.append(store.PunchRow(code, at(d, m, sec + 20 + rng.randrange(70)), "reader"))
    for i in range(0, len(rows), 20_000):
        with engine.begin() as conn:
            store.add_punches(conn, rows[i : i + 20_000])
    with engine.begin() as conn:
        for code, kind, d, half in leaves:
            store.add_leave(conn, code, kind, d, d, half, "nghỉ phép")
    t["attendance_punches"] = len(rows)
    t["attendance_leaves"] = len(leaves)
    t["attendance_load_s"] = time.monotonic() - t0
    print(
        f"{len(rows)} punches, {len(leaves)} leaves in {t['attendance_load_s']:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.monotonic()
    done = store.refresh_days(engine)
    t["attendance_refresh_s"] = time.monotonic() - t0
    t["attendance_refresh_person_months"] = done.person_months
    print(f"stored person-days refreshed in {t['attendance_refresh_s']:.1f} s", file=sys.stderr, flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return t


VN_TZ = dt.timezone(dt.timedelta(hours=7))


def has_attendance(url: str) -> bool:
    import sqlalchemy as sa

    from gateway import db

    engine = db.make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM att_day LIMIT 1")).first()  # set last
    engine.dispose()
    return found is not None


def attendance_months(url: str) -> tuple[str, str]:
    """The full month and the partial one the base's attendance data covers (seeded on some day)."""
    import sqlalchemy as sa

    from gateway import db

    engine = db.make_engine(url)
    with engine.connect() as conn:
        start = conn.execute(
            sa.text("SELECT start FROM att_assignment WHERE shift_id = :s"), {"s": SHIFT}
        ).scalar_one()
    engine.dispose()
    nxt = (start.replace(day=28) + dt.timedelta(4)).replace(day=1)
    return start.strftime("%Y-%m"), nxt.strftime("%Y-%m")


def pages(url: str, n: int, attendance: bool = False, only_attendance: bool = False) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlmodel import Session, select

    from gateway import db
    from gateway.api import ApiContext, create_app
    from gateway.console import accounts, search
    from gateway.models import ConsoleUser
    from gateway.secretbox import SecretBox
    from gateway.settings import Settings
    from gateway.textfold import fold

    engine = db.make_engine(url)
    with Session(engine) as s:
        for name, role, scope in (
            ("bench-admin", "admin", ""),
            ("bench-fac", "facility", "000.00.03"),
            ("bench-hr", "hr", "000.00.03"),
        ):
            accounts.create_user(s, name, "bench-password-1", role, unit_scope=scope, created_by="bench")
        s.commit()
    app = create_app(ApiContext(engine=engine, settings=Settings(), box=SecretBox(os.urandom(32))))
    out: dict[str, Any] = {}
    rng = random.Random(7)
    # every page a user of that role may open (a 403 for a role is skipped, not timed)
    paths = {
        "home": "/console/",
        "doors": "/console/doors",
        "readers": "/console/readers",
        "reader": "/console/readers/bench-00003",
        "reader_config": "/console/readers/bench-00003/config",
        "search": "/console/cards?q=nguyen+van+an",
        "card": "/console/cards/10000003",
        "sync": "/console/sync",
        "audit": "/console/audit",
        "users": "/console/users",
        "account": "/console/account",
        "attendance_changes": "/console/attendance/changes",
    }
    if attendance:  # the month's timesheet computed per request (gateway/attendance/store.py)
        if only_attendance:
            paths = {}
        # a scope larger than the page computes gets the agency picker; one agency is computed
        paths["attendance"] = "/console/attendance"
        paths["attendance_overtime"] = "/console/attendance/overtime"
        # the agency with its punches, shifts and stored person-days: the month seeded up to its
        # last day (``_month``: a whole month) and the one after it, up to the day it was seeded
        full, part = attendance_months(url)
        paths["attendance_agency"] = f"/console/attendance?unit={AGENCY}&month={part}"
        paths["attendance_overtime_agency"] = f"/console/attendance/overtime?unit={AGENCY}&month={part}"
        paths["attendance_agency_month"] = f"/console/attendance?unit={AGENCY}&month={full}"
        paths["attendance_overtime_agency_month"] = f"/console/attendance/overtime?unit={AGENCY}&month={full}"
    import re

    for user in ("bench-admin", "bench-fac", "bench-hr"):
        c = TestClient(app)
        page = c.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = c.post(
            "/console/login",
            data={"csrf": csrf, "username": user, "password": "bench-password-1"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        allt: list[float] = []
        who = user[6:]
        for label, path in paths.items():
            if c.get(path).status_code in (403, 404):  # not this role's page (the first request warms)
                continue
            times, cpu = [], []
            for _ in range(n):
                t0, c0 = time.perf_counter(), time.process_time()
                r = c.get(path)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert r.status_code == 200, (path, r.status_code, r.text[:200])
            out[f"{who}_{label}_p50_ms"] = statistics.median(times) * 1000
            out[f"{who}_{label}_p95_ms"] = pct(times, 95) * 1000
            out[f"{who}_{label}_p99_ms"] = pct(times, 99) * 1000
            out[f"{who}_{label}_max_ms"] = max(times) * 1000
            # this process's CPU (client and server; not PostgreSQL's): wall time minus waiting
            # for a machine shared with other jobs
            out[f"{who}_{label}_cpu_p95_ms"] = pct(cpu, 95) * 1000
            allt += times
        if allt:
            out.update(summary(f"page_{who}", allt))
        if attendance and who == "hr":
            out.update(live_pages(c, engine, {k: v for k, v in paths.items() if "_agency" in k}, n, rng))
    # name search without diacritics, straight on the search function (the page adds ~1 ms)
    with Session(engine) as s:
        admin = accounts.principal_of(
            s.exec(select(ConsoleUser).where(ConsoleUser.username == "bench-admin")).one()
        )
        fac = accounts.principal_of(
            s.exec(select(ConsoleUser).where(ConsoleUser.username == "bench-fac")).one()
        )
        times, hits = [], 0
        for i in range(300):
            name = f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
            t0 = time.perf_counter()
            found = search.search(s, admin if i % 2 else fac, fold(name))
            times.append(time.perf_counter() - t0)
            hits += bool(found)
    out.update(summary("name_search", times))
    out["name_search_queries_with_hits"] = hits
    # a scoped user typing a name's first letters: many matches elsewhere, few or none in scope
    # (the bench's names follow the row number, so unit 000.00.03 has no Nguyễn at all)
    prefixes = [fold(f)[:2] for f in FAMILY] + [fold(f) for f in FAMILY]
    prefixes += [fold(f"{f} {m}") for f in FAMILY[:6] for m in MIDDLE[:4]]
    with Session(engine) as s:
        times = []
        for q in prefixes:
            t0 = time.perf_counter()
            search.search(s, fac, q)
            times.append(time.perf_counter() - t0)
    out.update(summary("name_search_scoped_prefix", times))
    engine.dispose()
    return out


def tap_to_browser(url: str, taps: int) -> dict[str, Any]:
    """Each tap followed by its own marker, every time from the host's wall clock: the reader
    prints its decision and, once written to the socket, its PUBLISH with the journal seq and
    ``time.time_ns()``; the gateway stamps ``received_at``; the page's rows carry
    ``data-ev="<reader>/<seq>"`` and a MutationObserver stamps each with ``Date.now()``."""
    import pytest
    import sqlalchemy as sa
    from playwright.sync_api import sync_playwright
    from support.console_rig import PASSWORD, READER_A, Rig, wait

    from gateway import db

    # The generated readers carry no real key (sealed under this gateway's master key, made by the
    # rig): disabled, so the key cache skips them; they stay in every page and query.
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE reader SET enabled = false WHERE id LIKE 'bench-%'"))
    engine.dispose()
    tmp = Path(tempfile.mkdtemp(prefix="cbcc-bench-console-"))
    mp = pytest.MonkeyPatch()
    mp.setenv("CBCC_PASSPHRASE", "bench-console-passphrase")
    rig = Rig(tmp, url, period_ms=1500, run_s=60 + taps * 2, trace_publish=True)
    out: dict[str, Any] = {}
    try:
        rig.start(mp)
        vr = rig.readers[READER_A]
        wait(lambda: bool(vr.decisions()), 120, "first tap")
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = b.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True).new_page()
            page.goto(f"{rig.base}/console/login")
            page.fill("#username", "baove-snv")
            page.fill("#password", PASSWORD)
            page.press("#password", "Enter")
            page.wait_for_url(f"{rig.base}/console/")
            page.wait_for_selector("#feed[data-connected='1']")
            page.evaluate("""() => { window.seen = [];
                new MutationObserver(ms => { const t = Date.now(); for (const m of ms)
                  for (const n of m.addedNodes) if (n.nodeType === 1 && n.dataset.ev)
                    window.seen.push([t, n.dataset.ev]); })
                .observe(document.getElementById('feed'), {childList: true}); }""")
            t_start = time.time()
            wait(
                lambda: sum("seq" in d for _, d in vr.decisions(t_start)) >= taps + 1,
                taps * 3 + 30,
                "taps",
            )
            time.sleep(3)
            seen: list[list[Any]] = page.evaluate("() => window.seen")
            b.close()
        decided = {d["seq"]: d["t_ms"] / 1000 for _, d in vr.decisions(t_start) if "seq" in d}
        published = {d["published"]: d["t_ms"] / 1000 for _, d in list(vr.lines) if "published" in d}
        shown = {int(ev.rsplit("/", 1)[1]): ms / 1000 for ms, ev in seen if ev.startswith(READER_A + "/")}
        engine = db.make_engine(url)
        with engine.connect() as conn:
            received = {
                seq: db.utc(at).timestamp()
                for seq, at in conn.execute(
                    sa.text("SELECT seq, received_at FROM event WHERE reader_id = :r AND kind = 'tap'"),
                    {"r": READER_A},
                )
            }
        engine.dispose()
        seqs = sorted(decided)[:taps]
        names = ("tap_to_browser", "decision_to_browser", "publish_to_received", "received_to_browser")
        lat: dict[str, list[float]] = {k: [] for k in names}
        for seq in seqs:
            row = shown.get(seq)
            if row is None:
                continue
            lat["decision_to_browser"].append(row - decided[seq])
            if seq in published:
                lat["tap_to_browser"].append(row - published[seq])
                if seq in received:
                    lat["publish_to_received"].append(received[seq] - published[seq])
            if seq in received:
                lat["received_to_browser"].append(row - received[seq])
        out["tap_to_browser_taps"] = len(seqs)
        # what the earlier pairing (each decision with the next row after it, host-stamped) missed
        mine = vr.decisions(t_start)
        out["tap_decisions_not_journalled"] = sum("seq" not in d for _, d in mine)
        lag = [t - d["t_ms"] / 1000 for t, d in mine if "t_ms" in d]
        if lag:
            out["decision_host_stamp_lag_p50_ms"] = statistics.median(lag) * 1000
            out["decision_host_stamp_lag_max_ms"] = max(lag) * 1000
        out["tap_to_browser_rows_missing"] = sum(seq not in shown for seq in seqs)
        for k, xs in lat.items():
            if xs:
                out.update(summary(k, xs))
    finally:
        rig.stop()
        mp.undo()
    return out


def live_pages(c: Any, engine: Any, paths: dict[str, str], n: int, rng: random.Random) -> dict[str, float]:
    """The agency's pages as they are used while people tap: before each request a new punch of
    someone of the agency (``store.add_punches``, as ingest does) on a day of the page's month, so
    the kept month recomputes that person and the page derives its parts again (``hr_live_*``;
    the punch's own time is not counted)."""
    import sqlalchemy as sa

    from gateway.attendance import store

    with engine.connect() as conn:
        q = sa.text("SELECT staff_code FROM staffrecord WHERE agency_code = :a ORDER BY staff_code")
        people = list(conn.execute(q, {"a": AGENCY}).scalars())
    out: dict[str, float] = {}
    allt: list[float] = []
    now = dt.datetime.now(dt.UTC)
    for label, path in paths.items():
        month = path.rsplit("month=", 1)[1][:7]
        first = dt.datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=VN_TZ)
        span = max(60.0, min((now - first).total_seconds(), 28 * 86400.0))
        times = []
        for _ in range(n):
            at = first + dt.timedelta(seconds=rng.uniform(0, span))
            with engine.begin() as conn:
                store.add_punches(conn, [store.PunchRow(rng.choice(people), at.astimezone(dt.UTC), "bench")])
            t0 = time.perf_counter()
            r = c.get(path)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200, (path, r.status_code)
        out.update(summary(f"hr_live_{label.removeprefix('attendance_')}", times))
        allt += times
    out.update(summary("page_hr_live", allt))
    return out


def _url(name: str) -> str:
    return pg.ADMIN.rsplit("/", 1)[0] + "/" + name


def database(a: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """A loaded database for this run. With --reuse, a copy of a kept, loaded one (made by the
    first such run, named after the sizes; a copy because the run adds users, readers, events)."""
    from gateway import db

    if not a.reuse:
        url = pg.create_database("cbcc_bench_console")
        db.migrate(url)
        loaded = load(url, a.staff, a.events, a.readers)
        return url, loaded | attendance_data(url, dt.datetime.now(VN_TZ).date())
    base = f"cbcc_bench_console_base_{a.staff}_{a.events}_{a.readers}"
    timings: dict[str, Any] = {"reused_base": True}
    with pg.admin_connect() as conn:
        have = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (base,)).fetchone()
    if have is None:
        timings["reused_base"] = False
        building = pg.create_database(base + "_loading")
        db.migrate(building)
        timings.update(load(building, a.staff, a.events, a.readers))
        with pg.admin_connect() as conn:  # only a finished load gets the name
            conn.execute(f'ALTER DATABASE "{building.rsplit("/", 1)[1]}" RENAME TO "{base}"')
        print(f"kept the loaded database {base} (drop it when done)", file=sys.stderr, flush=True)
    base_url = _url(base)
    db.migrate(base_url)  # a base kept from before a new migration gets it here
    if not has_attendance(base_url):  # a base kept from before the attendance data
        timings.update(attendance_data(base_url, dt.datetime.now(VN_TZ).date()))
    if a.load_only:
        return "", timings
    name = f"cbcc_bench_console_{uuid.uuid4().hex[:10]}"
    t0 = time.monotonic()
    with pg.admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base}" STRATEGY FILE_COPY')
    timings["copy_s"] = time.monotonic() - t0
    url = _url(name)
    db.migrate(url)  # a base kept from before a new migration gets it here
    return url, timings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--staff", type=int, default=2_070_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--readers", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=40, help="per page and user")
    ap.add_argument("--taps", type=int, default=20)
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep the loaded database (cbcc_bench_console_base_<sizes>) and run on a copy of it",
    )
    ap.add_argument(
        "--attendance",
        action="store_true",
        help="also time the attendance and overtime pages (each computes the month over all its events)",
    )
    ap.add_argument(
        "--only-attendance", action="store_true", help="with --attendance: time only those pages, no taps"
    )
    ap.add_argument("--load-only", action="store_true", help="with --reuse: build the kept database, stop")
    a = ap.parse_args()

    url, timings = database(a)
    if not url:
        return
    try:
        result: dict[str, Any] = {"staff": a.staff, "events": a.events, "readers": a.readers}
        result.update(timings)
        result.update(pages(url, a.requests, a.attendance, a.only_attendance))
        if not a.only_attendance:
            result.update(tap_to_browser(url, a.taps))
        print(json.dumps(result, ensure_ascii=False), file=sys.stderr)
        print(json_line(result))
    finally:
        pg.drop_database(url)


if __name__ == "__main__":
    main()
