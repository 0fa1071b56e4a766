"""The civil-service calendar: public holidays (symbol L), swapped days off, compensatory working days.

Three layers, later ones winning: the ``holidays`` package (statutory days with lunar dates and
observed days: a holiday on Saturday/Sunday is taken on the next working day), the shipped table
``data/vn_calendar.toml`` (the government's announced swaps, authoritative for the years it lists),
and the site's own overrides (``cbcc attendance calendar set``, table ``att_calendar``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources

KINDS = ("holiday", "dayoff", "workday")
_SUBSTITUTED = re.compile(r"^Day off \(substituted from (\d\d)/(\d\d)/(\d{4})\)$")


@dataclass(frozen=True)
class Override:
    """One site override: ``kind`` in :data:`KINDS`, ``name`` for holidays and days off."""

    day: date
    kind: str
    name: str = ""


@dataclass
class Calendar:
    """The resolved calendar for a range of years: each date is at most one of the three kinds."""

    holidays: dict[date, str] = field(default_factory=dict)
    dayoffs: dict[date, str] = field(default_factory=dict)
    workdays: dict[date, str] = field(default_factory=dict)

    def kind(self, day: date) -> str:
        """``holiday``, ``dayoff``, ``workday`` (compensatory) or ``""`` (an ordinary date)."""
        if day in self.holidays:
            return "holiday"
        if day in self.dayoffs:
            return "dayoff"
        if day in self.workdays:
            return "workday"
        return ""

    def set(self, o: Override) -> None:
        for table in (self.holidays, self.dayoffs, self.workdays):
            table.pop(o.day, None)
        {"holiday": self.holidays, "dayoff": self.dayoffs, "workday": self.workdays}[o.kind][o.day] = o.name


@cache
def _shipped() -> dict[int, dict[str, object]]:
    text = resources.files("gateway.attendance").joinpath("data/vn_calendar.toml").read_text("utf-8")
    return {int(y): v for y, v in tomllib.loads(text).items()}


def _day(s: str) -> date:
    return date.fromisoformat(s)


@cache
def _year(year: int) -> Calendar:
    import holidays as pkg

    cal = Calendar()
    shipped = _shipped().get(year)
    for day, name in sorted(pkg.country_holidays("VN", years=year).items()):
        m = _SUBSTITUTED.match(name)
        if m is None:
            cal.holidays[day] = name
        elif shipped is None:  # the package's swap, for a year our table does not cover
            cal.dayoffs[day] = name
            cal.workdays[date(int(m[3]), int(m[1]), int(m[2]))] = f"Làm bù cho {day.isoformat()}"
    if shipped is not None:
        for d in shipped.get("not_holidays", []):  # type: ignore[attr-defined]
            cal.holidays.pop(_day(d), None)
        for kind in ("holidays", "dayoffs", "workdays"):
            for d, name in shipped.get(kind, {}).items():  # type: ignore[attr-defined]
                cal.set(Override(_day(d), kind.removesuffix("s"), name))
    return cal


def build(years: range | list[int], overrides: list[Override] = []) -> Calendar:  # noqa: B006 - read only
    """The calendar of ``years`` with the site's overrides applied (fresh object; safe to mutate)."""
    cal = Calendar()
    for y in years:
        base = _year(y)
        cal.holidays.update(base.holidays)
        cal.dayoffs.update(base.dayoffs)
        cal.workdays.update(base.workdays)
    for o in sorted(overrides, key=lambda o: o.day):
        cal.set(o)
    return cal
