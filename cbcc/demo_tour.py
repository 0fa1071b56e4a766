"""The office around the readers in ``cbcc demo``: staff records, cards issued through the encoder,
console accounts, a shift and the month's timesheet.

Each step calls the product's own code (the issuance service, the console's account store, the
attendance store and renderers) on the demo gateway's SQLite database, so what the newcomer sees
is what an agency gets; only the inputs are scripted.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from cbcc.issuance.service import Issuer, Staff, Station, issue_card
from gateway.attendance import report as reports
from gateway.attendance import store
from gateway.console import accounts
from gateway.models import StaffRecord, now_utc
from provisioning.card_keys import CardMasterKeys
from provisioning.encoders.rfstack import VirtualEncoder, blank_card
from trustcore import keys
from trustcore.trust_list import IssuerEntry

VN = timezone(timedelta(hours=7))
SHIFT = "hanh-chinh"
SHIFT_SESSIONS = "07:30-11:30,13:30-17:00"
STATION = Station(operator="demo.operator", station="demo-quay-1")

# The demo agency (Sở Nội vụ Hà Nội) and one ministry official: the people whose cards the trust-core
# demo minted, as the national database would describe them.
AGENCY = [
    Staff("CB-01-0012345", "Nguyễn Thị Hương", "000.00.31.H26", "Phòng Tổ chức cán bộ", "Trưởng phòng"),
    Staff("CB-00-0000042", "Trần Văn Đức", "000.00.00.G09", "Vụ Công chức - Viên chức", ""),
    Staff("CB-01-0099017", "Lê Minh Tuấn", "000.00.31.H26", "Văn phòng Sở", ""),
    Staff("CB-01-0077050", "Phạm Thu Trang", "000.00.31.H26", "Phòng Công chức", ""),
    Staff("CB-01-0033120", "Đỗ Quang Minh", "000.00.31.H26", "Phòng Tổ chức cán bộ", "Chuyên viên"),
]
# Cards personalised on blank DESFire EV3 chips through the virtual encoder (name → staff code).
# Each card is signed by its holder's issuing authority (the trust-core demo's issuers "hn", "bnv").
ISSUED = {"huong": ("CB-01-0012345", "hn"), "duc": ("CB-00-0000042", "bnv")}


def staff_records(engine: Engine) -> int:
    """The agency's staff records (what the national sync would have left in the database)."""
    with Session(engine) as s:
        for st in AGENCY:
            s.merge(StaffRecord(staff_code=st.staff_code, full_name=st.name, agency_code=st.agency,
                                unit=st.unit, position=st.position, updated_at=now_utc()))  # fmt: skip
        s.commit()
    return len(AGENCY)


@dataclass
class CardOnDesk:
    name: str
    serial: int
    uid: bytes
    image: Path
    steps: int


def issue_cards(engine: Engine, work: Path, signers: dict[str, tuple[Any, IssuerEntry]],
                card_keys: CardMasterKeys, now: int) -> list[CardOnDesk]:  # fmt: skip
    """Personalise a blank simulated DESFire card per person in ``ISSUED`` through the virtual encoder
    (the same ``issue_card`` ``cbcc card issue`` runs), and save each card as the image a virtual
    reader taps."""
    by_code = {st.staff_code: st for st in AGENCY}
    out = []
    for i, (name, (code, slug)) in enumerate(ISSUED.items()):
        st = by_code[code]
        key, entry = signers[slug]
        issuer = Issuer(key, entry, st.agency, card_keys)
        enc = VirtualEncoder()
        chip = blank_card(bytes([0x04, 0xD3, 0x40, 0x00, 0x00, i + 1, 0x80]))
        enc.place(chip)
        steps: list[str] = []
        got = issue_card(engine, enc, issuer, st, STATION, now=now, on_step=steps.append)
        image = work / f"{name}.card.json"
        # The chip's memory holds its diversified keys: private like every secret file.
        keys.write_new_file(image, json.dumps(chip.image()).encode(), private=True)
        out.append(CardOnDesk(name, got.serial, got.uid, image, got.exchanges))
    return out


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    scope: str


def console_accounts(engine: Engine) -> list[Login]:
    """An administrator and an HR officer of the agency, with fresh passwords shown once."""
    made = [Login("admin", secrets.token_urlsafe(12), "admin", ""),
            Login("nhansu", secrets.token_urlsafe(12), "hr", "000.00.31")]  # fmt: skip
    with Session(engine) as s:
        for login in made:
            accounts.create_user(s, login.username, login.password, login.role, unit_scope=login.scope,
                                 full_name="Quản trị hệ thống" if login.role == "admin" else "Phòng Nhân sự",
                                 created_by="cbcc demo")  # fmt: skip
        s.commit()
    return made


def _workdays(first: date, last: date) -> list[date]:
    """The working days from ``first`` to ``last`` (inclusive) by the attendance calendar itself:
    Mon–Fri, less public holidays and days off, plus compensatory working days."""
    from gateway.attendance import calendar

    cal = calendar.build(range(first.year, last.year + 1))
    d, out = first, []
    while d <= last:
        kind = cal.kind(d)
        if kind == "workday" or (d.weekday() < 5 and kind == ""):
            out.append(d)
        d += timedelta(days=1)
    return out


def previous_month(today: date) -> str:
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


LATE, EARLY = "CB-01-0033120", "CB-01-0012345"  # Minh comes in late, Hương leaves early: once a month
NO_PUNCH = ("CB-01-0077050", "CB-01-0099017")  # expired card / lost card: no punches


