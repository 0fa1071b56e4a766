"""A simulator of the national database's change feed (``cbcc national-sim``), for tests, benches
and demonstrations. Everything is deterministic from ``seed``.

The universe: ``records`` people (2,073,460 by default: ≈ 6 % in 33 ministries and sectors
``000.00.00.Gyy``, the rest in 63 provinces ``000.00.00.Hyy``), each issuer with its own dense
serial range. Change ids 1..records enrol person ``id - 1`` (staff record + first card): these are
computed on demand from the id (a splitmix64 hash of seed and id picks the name, unit, position
and issue date), never held in memory. Then ``history`` lifecycle events follow, generated once
at start-up from a small mutable state (only what changed is stored): transfers, retirements,
new hires, cards locked, unlocked, revoked, reissued (old serial ``replaced``, new serial with
gen + 1), expired, staff records updated. Local actions POSTed by gateways are appended to the
feed as they arrive, acknowledging the gateway's reference. Named people (:meth:`NationalSim.enrol`:
a demo's agency, a test's staff) are appended as ``staff.created`` changes with the given fields.

Memory: ≈ 150 bytes per history change; the enrolment part costs nothing until a page is asked.
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

RECORDS = 2_073_460
MINISTRY_SHARE = 125_746 / 2_073_460
MINISTRIES, PROVINCES = 33, 63
SERIAL_BASE = 1_000_000
M64 = (1 << 64) - 1

# ---- names (NFC) with realistic frequencies; "A|B" = northern | southern form ---------------------
FAMILY: list[tuple[str, float]] = [
    ("Nguyễn", 38.4), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.1), ("Hoàng|Huỳnh", 5.1), ("Phan", 4.5),
    ("Vũ|Võ", 3.9), ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3), ("Ngô", 1.3), ("Dương", 1.0),
    ("Lý", 0.5), ("Đinh", 1.0), ("Trương", 0.9), ("Đào", 0.8), ("Lương", 0.6), ("Mai", 0.6),
    ("Trịnh", 0.6), ("Lâm", 0.5), ("Cao", 0.5), ("Tạ", 0.4), ("Hà", 0.5), ("Chu", 0.3), ("Lưu", 0.3),
    ("Tô", 0.3), ("Kiều", 0.2), ("Quách", 0.2), ("Thái", 0.3), ("Châu", 0.3), ("Triệu", 0.3),
    ("Đoàn", 0.6), ("Văn", 0.2), ("Nông", 0.3), ("Lò", 0.1), ("Y", 0.1),
]  # fmt: skip
MIDDLE_M = ["Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quang", "Thành", "Công", "Xuân", "Ngọc", "Anh",
            "Đình", "Trọng", "Quốc", "Tiến", "Mạnh", "Thanh", "Duy", "Hoàng"]  # fmt: skip
MIDDLE_F = ["Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Phương", "Hồng", "Minh",
            "Thuỳ", "Bích", "Mỹ", "Diệu", "Hoài", "Khánh", "Lan", "Quỳnh", "Hải"]  # fmt: skip
SECOND_MIDDLE = ["Thu", "Minh", "Ngọc", "Bảo", "Gia", "Hoài", "Thanh", "Kim", "Đức", "Tuấn"]
GIVEN_M = ["Anh", "Hùng", "Dũng", "Tuấn", "Minh", "Hoàng", "Nam", "Long", "Thắng", "Sơn", "Hải",
           "Trung", "Quân", "Cường", "Đức", "Huy", "Khánh", "Phong", "Tùng", "Vinh", "Bình", "Hiếu",
           "Lâm", "Thành", "Toàn", "Việt", "Tiến", "Quang", "Phúc", "Đạt", "Kiên", "Hưng", "Lộc",
           "Thịnh", "Trí", "Nghĩa", "Tâm", "Khoa", "Duy", "Bảo"]  # fmt: skip
GIVEN_F = ["Lan", "Hương", "Hoa", "Mai", "Linh", "Trang", "Hà", "Thảo", "Ngọc", "Huyền", "Nhung",
           "Phương", "Thủy", "Hằng", "Yến", "Loan", "Dung", "Nga", "Vân", "Anh", "Hạnh", "Oanh",
           "Quyên", "Diệp", "Giang", "Hiền", "Liên", "Nhàn", "Thư", "Uyên", "Trinh", "Ly", "Châu",
           "Thắm", "Tuyết", "Xuân", "Hậu", "Nhi", "My", "Vy"]  # fmt: skip
PROVINCE_UNITS = ["Văn phòng UBND", "Sở Nội vụ", "Sở Tài chính", "Sở Kế hoạch và Đầu tư",
                  "Sở Giáo dục và Đào tạo", "Sở Y tế", "Sở Tư pháp", "Sở Xây dựng",
                  "Sở Giao thông vận tải", "Sở Công Thương", "Sở Nông nghiệp và Phát triển nông thôn",
                  "Sở Tài nguyên và Môi trường", "Sở Lao động - Thương binh và Xã hội",
                  "Sở Văn hóa, Thể thao và Du lịch", "Sở Khoa học và Công nghệ",
                  "Sở Thông tin và Truyền thông", "Thanh tra tỉnh", "Ban Dân tộc", "UBND thành phố",
                  "UBND huyện", "UBND thị xã", "Bệnh viện Đa khoa tỉnh", "Trường THPT chuyên"]  # fmt: skip
MINISTRY_UNITS = ["Văn phòng Bộ", "Vụ Tổ chức cán bộ", "Vụ Kế hoạch - Tài chính", "Vụ Pháp chế",
                  "Thanh tra Bộ", "Cục Quản lý", "Vụ Hợp tác quốc tế", "Trung tâm Thông tin",
                  "Viện Nghiên cứu", "Tổng cục"]  # fmt: skip
POSITIONS: list[tuple[str, int]] = [
    ("Giáo viên", 34), ("Chuyên viên", 20), ("Viên chức y tế", 10), ("Chuyên viên chính", 7),
    ("Cán sự", 5), ("Kế toán viên", 4), ("Phó trưởng phòng", 5), ("Trưởng phòng", 3),
    ("Thanh tra viên", 2), ("Nhân viên", 5), ("Chuyên viên cao cấp", 1), ("Phó giám đốc", 1),
    ("Giám đốc", 1), ("Văn thư", 2),
]  # fmt: skip

DAY0 = date(2023, 11, 1)  # first cards after Decision 838/QĐ-BNV
ISSUE_SPAN = (date(2025, 6, 30) - DAY0).days
HISTORY_START = (date(2025, 7, 1) - DAY0).days
HISTORY_SPAN = 4 * 365
VALIDITY = 1827  # days (≈ 5 years)
DATES = [(DAY0 + timedelta(days=d)).isoformat() for d in range(HISTORY_START + HISTORY_SPAN + VALIDITY + 2)]

KINDS = ["staff.created", "staff.updated", "staff.transferred", "staff.retired", "card.issued",
         "card.locked", "card.unlocked", "card.revoked", "card.expired", "card.replaced",
         "card.reissued"]  # fmt: skip
K = {k: i for i, k in enumerate(KINDS)}
STATUSES = ["issued", "locked", "revoked", "expired", "replaced"]
ISSUED, LOCKED, REVOKED, EXPIRED, REPLACED = range(5)
_REF = re.compile(r"^[A-Za-z0-9:._\-]{1,64}$")


def mix(x: int) -> int:
    """splitmix64 finaliser: 64 well-mixed bits from any integer."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _table(weights: list[tuple[str, float]] | list[tuple[str, int]], size: int = 1000) -> list[str]:
    total = sum(w for _, w in weights)
    out: list[str] = []
    for name, w in weights:
        out += [name] * max(1, round(size * w / total))
    return out


