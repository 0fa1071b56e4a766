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
from gateway.models import StaffRecord
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
    Staff("CB010012345", "Nguyễn Thị Hương", "000.00.31.H26", "Phòng Tổ chức cán bộ", "Trưởng phòng"),
    Staff("CB000000042", "Trần Văn Đức", "000.00.00.G09", "Vụ Công chức - Viên chức", ""),
    Staff("CB010099017", "Lê Minh Tuấn", "000.00.31.H26", "Văn phòng Sở", ""),
    Staff("CB010077050", "Phạm Thu Trang", "000.00.31.H26", "Phòng Công chức", ""),
    Staff("CB010033120", "Đỗ Quang Minh", "000.00.31.H26", "Phòng Tổ chức cán bộ", "Chuyên viên"),
]
# Cards personalised on blank DESFire EV3 chips through the virtual encoder (name → staff code).
# Each card is signed by its holder's issuing authority (the trust-core demo's issuers "hn", "bnv").
ISSUED = {"huong": ("CB010012345", "hn"), "duc": ("CB000000042", "bnv"), "minh": ("CB010033120", "hn")}
NAMES = {st.staff_code: st.name for st in AGENCY}


def national_people() -> list[dict[str, Any]]:
    """The agency's people as the national database holds them: the demo adds them to the simulator
    (``NationalSim.enrol``) and the gateway's own sync brings them in, as for every civil servant."""
    return [{"code": st.staff_code, "full_name": st.name, "agency_code": st.agency, "unit": st.unit,
             "position": st.position} for st in AGENCY]  # fmt: skip


def agency_synced(engine: Engine) -> list[str]:
    """The agency's people the sync did not bring in as the simulator has them (empty: all there)."""
    with Session(engine) as s:
        return [st.staff_code for st in AGENCY
                if (r := s.get(StaffRecord, st.staff_code)) is None
                or (r.full_name, r.agency_code, r.unit) != (st.name, st.agency, st.unit)]  # fmt: skip


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


def story_day(today: date) -> date:
    """The day the virtual readers play: the last working day before ``today`` (by the attendance
    calendar), so the whole office day — arrivals at 07:2x, a late one, an early leave — lies in the
    past whatever the hour the demo is run."""
    return _workdays(today - timedelta(days=40), today - timedelta(days=1))[-1]


def at(day: date, hms: str) -> int:
    """Unix ms of ``hms`` (HH:MM:SS) on ``day``, Vietnam time: when a reader's clock is set to it."""
    h, m, sec = (int(x) for x in hms.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, sec, tzinfo=VN).timestamp() * 1000)


LATE, EARLY = "CB010033120", "CB010012345"  # Minh comes in late, Hương leaves early: once a month
NO_PUNCH = ("CB010077050", "CB010099017")  # expired card / lost card: no punches
# The story day at the attendance terminal (live taps, real firmware): when each person taps.
LIVE_IN = {"CB000000042": "07:25:40", "CB010012345": "07:26:05", "CB010033120": "07:48:10"}
LIVE_OUT = {"CB010012345": "16:20:05", "CB000000042": "17:05:30", "CB010033120": "17:06:15"}
# What the timesheet must say about the story day: Minh late, Hương early, Đức on time both ways.
LIVE_FLAGS = {"CB010033120": ["late"], "CB010012345": ["early"], "CB000000042": []}

Expect = dict[str, dict[str, set[date]]]  # staff code -> "late" / "early" / "worked" -> days


def attendance(engine: Engine, today: date, day: date | None = None) -> tuple[dict[str, int], Expect]:
    """The office-hours shift for the agency from the 1st of last month, and every workday since then
    before the story ``day`` (default: :func:`story_day`) as the old terminal's punch file had it
    (in 07:2x, out 17:0x; on each month's 2nd workday Minh is 18 min late, on its 3rd Hương leaves
    40 min early). Also what the timesheets must then show, the live story day included."""
    day = day or story_day(today)
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    rows = []
    nth: dict[int, int] = {}
    expect: Expect = {st.staff_code: {"late": set(), "early": set(), "worked": set()} for st in AGENCY}
    for d in _workdays(first, day - timedelta(days=1)):
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
            got = expect[st.staff_code]
            got["worked"].add(d)
            if late:
                got["late"].add(d)
            if early:
                got["early"].add(d)
    for code, flags in LIVE_FLAGS.items():  # the story day, punched live at the terminal
        expect[code]["worked"].add(day)
        for flag in flags:
            expect[code][flag].add(day)
    with engine.begin() as conn:
        store.set_shift(conn, SHIFT, "Giờ hành chính", SHIFT_SESSIONS, "Mon-Fri", 5, 5)
        for unit in ("000.00.31.H26", "000.00.00.G09"):
            store.assign(conn, SHIFT, first, None, unit=unit)
        added = store.add_punches(conn, rows)
    return {"imported": added, "days": sum(v + 1 for v in nth.values())}, expect


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


def check_timesheet(sheets: list[dict[str, Any]], expect: Expect, day: date | None) -> list[str]:
    """What must hold in the timesheets (the attendance contract's JSON) for the script the demo
    played; the problems found (empty: right). ``day``: the story day whose punches came live from
    the attendance terminal (None: no live day to check)."""
    problems = []
    for sheet in sheets:
        month = str(sheet["month"])
        rows = {r["staff"]: r for r in sheet["staff"]}
        missing = [st.staff_code for st in AGENCY if st.staff_code not in rows]
        if missing:
            problems.append(f"timesheet {month}: {', '.join(missing)} missing")
        for code, want in expect.items():
            totals = rows.get(code, {}).get("totals", {})
            for field_, key in (("late_count", "late"), ("early_count", "early"), ("work_days", "worked")):
                n = sum(1 for d in want[key] if d.isoformat()[:7] == month)
                if totals.get(field_) != n:
                    problems.append(
                        f"timesheet {month}: {NAMES[code]} {field_} = {totals.get(field_)}, expected {n}"
                    )
        if day is None or day.isoformat()[:7] != month:
            continue
        for code, flags in LIVE_FLAGS.items():
            got = rows.get(code, {}).get("days", {}).get(day.isoformat(), {})
            live = (LIVE_IN[code][:5], LIVE_OUT[code][:5], flags)
            if (got.get("in"), got.get("out"), got.get("flags")) != live:
                problems.append(f"timesheet {month}: {NAMES[code]} on {day}: in {got.get('in')}, out "
                                f"{got.get('out')}, flags {got.get('flags')}; expected {live[0]}, {live[1]}, "
                                f"{live[2]} from the terminal's live taps")  # fmt: skip
    return problems


def console_login(base: str, login: Login, page: tuple[str, str, str] | None = None) -> str | None:
    """Sign in to the web console over HTTP with a printed login, as a browser does (form + CSRF
    cookie) and open its first page, then ``page`` (path, a text it must show, an XLSX download
    path); a problem, or None when it worked."""
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
        if page is not None:
            got = web.get(page[0])
            if got.status_code != 200 or page[1] not in got.text:
                return f"console {page[0]} as {login.username}: HTTP {got.status_code}, {page[1]!r} not shown"
            sheet = web.get(page[2])
            if sheet.status_code != 200 or sheet.content[:2] != b"PK":
                return f"console {page[2]} as {login.username}: HTTP {sheet.status_code}, not an XLSX file"
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