def attendance(engine: Engine, today: date) -> dict[str, int]:
    """The office-hours shift for the agency from the 1st of last month, and every workday since then
    up to yesterday as the old terminal's punch file had it (in 07:2x, out 17:0x; on each month's
    2nd workday Minh is 18 min late, on its 3rd Hương leaves 40 min early)."""
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    rows = []
    nth: dict[int, int] = {}
    for d in _workdays(first, today - timedelta(days=1)):
        n = nth[d.month] = nth.get(d.month, -1) + 1
        for st in AGENCY:
            if st.staff_code in NO_PUNCH:
                continue
            late = st.staff_code == LATE and n == 1
            early = st.staff_code == EARLY and n == 2
            t_in = datetime(d.year, d.month, d.day, 7, 48 if late else 22 + n % 6, tzinfo=VN)
            t_out = datetime(
                d.year, d.month, d.day, 16 if early else 17, 20 if early else 3 + n % 5, tzinfo=VN
            )
            ref = f"demo:{d}:{st.staff_code}"
            rows += [
                store.PunchRow(st.staff_code, t.astimezone(UTC), "import", f"{ref}:{k}", "may-cham-cong-cu")
                for k, t in enumerate((t_in, t_out))
            ]
    with engine.begin() as conn:
        store.set_shift(conn, SHIFT, "Giờ hành chính", SHIFT_SESSIONS, "Mon-Fri", 5, 5)
        for unit in ("000.00.31.H26", "000.00.00.G09"):
            store.assign(conn, SHIFT, first, None, unit=unit)
        added = store.add_punches(conn, rows)
    return {"imported": added, "days": sum(v + 1 for v in nth.values())}


def timesheet(engine: Engine, work: Path, month: str, lang: str, fmts: tuple[str, ...] = ("xlsx", "pdf")
              ) -> list[Path]:  # fmt: skip
    """The month's timesheet (Bảng chấm công, C01-HD) in ``work``, one file per format."""
    store.refresh_days(engine)
    out = []
    for fmt in fmts:
        data = reports.produce(engine, month, None, None, fmt, lang, actor="cbcc demo", role="cli")
        path = work / f"bang-cham-cong-{month}.{fmt}"
        path.write_bytes(data)
        out.append(path)
    return out


def month_days(engine: Engine, month: str) -> dict[str, Any]:
    """The timesheet's JSON (the attendance contract) for the checks."""
    return dict(json.loads(reports.produce(engine, month, None, None, "json", "vi", actor="cbcc demo",
                                           role="cli")))  # fmt: skip


def check_timesheet(last: dict[str, Any], this: dict[str, Any], today: date,
                    live: dict[str, str]) -> list[str]:  # fmt: skip
    """What must hold in the two timesheets (last month complete, this month so far) for the script
    the demo played; the problems found (empty: right). ``live``: staff code → a name whose card
    punched at the attendance terminal today."""
    problems = []
    rows = {r["staff"]: r for r in last["staff"]}
    missing = [st.staff_code for st in AGENCY if st.staff_code not in rows]
    if missing:
        problems.append(f"timesheet {last['month']}: {', '.join(missing)} missing")
    expect = {LATE: ("late_count", 1), EARLY: ("early_count", 1)}
    for code, (field_, n) in expect.items():
        got = rows.get(code, {}).get("totals", {}).get(field_)
        if got != n:
            problems.append(f"timesheet {last['month']}: {code} {field_} = {got}, expected {n}")
    for code in NO_PUNCH:
        got = rows.get(code, {}).get("totals", {}).get("work_days")
        if got != 0:
            problems.append(f"timesheet {last['month']}: {code} worked {got} days, expected 0")
    days = len(_workdays(date.fromisoformat(last["month"] + "-01"), today.replace(day=1) - timedelta(days=1)))
    for code in ("CB-00-0000042", LATE):
        got = rows.get(code, {}).get("totals", {}).get("work_days")
        if got != days:
            problems.append(f"timesheet {last['month']}: {code} worked {got} days, expected {days}")
    now_rows = {r["staff"]: r for r in this["staff"]}
    for code, name in live.items():
        day = now_rows.get(code, {}).get("days", {}).get(today.isoformat(), {})
        if not day.get("in"):
            problems.append(f"timesheet {this['month']}: {name}'s punch of today is missing")
    return problems


def console_login(base: str, login: Login) -> str | None:
    """Sign in to the web console over HTTP with a printed login, as a browser does (form + CSRF
    cookie) and open its first page; a problem, or None when it worked."""
    import httpx

    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as web:
        form = web.get("/console/login")
        token = web.cookies.get("cbcc_login_csrf")
        if form.status_code != 200 or not token:
            return f"console login page: HTTP {form.status_code}"
        r = web.post("/console/login", data={"csrf": token, "username": login.username,
                                             "password": login.password, "next": "/console/"})  # fmt: skip
        if r.status_code not in (302, 303):
            return f"console login as {login.username}: HTTP {r.status_code}"
        home = web.get("/console/")
        if home.status_code != 200:
            return f"console home page as {login.username}: HTTP {home.status_code}"
    return None


def wait_national_sync(engine: Engine, head: int, timeout_s: float) -> dict[str, int]:
    """Wait until the gateway's national sync has applied change ``head``; what it holds then."""
    import time

    import sqlalchemy as sa

    from gateway.models import Card
    from gateway.national.sync import get_cursor

    deadline = time.monotonic() + timeout_s
    cursor = 0
    while time.monotonic() < deadline:
        text = get_cursor(engine)
        cursor = int(text) if text.isdigit() else 0
        if cursor >= head:
            break
        time.sleep(0.2)
    with engine.connect() as conn:
        staff = conn.execute(sa.select(sa.func.count()).select_from(StaffRecord)).scalar_one()
        cards = conn.execute(sa.select(sa.func.count()).select_from(Card)).scalar_one()
    return {"cursor": cursor, "staff": int(staff), "cards": int(cards)}