@dataclass(frozen=True)
class Issuer:
    code: str  # 000.00.00.Gyy / 000.00.00.Hyy
    letter: str
    number: int
    region: int  # 0 north, 1 central, 2 south
    size: int  # people enrolled
    first_person: int
    base: int  # first serial; the range [base, base + block) belongs to this issuer
    block: int
    units: int


# (staff) person, issuer index, unit, position index, active
Staff = tuple[int, int, int, int, bool]
# (card) serial, person, issuer index, gen, status, issue day
CardT = tuple[int, int, int, int, int, int]
# (change) kind, day, staff or None, card or None, ref or None
Hist = tuple[int, int, Staff | None, CardT | None, str | None]


class Universe:
    """The deterministic population and its history."""

    def __init__(self, seed: int = 1, records: int = RECORDS, history: int = 100_000) -> None:
        if records < 2 * (MINISTRIES + PROVINCES):
            raise ValueError(f"at least {2 * (MINISTRIES + PROVINCES)} records")
        self.seed, self.records = seed, records
        self.key = mix(seed * 0x2545F4914F6CDD1D + 7)
        rng = random.Random(seed)  # noqa: S311 — a seeded, reproducible simulation, not a secret
        self.family = _table(FAMILY)
        self.positions = _table(POSITIONS, 100)
        self.issuers = self._issuers(rng)
        self.firsts = [i.first_person for i in self.issuers]
        self.bases = [i.base for i in self.issuers]
        # Mutable state, only for what history changed.
        self.next_off = [i.size for i in self.issuers]  # next serial offset per issuer
        self.card_of: dict[int, int] = {}  # person -> current serial (if not the enrolment one)
        self.cards: dict[int, CardT] = {}  # serial -> card (if not an untouched enrolment card)
        self.staff: dict[int, Staff] = {}  # person -> staff (if changed or hired)
        self.people = records
        self.history: list[Hist] = []
        self._generate(random.Random(seed * 1_000_003 + 11), history)  # noqa: S311 — a seeded, reproducible simulation, not a secret

    # ---- population ----------------------------------------------------------------------------

    def _issuers(self, rng: random.Random) -> list[Issuer]:
        n_min = max(MINISTRIES, round(self.records * MINISTRY_SHARE))
        wm = [rng.lognormvariate(0.0, 0.9) for _ in range(MINISTRIES)]
        wp = [rng.lognormvariate(0.0, 0.6) for _ in range(PROVINCES)]
        sizes = [max(1, int(n_min * w / sum(wm))) for w in wm]
        sizes += [max(1, int((self.records - n_min) * w / sum(wp))) for w in wp]
        sizes[-1] += self.records - sum(sizes)
        out, first, base = [], 0, SERIAL_BASE
        for k, n in enumerate(sizes):
            letter, number = ("G", k + 1) if k < MINISTRIES else ("H", k - MINISTRIES + 1)
            region = 0 if letter == "G" or number <= 25 else 1 if number <= 38 else 2
            block = -(-(2 * n + 1000) // 100_000) * 100_000  # whole 100 k blocks with headroom
            units = min(99, max(3, n // 400)) if letter == "H" else min(60, max(2, n // 300))
            out.append(Issuer(f"000.00.00.{letter}{number:02d}", letter, number, region, n, first, base,
                              block, units))  # fmt: skip
            first += n
            base += block
        return out

    def issuer_of_person(self, p: int) -> int:
        return bisect.bisect_right(self.firsts, p) - 1

    def enrolment(self, p: int) -> tuple[Staff, CardT]:
        k = self.issuer_of_person(p)
        iss = self.issuers[k]
        h = mix(self.key ^ p)
        staff: Staff = (p, k, (h >> 31) % iss.units, (h >> 40) % 100, True)
        card: CardT = (iss.base + p - iss.first_person, p, k, 1, ISSUED, (h >> 48) % ISSUE_SPAN)
        return staff, card

    def staff_code(self, p: int) -> str:
        return f"CB{p + 1:08d}"

    def full_name(self, p: int, region: int) -> str:
        h = mix(self.key ^ p)
        female = h & 1
        fam = self.family[(h >> 1) % len(self.family)]
        if "|" in fam:
            north, south = fam.split("|")
            fam = north if region == 0 or (region == 1 and (h >> 60) & 1) else south
        mid = (MIDDLE_F if female else MIDDLE_M)[(h >> 11) % 20]
        given = (GIVEN_F if female else GIVEN_M)[(h >> 21) % 40]
        if (h >> 56) & 7 == 0:
            mid = f"{mid} {SECOND_MIDDLE[(h >> 27) % 10]}" if mid in ("Thị", "Văn") else mid
        return f"{fam} {mid} {given}"

    def card_by_serial(self, serial: int) -> CardT | None:
        if serial in self.cards:
            return self.cards[serial]
        k = bisect.bisect_right(self.bases, serial) - 1
        if k < 0:
            return None
        iss = self.issuers[k]
        if not 0 <= serial - iss.base < iss.size:
            return None
        return self.enrolment(iss.first_person + serial - iss.base)[1]

    def card_by_serial_enrolled(self, serial: int) -> int | None:
        """The person enrolled with ``serial`` (their first card), or None for a later card."""
        k = bisect.bisect_right(self.bases, serial) - 1
        if k < 0:
            return None
        iss = self.issuers[k]
        off = serial - iss.base
        return iss.first_person + off if 0 <= off < iss.size else None

    def current_staff(self, p: int) -> Staff:
        return self.staff.get(p) or self.enrolment(p)[0]

    def current_card(self, p: int) -> CardT:
        s = self.card_of.get(p)
        if s is not None:
            return self.cards[s]
        first = self.enrolment(p)[1]
        return self.cards.get(first[0], first)

    # ---- history -------------------------------------------------------------------------------

    def _generate(self, rng: random.Random, n: int) -> None:
        kinds = (["lock"] * 18 + ["unlock"] * 8 + ["revoke"] * 4 + ["reissue"] * 12 + ["transfer"] * 14
                 + ["retire"] * 14 + ["hire"] * 18 + ["expire"] * 4 + ["update"] * 8)  # fmt: skip
        locked: list[int] = []
        hist = self.history
        while len(hist) < n:
            day = HISTORY_START + len(hist) * HISTORY_SPAN // max(1, n)
            what = rng.choice(kinds)
            if what == "hire":
                k = self.issuer_of_person(rng.randrange(self.records))  # weighted by issuer size
                p = self.people
                self.people += 1
                iss = self.issuers[k]
                st: Staff = (p, k, rng.randrange(iss.units), rng.randrange(100), True)
                card = self._new_card(p, k, 1, day)
                self.staff[p] = st
                hist.append((K["staff.created"], day, st, card, None))
                continue
            if what == "unlock":
                if not locked:
                    continue
                s = locked.pop(rng.randrange(len(locked)))
                c = self.cards[s]
                if c[4] != LOCKED:
                    continue
                hist.append((K["card.unlocked"], day, None, self._set(c, ISSUED), None))
                continue
            p = rng.randrange(self.people)
            st = self.current_staff(p)
            if not st[4]:
                continue  # retired
            c = self.current_card(p)
            if what == "lock" and c[4] == ISSUED:
                hist.append((K["card.locked"], day, None, self._set(c, LOCKED), None))
                locked.append(c[0])
            elif what == "revoke" and c[4] in (ISSUED, LOCKED):
                hist.append((K["card.revoked"], day, None, self._set(c, REVOKED), None))
            elif what == "expire" and c[4] == ISSUED and c[5] + VALIDITY <= day:
                hist.append((K["card.expired"], day, None, self._set(c, EXPIRED), None))
            elif what == "reissue" and c[4] != REPLACED:
                self._reissue(hist, day, c, st[1])
            elif what == "transfer":
                k2 = self.issuer_of_person(rng.randrange(self.records))
                st2: Staff = (p, k2, rng.randrange(self.issuers[k2].units), st[3], True)
                self.staff[p] = st2
                hist.append((K["staff.transferred"], day, st2, None, None))
                if k2 != st[1] and rng.random() < 0.5 and c[4] in (ISSUED, LOCKED):
                    self._reissue(hist, day, c, k2)
            elif what == "retire":
                st2 = (p, st[1], st[2], st[3], False)
                self.staff[p] = st2
                hist.append((K["staff.retired"], day, st2, None, None))
                if c[4] in (ISSUED, LOCKED):
                    hist.append((K["card.revoked"], day, None, self._set(c, REVOKED), None))
            elif what == "update":
                st2 = (p, st[1], rng.randrange(self.issuers[st[1]].units), rng.randrange(100), True)
                self.staff[p] = st2
                hist.append((K["staff.updated"], day, st2, None, None))
        del hist[n:]

    def _set(self, c: CardT, status: int) -> CardT:
        new = (c[0], c[1], c[2], c[3], status, c[5])
        self.cards[c[0]] = new
        return new

    def _new_card(self, p: int, k: int, gen: int, day: int) -> CardT:
        iss = self.issuers[k]
        off = self.next_off[k]
        if off >= iss.block:
            raise RuntimeError(f"issuer {iss.code} ran out of serials")
        self.next_off[k] = off + 1
        card: CardT = (iss.base + off, p, k, gen, ISSUED, day)
        self.cards[card[0]] = card
        self.card_of[p] = card[0]
        return card

    def _reissue(self, hist: list[Hist], day: int, old: CardT, k: int) -> None:
        hist.append((K["card.replaced"], day, None, self._set(old, REPLACED), None))
        new = self._new_card(old[1], k, min(255, old[3] + 1), day)
        hist.append((K["card.reissued"], day, None, new, None))

    # ---- rendering -----------------------------------------------------------------------------

    def staff_json(self, st: Staff) -> str:
        p, k, unit, pos, active = st
        iss = self.issuers[k]
        units = PROVINCE_UNITS if iss.letter == "H" else MINISTRY_UNITS
        uname = units[unit % len(units)] + (f" {unit // len(units) + 1}" if unit >= len(units) else "")
        return (f'{{"code":"{self.staff_code(p)}","full_name":"{self.full_name(p, iss.region)}",'
                f'"agency_code":"000.00.{unit + 1:02d}.{iss.letter}{iss.number:02d}","unit":"{uname}",'
                f'"position":"{self.positions[pos]}","active":{"true" if active else "false"}}}')  # fmt: skip

    def card_json(self, c: CardT) -> str:
        serial, p, k, gen, status, day = c
        return (f'{{"serial":{serial},"staff_code":"{self.staff_code(p)}","issuer":"{self.issuers[k].code}",'
                f'"gen":{gen},"status":"{STATUSES[status]}","issued_at":"{DATES[day]}",'
                f'"expires_at":"{DATES[day + VALIDITY]}"}}')  # fmt: skip

    def staff_row(self, st: Staff) -> str:
        """A snapshot line: ``[code, full_name, agency_code, unit, position, active]``."""
        p, k, unit, pos, active = st
        iss = self.issuers[k]
        units = PROVINCE_UNITS if iss.letter == "H" else MINISTRY_UNITS
        uname = units[unit % len(units)] + (f" {unit // len(units) + 1}" if unit >= len(units) else "")
        return (f'["{self.staff_code(p)}","{self.full_name(p, iss.region)}","000.00.{unit + 1:02d}.'
                f'{iss.letter}{iss.number:02d}","{uname}","{self.positions[pos]}",'
                f'{"true" if active else "false"}]\n')  # fmt: skip

    def card_row(self, c: CardT) -> str:
        """A snapshot line: ``[serial, staff_code, issuer, gen, status, issued_at, expires_at]``."""
        serial, p, k, gen, status, day = c
        return (f'[{serial},"{self.staff_code(p)}","{self.issuers[k].code}",{gen},"{STATUSES[status]}",'
                f'"{DATES[day]}","{DATES[day + VALIDITY]}"]\n')  # fmt: skip

    def change_json(self, cid: int, h: Hist, at: str | None = None) -> str:
        kind, day, st, card, ref = h
        parts = [f'{{"id":{cid},"kind":"{KINDS[kind]}","at":"{at or DATES[day] + "T01:00:00Z"}"']
        if st is not None:
            parts.append(f',"staff":{self.staff_json(st)}')
        if card is not None:
            parts.append(f',"card":{self.card_json(card)}')
        if ref is not None:
            parts.append(f',"ref":{json.dumps(ref)}')
        parts.append("}")
        return "".join(parts)


class NationalSim:
    """The feed: enrolment ids 1..records, then history revealed up to ``head``, with posted local
    actions interleaved where they arrived."""

    def __init__(self, seed: int = 1, records: int = RECORDS, history: int = 100_000,
                 reveal: int | None = None) -> None:  # fmt: skip
        self.u = Universe(seed, records, history)
        self.lock = threading.Lock()
        self.posted: list[tuple[Hist, str]] = []  # (change, at)
        self.refs: dict[str, int] = {}  # ref -> change id
        self.named: list[tuple[dict[str, Any], str]] = []  # (staff record, at), from enrol()
        # runs: (first id, source 0 enrolment / 1 history / 2 posted / 3 named, first index, length)
        self.runs: list[tuple[int, int, int, int]] = [(1, 0, 0, records)]
        self.revealed = 0
        self.advance(len(self.u.history) if reveal is None else reveal)

    @property
    def head(self) -> int:
        first, _, _, n = self.runs[-1]
        return first + n - 1

    def advance(self, n: int) -> int:
        """Reveal ``n`` more history changes (fewer at the end); returns how many."""
        with self.lock:
            n = max(0, min(n, len(self.u.history) - self.revealed))
            if n:
                first, src, start, length = self.runs[-1]
                if src == 1:
                    self.runs[-1] = (first, src, start, length + n)
                else:
                    self.runs.append((self.head + 1, 1, self.revealed, n))
                self.revealed += n
            return n

    def post(self, serial: int, action: str, staff_code: str, ref: str) -> int:
        """A gateway's local action; returns the change id that carries it (idempotent on ``ref``)."""
        if action not in ("lock", "revoke"):
            raise ValueError(f"unknown action {action!r}")
        if not _REF.match(ref):
            raise ValueError("bad ref")
        with self.lock:
            if ref in self.refs:
                return self.refs[ref]
            card = self.u.card_by_serial(serial)
            if card is None:
                raise KeyError(serial)
            if self.u.staff_code(card[1]) != staff_code:
                raise PermissionError("the card belongs to another staff code")
            status = LOCKED if action == "lock" else REVOKED
            new = (card[0], card[1], card[2], card[3], status, card[5])
            self.u.cards[serial] = new
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            kind = K["card.locked"] if action == "lock" else K["card.revoked"]
            self.posted.append(((kind, 0, None, new, ref), at))
            cid = self.head + 1
            self.runs.append((cid, 2, len(self.posted) - 1, 1))
            self.refs[ref] = cid
            return cid

    def enrol(self, staff: list[dict[str, Any]]) -> int:
        """Append named people (``code``, ``full_name``, ``agency_code``, ``unit``, ``position``,
        optional ``active``) as ``staff.created`` changes; returns the new head. Their codes must not
        look like the universe's own (``CB`` and 8 digits), so the two never collide."""
        with self.lock:
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for rec in staff:
                if re.fullmatch(r"CB\d{8}", rec["code"]):
                    raise ValueError(f"{rec['code']}: the universe's own code pattern")
                row = {k: rec.get(k, "") for k in ("code", "full_name", "agency_code", "unit", "position")}
                self.named.append(({**row, "active": bool(rec.get("active", True))}, at))
                first, src, start, length = self.runs[-1]
                if src == 3 and start + length == len(self.named) - 1:
                    self.runs[-1] = (first, src, start, length + 1)
                else:
                    self.runs.append((self.head + 1, 3, len(self.named) - 1, 1))
            return self.head

    def render(self, cid: int) -> str:
        i = bisect.bisect_right(self.runs, (cid, 99, 0, 0)) - 1
        first, src, start, _ = self.runs[i]
        idx = start + cid - first
        if src == 0:
            st, card = self.u.enrolment(idx)
            return self.u.change_json(cid, (K["staff.created"], card[5], st, card, None))
        if src == 1:
            return self.u.change_json(cid, self.u.history[idx])
        if src == 3:
            rec, when = self.named[idx]
            change = {"id": cid, "kind": "staff.created", "at": when, "staff": rec}
            return json.dumps(change, ensure_ascii=False)
        h, at = self.posted[idx]
        return self.u.change_json(cid, h, at)

    def page(self, after: int, limit: int) -> bytes:
        with self.lock:
            head = self.head
            ids = range(after + 1, min(head, after + limit) + 1)
            body = ",".join(self.render(cid) for cid in ids)
        last = ids[-1] if ids else after
        more = "true" if last < head else "false"
        return (f'{{"changes":[{body}],"next_cursor":"{last if ids else (after or "")}",'
                f'"has_more":{more},"head":{head}}}').encode()  # fmt: skip

    def snapshot(self, chunk: int = 5_000) -> tuple[int, int, int, Iterator[bytes]]:
        """A consistent snapshot as of the current head: ``(as_of, staff, cards, chunks)`` where the
        chunks are JSON lines (docs/national-sync.md): a header, staff records by code, cards by
        serial, a trailer. The state is folded under the lock; rendering streams without it (the
        enrolment part is computed from the id, as for pages)."""
        u = self.u
        with self.lock:
            as_of = self.head
            staff: dict[int, Staff] = {}
            cards: dict[int, CardT] = {}
            named: dict[str, dict[str, Any]] = {}
            for _first, src, start, length in self.runs:
                if src == 3:
                    named.update((rec["code"], rec) for rec, _at in self.named[start : start + length])
                if src in (0, 3):
                    continue
                hist = u.history[start : start + length] if src == 1 else [self.posted[start][0]]
                for _kind, _day, st, card, _ref in hist:
                    if st is not None:
                        staff[st[0]] = st
                    if card is not None:
                        cards[card[0]] = card
        people = max([u.records - 1, *staff]) + 1
        extra = sorted(s for s in cards if u.card_by_serial_enrolled(s) is None)
        n_cards = u.records + len(extra)
        end = {"as_of": as_of, "staff": people + len(named), "cards": n_cards}
        fields = ("code", "full_name", "agency_code", "unit", "position", "active")
        extra_staff = [json.dumps([named[c][f] for f in fields], ensure_ascii=False) + "\n"
                       for c in sorted(named)]  # fmt: skip
        head = {
            **end,
            "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "staff_fields": ["code", "full_name", "agency_code", "unit", "position", "active"],
            "card_fields": ["serial", "staff_code", "issuer", "gen", "status", "issued_at", "expires_at"],
        }

        def lines() -> Iterator[bytes]:
            yield (json.dumps({"snapshot": head}) + "\n").encode()
            buf: list[str] = []
            codes = sorted(named)
            ni = 0
            for p in range(people):
                code = u.staff_code(p)
                while ni < len(codes) and codes[ni] < code:  # staff rows are in code order
                    buf.append(extra_staff[ni])
                    ni += 1
                buf.append(u.staff_row(staff.get(p) or u.enrolment(p)[0]))
                if len(buf) >= chunk:
                    yield "".join(buf).encode()
                    buf.clear()
            buf += extra_staff[ni:]
            ex = 0
            for iss in u.issuers:
                for off in range(iss.size):
                    c = cards.get(iss.base + off) or u.enrolment(iss.first_person + off)[1]
                    buf.append(u.card_row(c))
                    if len(buf) >= chunk:
                        yield "".join(buf).encode()
                        buf.clear()
                while ex < len(extra) and extra[ex] < iss.base + iss.block:
                    buf.append(u.card_row(cards[extra[ex]]))
                    ex += 1
            buf.append(json.dumps({"end": end}) + "\n")
            yield "".join(buf).encode()

        return as_of, people + len(named), n_cards, lines()

    def changes(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Every change after ``after`` as the feed would send it (for tests and benches)."""
        while True:
            page = json.loads(self.page(after, 10_000))
            yield from page["changes"]
            if not page["has_more"]:
                return
            after = int(page["next_cursor"])

    def truth(self) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
        """Staff by code and cards by serial after folding the whole revealed feed."""
        staff: dict[str, dict[str, Any]] = {}
        cards: dict[int, dict[str, Any]] = {}
        for ch in self.changes():
            if ch.get("staff"):
                staff[ch["staff"]["code"]] = ch["staff"]
            if ch.get("card"):
                cards[ch["card"]["serial"]] = ch["card"]
        return staff, cards


class Action(BaseModel):
    """A gateway's local action, POSTed to ``/v1/cards/{serial}/actions``."""

    action: str = Field(pattern="^(lock|revoke)$")
    staff_code: str = Field(pattern=r"^[A-Z0-9]{4,32}$")
    ref: str = Field(pattern=r"^[A-Za-z0-9:._\-]{1,64}$")
    reason: str = Field(default="", max_length=500)
    at: str | None = None


def create_app(sim: NationalSim, token: str | None = None) -> Any:
    """The simulator's HTTP API (FastAPI)."""
    from fastapi import FastAPI, HTTPException, Request, Response

    app = FastAPI(title="National CBCCVC database (simulator)", version="1")

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return Response(status_code=401, content=b'{"detail":"unauthorised"}',
                            media_type="application/json")  # fmt: skip
        return await call_next(request)

    @app.get("/v1/changes")
    def changes(after: int = 0, limit: int = 10_000) -> Response:
        if after < 0 or not 1 <= limit <= 50_000:
            raise HTTPException(400, "after >= 0, 1 <= limit <= 50000")
        return Response(sim.page(after, limit), media_type="application/json")

    @app.get("/v1/snapshot")
    def snapshot() -> Response:
        """JSON lines: header, staff rows by code, card rows by serial, trailer (docs/national-sync.md)."""
        from fastapi.responses import StreamingResponse

        return StreamingResponse(sim.snapshot()[3], media_type="application/x-ndjson")

    @app.post("/v1/cards/{serial}/actions", status_code=202)
    def action(serial: int, body: Action) -> dict[str, Any]:
        try:
            cid = sim.post(serial, body.action, body.staff_code, body.ref)
        except KeyError:
            raise HTTPException(404, "no such card") from None
        except PermissionError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"change_id": cid, "ref": body.ref}

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        return {"head": sim.head, "records": sim.u.records, "issuers": len(sim.u.issuers),
                "history": len(sim.u.history), "revealed": sim.revealed}  # fmt: skip

    @app.post("/sim/advance")
    def advance(n: int = 10_000) -> dict[str, int]:
        return {"revealed": sim.advance(n), "head": sim.head}

    return app


def serve(sim: NationalSim, host: str = "127.0.0.1", port: int = 8750, token: str | None = None,
          certfile: str | None = None, keyfile: str | None = None,
          client_ca: str | None = None) -> None:  # fmt: skip
    import ssl

    import uvicorn

    kw: dict[str, Any] = {}
    if certfile:
        kw.update(ssl_certfile=certfile, ssl_keyfile=keyfile)
        if client_ca:  # mutual TLS: client certificates required
            kw.update(ssl_ca_certs=client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    uvicorn.run(create_app(sim, token), host=host, port=port, log_level="warning", **kw)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--records", type=int, default=RECORDS)
    ap.add_argument("--history", type=int, default=100_000)
    ap.add_argument("--reveal", type=int, default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8750)
    ap.add_argument("--token", default=None)
    a = ap.parse_args(argv)
    serve(NationalSim(a.seed, a.records, a.history, a.reveal), a.host, a.port, a.token)


if __name__ == "__main__":
    main()
