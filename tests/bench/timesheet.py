"""Benchmark: the monthly timesheet of 10,000 people, from raw punches to the printable files.

    uv run python tests/bench/timesheet.py [--db both|sqlite|postgresql|URL] [--staff 10000]
                                           [--units 40] [--month 2026-04] [--seed 1] [--late 1000]
                                           [--repeat 3] [--no-vacuum]

Fixture (generated, seeded): ``--staff`` people in ``--units`` units (unit U00 has exactly 200
people, the rest share the others); the last tenth of the units work night shifts 22:00–06:00
on alternating days (Mon/Wed/Fri/Sun or Tue/Thu/Sat), the others office hours 07:30–11:30,
13:00–17:00 Mon–Fri with 5 min grace. Readers in the ``both`` role: every door tap is a punch,
so a person-day has an in, an out, often a lunch pair and 0–5 more taps, 30 % double taps
20–90 s apart and 10 % exact re-sends (dropped by the unique key); 8 % of arrivals late, 5 %
early departures, 2 % forgotten check-outs, 1 % absences, ~3 % of person-days on leave (whole
days and half days, P/Ô/H/CT/KL/Cô). April 2026 by default: the holidays of 27 and 30 April
are in it. The fixture is generated and bulk-loaded (COPY on PostgreSQL, then VACUUM (ANALYZE)
and a checkpoint: the state autovacuum keeps a running gateway in; ``--no-vacuum``: right after
the load) by a loader process of its own, not timed: the timed process's peak RSS is the
product's, not the generator's.

Timed, each in a fresh process per database, each step ``--repeat`` times (default 3):
- ``month_xlsx``: ``store.compute_month`` for everyone + ``render(..., "xlsx")`` (the form
  sheet; with the per-day details sheet: ``xlsx_with_details_*``) — goal ≤ 5 s on
  PostgreSQL; its first run is the process's first query;
- ``initial_refresh_*``: ``store.refresh_days`` filling the stored person-days for the month;
- ``late``: ``--late`` punches of people whose reader was offline on one day arrive
  (``store.add_punches``) and ``store.refresh_days`` makes their rows current — goal ≤ 1 s;
  one batch per repetition, each another day; checked: every affected stored day now shows
  the work, and equals a fresh computation of everyone;
- ``unit200_pdf``: ``compute_month(unit="U00")`` + ``render(..., "pdf")`` — goal ≤ 3 s;
- ``render_*``: the renderers alone on the computed report (no database).
The renderers' own imports (openpyxl, reportlab) are timed apart (``import_renderers_s``).

For each step the final line gives the median, p99 (nearest rank: with a few runs, the worst)
and worst wall time, the median and largest CPU time of this process (``*_cpu_s``,
``*_cpu_max_s``: on a shared machine the wall time includes waiting for a core; the database
server's CPU is in neither) and the 1-minute load average when the step ended; ``rss_after_*_mb``
is the peak RSS after each step; stderr lists every run. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import datetime as dt
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

VN = dt.timezone(dt.timedelta(hours=7))
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ")
MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Quang", "Ngọc", "Thanh", "Xuân")
GIVEN = ("Hằng", "Đức", "Vĩnh", "Thảo", "Hưng", "Phương", "Tuấn", "Yến", "Dũng", "Nguyệt", "Khải", "Ánh")
POSITIONS = ("Chuyên viên", "Chuyên viên chính", "Cán sự", "Trưởng phòng", "Phó Trưởng phòng", "Nhân viên")
LEAVE_KINDS = ("P", "P", "P", "Ô", "H", "CT", "KL", "Cô")
AGENCY = "000.00.31.H26"


# ---- the fixture ----------------------------------------------------------------------------------


def units_of(n_staff: int, n_units: int) -> list[str]:
    """Unit of each person: U00 gets exactly 200 (the PDF case), the others share the rest."""
    first = min(200, n_staff)
    rest = [f"U{1 + i % (n_units - 1):02d}" for i in range(n_staff - first)] if n_units > 1 else []
    return ["U00"] * first + rest


def night_units(n_units: int) -> list[str]:
    k = max(1, n_units // 10)
    return [f"U{u:02d}" for u in range(n_units - k, n_units)]


def us(d: dt.date, minute_of_day: int, second: int = 0) -> int:
    """Local civil minute of date d (may exceed 24 h) -> UTC microseconds."""
    base = dt.datetime(d.year, d.month, d.day, tzinfo=VN)
    base += dt.timedelta(minutes=minute_of_day, seconds=second)
    return int(base.timestamp()) * 1_000_000


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Staff, leave and punches (UTC µs) in memory; the late batch kept aside."""
    rnd = random.Random(args.seed)
    y, m = (int(x) for x in args.month.split("-"))
    dates = [dt.date(y, m, d) for d in range(1, calendar.monthrange(y, m)[1] + 1)]
    holidays = {"2026-04-27", "2026-04-30"} if args.month == "2026-04" else set()
    units = units_of(args.staff, args.units)
    nights = set(night_units(args.units))
    staff = []
    for i, unit in enumerate(units):
        name = f"{rnd.choice(SURNAMES)} {rnd.choice(MIDDLE)} {rnd.choice(GIVEN)}"
        staff.append((f"CB{i:06d}", name, unit, f"{rnd.choice(POSITIONS)} bậc {rnd.randrange(1, 9)}"))
    workdays = [d for d in dates if d.weekday() < 5 and d.isoformat() not in holidays]
    day_staff = [s[0] for s in staff if s[2] not in nights]
    n_off = min(args.late * 11 // 20, len(day_staff))  # some of them are on leave that day
    # Late batch b: the readers of n_off people were offline on one working day; batch 0 is drawn
    # from the fixture's own random stream, the others from their own (the fixture stays the same
    # whatever --repeat is).
    batches = max(1, min(args.repeat, len(workdays) // 2))
    offline_days = [workdays[(len(workdays) // 2 + b) % len(workdays)] for b in range(batches)]
    offline_sets = [set(rnd.sample(day_staff, n_off))]
    offline_sets += [set(random.Random(args.seed * 1000 + b).sample(day_staff, n_off))
                     for b in range(1, batches)]  # fmt: skip
    late_of = {(d, code): b for b, d in enumerate(offline_days) for code in offline_sets[b]}
    leaves: list[tuple[str, str, dt.date, dt.date, str | None]] = []
    punches: list[tuple[str, int]] = []
    late: list[list[tuple[str, int]]] = [[] for _ in range(batches)]
    resent = 0
    for code, _name, unit, _pos in staff:
        night = unit in nights
        if night:
            pattern = {0, 2, 4, 6} if int(unit[1:]) % 2 == 0 else {1, 3, 5}
            days = [d for d in dates if d.weekday() in pattern]
        else:
            days = workdays
        on_leave: dict[dt.date, str | None] = {}
        if rnd.random() < 0.45 and days:
            start = rnd.randrange(len(days))
            length = rnd.choice((1, 1, 1, 2, 3))
            span = days[start:start + length]
            kind = rnd.choice(LEAVE_KINDS)
            if len(span) == 1 and rnd.random() < 0.4 and not night:
                half = rnd.choice(("am", "pm"))
                leaves.append((code, kind, span[0], span[0], half))
                on_leave[span[0]] = half
            else:
                leaves.append((code, kind, span[0], span[-1], None))
                for d in span:
                    on_leave[d] = None
        for d in days:
            if d in on_leave and on_leave[d] is None:
                continue
            if rnd.random() < 0.01:  # absent
                continue
            taps: list[int] = []
            if night:
                taps.append(us(d, 21 * 60 + 40 + rnd.randrange(0, 25)))
                taps += [us(d, 23 * 60 + rnd.randrange(0, 60 * 6)) for _ in range(rnd.randrange(0, 3))]
                if rnd.random() > 0.02:
                    taps.append(us(d, 24 * 60 + 6 * 60 + rnd.randrange(0, 20)))
            else:
                half = on_leave.get(d)
                late_in = rnd.random() < 0.08
                t_in = 13 * 60 - rnd.randrange(0, 15) if half == "am" else (
                    7 * 60 + 30 + rnd.randrange(5, 40) if late_in else 7 * 60 + rnd.randrange(5, 30))
                early_out = rnd.random() < 0.05
                t_out = 11 * 60 + 30 + rnd.randrange(0, 20) if half == "pm" else (
                    16 * 60 + rnd.randrange(15, 55) if early_out else 17 * 60 + rnd.randrange(0, 40))
                taps.append(us(d, t_in, rnd.randrange(60)))
                if half is None and rnd.random() < 0.5:
                    taps.append(us(d, 11 * 60 + 31 + rnd.randrange(0, 10), rnd.randrange(60)))
                    taps.append(us(d, 12 * 60 + 55 + rnd.randrange(0, 8), rnd.randrange(60)))
                taps += [us(d, t_in + 5 + rnd.randrange(0, max(1, t_out - t_in - 10)), rnd.randrange(60))
                         for _ in range(rnd.randrange(0, 6))]
                if rnd.random() > 0.02:
                    taps.append(us(d, t_out, rnd.randrange(60)))
            extra = []
            for t in taps:
                if rnd.random() < 0.3:
                    extra.append(t + rnd.randrange(20, 90) * 1_000_000)  # a double tap
                if rnd.random() < 0.1:
                    resent += 1  # an exact re-send: the unique key drops it
            taps += extra
            b = late_of.get((d, code))
            if b is None:
                punches.extend((code, t) for t in taps)
            else:  # the offline reader's log: in and out
                late[b].extend((code, t) for t in (min(taps), max(taps)))
    return {"staff": staff, "leaves": leaves, "punches": punches, "late": [x[: args.late] for x in late],
            "offline_days": [d.isoformat() for d in offline_days],
            "offline": [sorted(x) for x in offline_sets], "resent": resent, "nights": sorted(nights)}


def load(engine: Any, data: dict[str, Any], month: str, vacuum: bool = True) -> None:
    """Staff records, shifts, unit assignments (through the engine's own functions), then leave and
    punches in bulk; on PostgreSQL then VACUUM (ANALYZE) and a checkpoint (``vacuum``)."""
    import sqlalchemy as sa

    from gateway.attendance import store

    now = dt.datetime.now(dt.UTC)
    y, m = (int(x) for x in month.split("-"))
    first = dt.date(y, m, 1)
    last = dt.date(y, m, calendar.monthrange(y, m)[1])
    with engine.begin() as conn:
        conn.execute(sa.insert(store.T_STAFF), [
            {"staff_code": c, "full_name": n, "agency_code": AGENCY, "unit": u, "position": p, "active": True,
             "updated_at": now} for c, n, u, p in data["staff"]])  # fmt: skip
        store.set_shift(conn, "hc", "Hành chính", "07:30-11:30,13:00-17:00", "Mon-Fri", 5, 5)
        store.set_shift(conn, "dem_a", "Ca đêm A", "22:00-06:00", "Mon,Wed,Fri,Sun", 5, 5)
        store.set_shift(conn, "dem_b", "Ca đêm B", "22:00-06:00", "Tue,Thu,Sat", 5, 5)
        for unit in sorted({s[2] for s in data["staff"]}):
            shift = ("dem_a" if int(unit[1:]) % 2 == 0 else "dem_b") if unit in data["nights"] else "hc"
            store.assign(conn, shift, first, last, unit=unit)
        conn.execute(sa.insert(store.T_LEAVE), [
            {"staff_code": c, "kind": k, "start": s, "end": e, "half": h, "reason": "bench",
             "created_at": now}
            for c, k, s, e, h in data["leaves"]])  # fmt: skip
    rows = sorted(set(data["punches"]))
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            sql = "COPY att_punch (staff_code, at, source, ref, terminal, received_at) FROM STDIN"
            with cur.copy(sql) as cp:
                for code, t in rows:
                    at = dt.datetime.fromtimestamp(t / 1e6, dt.UTC)
                    cp.write_row((code, at, "reader", "", "bench", now))
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO att_punch (staff_code, at, source, ref, terminal, received_at) "
                "VALUES (?, ?, 'reader', '', 'bench', ?)",
                [(c, dt.datetime.fromtimestamp(t / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                  now.strftime("%Y-%m-%d %H:%M:%S.%f")) for c, t in rows])  # fmt: skip
    if engine.dialect.name == "postgresql" and vacuum:
        # The state a running gateway is in: autovacuum visits an insert-only table after every
        # 20 % growth, so the month's punches are all-visible and the index-only scan of
        # (staff_code, at) never reads the heap. Right after a bulk load it fetches every heap row,
        # the first reader sets every row's hint bits (and writes those pages), and autovacuum
        # may start in the middle of a timed run; the checkpoint moves the load's dirty pages out
        # of the timed runs. ``--no-vacuum`` times that state instead.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
            with contextlib.suppress(sa.exc.DBAPIError):  # needs superuser or pg_checkpoint
                conn.exec_driver_sql("CHECKPOINT")
    elif engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


# ---- timing ---------------------------------------------------------------------------------------


CPU: dict[int, list[float]] = {}  # id(times list) -> CPU seconds of this process in each run


def timed(fn: Any, repeat: int) -> tuple[Any, list[float]]:
    """Wall times of ``repeat`` runs; this process's CPU time per run is kept beside them (on a
    shared machine the wall time includes waiting for a core; the CPU time does not — the database
    server's CPU is in neither)."""
    out, times, cpu = None, [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU[id(times)] = cpu
    return out, times


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile, nearest rank (with a few runs p99 is the worst run)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def stats(prefix: str, times: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    cpu = cpu or CPU.get(id(times), [float("nan")])
    runs = ", ".join(f"{t:.3f}" for t in times)
    cpus = ", ".join(f"{c:.3f}" for c in cpu)
    load = os.getloadavg()[0]
    print(f"  {prefix}: {runs} s (cpu {cpus} s, loadavg {load:.2f})", file=sys.stderr, flush=True)
    return {f"{prefix}_median_s": statistics.median(times), f"{prefix}_p99_s": pct(times, 99),
            f"{prefix}_worst_s": max(times), f"{prefix}_cpu_s": statistics.median(cpu),
            f"{prefix}_cpu_max_s": max(cpu), f"{prefix}_loadavg": load}


def rss_mb() -> float:
    """This process's peak RSS so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fixture_args(args: argparse.Namespace) -> list[str]:
    return [f"--{k}={getattr(args, k)}" for k in ("staff", "units", "month", "seed", "late", "repeat")]


def loader(args: argparse.Namespace) -> None:
    """``--phase load``: generate and load the fixture into ``--db`` (a URL), write what the timed
    process needs to check its results to ``--out`` (JSON). A process of its own, so that the
    generated punches (~1.4 M Python tuples) are not in the timed process's peak RSS."""
    from gateway import db

    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    data = generate(args)
    res["generate_s"] = time.perf_counter() - t0
    res["punches_generated"] = len(data["punches"]) + len(data["late"][0]) + data["resent"]
    res["punches_resent_dropped"] = data["resent"]
    res["leave_ranges"] = len(data["leaves"])
    db.migrate(args.db)
    engine = db.make_engine(args.db)
    t0 = time.perf_counter()
    load(engine, data, args.month, vacuum=not args.no_vacuum)
    res["load_s"] = time.perf_counter() - t0
    with engine.connect() as conn:
        res["punches_stored"] = conn.exec_driver_sql("SELECT count(*) FROM att_punch").scalar()
    engine.dispose()
    res["loader_peak_rss_mb"] = rss_mb()
    out = {"res": res, "positions": {c: p for c, _n, _u, p in data["staff"]}, "late": data["late"],
           "offline_days": data["offline_days"], "offline": data["offline"]}
    Path(args.out).write_text(json.dumps(out))


def run_one(args: argparse.Namespace, url: str) -> dict[str, Any]:
    import sqlalchemy as sa

    from gateway.attendance import store
    from gateway.attendance.header import ReportHeader
    from gateway.attendance.render import render

    res: dict[str, Any] = {"db": "postgresql" if url.startswith("postgres") else "sqlite"}
    with tempfile.TemporaryDirectory(prefix="bench-timesheet-") as tmp:
        out = Path(tmp) / "fixture.json"
        cmd = [sys.executable, str(HERE), "--phase=load", f"--db={url}", f"--out={out}", *fixture_args(args)]
        subprocess.run(cmd + (["--no-vacuum"] if args.no_vacuum else []), check=True)
        fx = json.loads(out.read_text())
    res.update(fx["res"])
    res["vacuumed"] = not args.no_vacuum
    print(f"  loaded in {res['load_s']:.1f} s (loader peak RSS {res['loader_peak_rss_mb']:.0f} MB)",
          file=sys.stderr, flush=True)  # fmt: skip
    from gateway import db

    engine = db.make_engine(url)
    positions: dict[str, str] = fx["positions"]
    # The renderers import openpyxl and reportlab on first use: once per process, timed apart.
    t0 = time.perf_counter()
    from gateway.attendance.render import csvfile, pdf, xlsx  # noqa: F401

    res["import_renderers_s"] = time.perf_counter() - t0
    res["rss_start_mb"] = rss_mb()

    def header(unit: str, name: str) -> ReportHeader:
        return ReportHeader("Sở Nội vụ tỉnh Hải Dương", AGENCY, unit, name, args.month, positions)

    # 1. everyone's month, computed and written as XLSX (the first run is the process's first query)
    reports: list[dict[str, Any]] = []

    def month_xlsx() -> int:
        reports.clear()  # the previous run's report is not kept alive while the next is built
        report = store.compute_month(engine, args.month)
        reports.append(report)
        return len(render(report, header("", "Tất cả"), "xlsx", details=False))

    size, times = timed(month_xlsx, args.repeat)
    res.update(stats("month_xlsx", times))
    res["month_xlsx_bytes"] = size
    res["rss_after_month_xlsx_mb"] = rss_mb()
    report = reports[-1]
    res["report_rows"] = len(report["staff"])
    res["report_person_days"] = sum(len(r["days"]) for r in report["staff"])
    reports.clear()

    def month_only() -> None:
        reports.clear()
        reports.append(store.compute_month(engine, args.month))

    _, times = timed(month_only, args.repeat)
    res.update(stats("compute_month", times))

    def renderers(report: dict[str, Any]) -> None:
        """2. the renderers alone on that report"""
        everyone = header("", "Tất cả")
        _, times = timed(lambda: render(report, everyone, "xlsx", details=False), args.repeat)
        res.update(stats("render_xlsx_10k", times))
        res["rss_after_render_xlsx_mb"] = rss_mb()
        _, times = timed(lambda: render(report, everyone, "csv"), args.repeat)
        res.update(stats("render_csv_10k", times))
        _, times = timed(lambda: render(report, everyone, "xlsx", details=True), 1)
        res.update(stats("xlsx_with_details", times))
        res["rss_after_xlsx_with_details_mb"] = rss_mb()

    renderers(reports.pop())
    # 3. stored person-days, then readers' days offline arrive late (one batch per repetition)
    _, times = timed(lambda: store.refresh_days(engine), 1)
    res.update(stats("initial_refresh", times))
    res["rss_after_initial_refresh_mb"] = rss_mb()
    from gateway.attendance.store import PunchRow

    late_t, late_cpu, ins_t, ref_t = [], [], [], []
    for b, batch in enumerate(fx["late"]):
        utc = dt.UTC
        late_rows = [PunchRow(c, dt.datetime.fromtimestamp(t / 1e6, utc), "reader", f"late:{b}:{i}", "bench")
                     for i, (c, t) in enumerate(batch)]  # fmt: skip
        t0, c0 = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            added = store.add_punches(conn, late_rows)
        t1 = time.perf_counter()
        refreshed = store.refresh_days(engine)
        t2, c2 = time.perf_counter(), time.process_time()
        late_t.append(t2 - t0)
        late_cpu.append(c2 - c0)
        ins_t.append(t1 - t0)
        ref_t.append(t2 - t1)
        if b == 0:
            res.update({"late_punches": added, "late_person_months": refreshed.person_months,
                        "late_days_written": refreshed.days_written})  # fmt: skip
    res.update(stats("late", late_t, late_cpu))
    res["late_batches"] = len(late_t)
    res["late_insert_median_s"] = statistics.median(ins_t)
    res["late_refresh_median_s"] = statistics.median(ref_t)
    # checked: every affected stored day shows the work and equals a fresh computation of everyone
    check = store.compute_month(engine, args.month)
    fresh = {(r["staff"], r["unit"]): r["days"] for r in check["staff"]}
    del check
    ok = checked = 0
    t_day = store.T_DAY
    for day, codes in zip(fx["offline_days"], fx["offline"], strict=True):
        q = sa.select(t_day.c.staff_code, t_day.c.unit, t_day.c.data).where(
            t_day.c.day == dt.date.fromisoformat(day), t_day.c.staff_code.in_(codes))
        with engine.connect() as conn:
            stored: dict[str, list[tuple[str, str]]] = {}
            for code, unit, data in conn.execute(q):
                stored.setdefault(code, []).append((unit, data))
        for code in codes:
            hits = stored.get(code, [])
            assert len(hits) == 1, (code, day, hits)
            unit, data = hits[0]
            entry = json.loads(data)
            assert entry == fresh[(code, unit)][day], (code, day, entry)
            ok += entry["symbol"] != "" and entry["in"] is not None and entry["out"] is not None
            checked += 1
    del fresh
    res["late_rows_checked"] = checked
    res["late_rows_now_worked"] = ok
    # 4. a 200-person unit's PDF
    unit_reports: list[dict[str, Any]] = []

    def unit_pdf() -> int:
        r = store.compute_month(engine, args.month, unit="U00")
        unit_reports[:] = [r]
        return len(render(r, header("U00", "Phòng U00"), "pdf"))

    size, times = timed(unit_pdf, args.repeat)
    res.update(stats("unit200_pdf", times))
    res["unit200_rows"] = len(unit_reports[-1]["staff"])
    res["unit200_pdf_bytes"] = size
    _, times = timed(lambda: render(unit_reports[-1], header("U00", "Phòng U00"), "pdf"), args.repeat)
    res.update(stats("render_pdf_200", times))
    res["peak_rss_mb"] = rss_mb()
    res["loadavg_1min_end"] = os.getloadavg()[0]
    engine.dispose()
    return res


def child(args: argparse.Namespace) -> None:
    url = args.db
    cleanup: Any = None
    if url == "sqlite":
        tmp = tempfile.mkdtemp(prefix="bench-timesheet-")
        url = f"sqlite:///{tmp}/gw.db"
        cleanup = lambda: shutil.rmtree(tmp, ignore_errors=True)  # noqa: E731 - ~350 MB
    elif url == "postgresql":
        from support.pg import create_database, drop_database

        url = create_database("cbcc_bench_timesheet")
        cleanup = lambda: drop_database(url)  # noqa: E731
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: drop the database
    try:
        print(json.dumps(run_one(args, url)), flush=True)
    finally:
        if cleanup:
            cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="both")
    ap.add_argument("--staff", type=int, default=10_000)
    ap.add_argument("--units", type=int, default=40)
    ap.add_argument("--month", default="2026-04")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--late", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-vacuum", action="store_true", help="PostgreSQL: time right after the bulk load")
    ap.add_argument("--phase", default="", help=argparse.SUPPRESS)  # internal: "load" (the loader)
    ap.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase == "load":
        loader(args)
        return
    if args.db != "both":
        child(args)
        return
    out: dict[str, Any] = {"staff": args.staff, "units": args.units, "month": args.month}
    for kind in ("postgresql", "sqlite"):
        cmd = [sys.executable, str(HERE), "--db", kind, *fixture_args(args)]
        proc = subprocess.run(cmd + (["--no-vacuum"] if args.no_vacuum else []),
                              capture_output=True, text=True, env=dict(os.environ))  # fmt: skip
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            err = proc.stderr.strip()
            out[f"{kind[:2]}_error"] = err.splitlines()[-1] if err else "failed"
            continue
        sys.stderr.write(proc.stderr)
        one = json.loads(proc.stdout.strip().splitlines()[-1])
        one.pop("db")
        for k, v in one.items():
            key = f"{'pg' if kind == 'postgresql' else 'sqlite'}_{k}"
            out[key] = round(v, 3) if isinstance(v, float) else v
        print(json.dumps({kind: one}), flush=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
