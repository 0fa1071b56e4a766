"""The door configuration as an HTML form and back (the source format of docs/reader-config.md).

The form has one row per group, schedule, holiday, door and rule (repeated fields of the same
name, in order); a row without an id is ignored, so the page offers blank rows for additions.
Only what facility managers edit day to day is in the form — groups by agency prefix, staff
codes, unit or everyone; weekly schedules; the holiday calendar; doors with their mode, unlock
schedule and anti-clone requirement; rules. Everything is checked by the same
``trustcore.reader_config.compile_source`` the signing uses (via the API's push), and a
source with other keys is kept as it is (``extra``).
"""

from __future__ import annotations

from typing import Any, Final

GROUP_KINDS: Final = ("agency", "staff", "unit", "everyone")
HOLIDAY_KINDS: Final = ("L", "NB", "LB")
DOOR_MODES: Final = ("normal", "locked_down")
BLANK_ROWS: Final = 2
FORM_KEYS: Final = frozenset(
    {"site", "timezone", "group", "schedule", "holidays", "door", "rule", "reader_id"}
)


class FormError(ValueError):
    """The form cannot become a source (message shown to the user, a msgid)."""


def default_source(site: str, door_id: str, door_name: str) -> dict[str, Any]:
    """A first configuration: everyone, every day, one door."""
    return {
        "site": site or "-",
        "timezone": "UTC+07:00",
        "group": [{"id": "tat-ca", "everyone": True}],
        "schedule": [{"id": "ca-ngay", "weekly": ["Mon-Sun 00:00-24:00"]}],
        "door": [{"id": door_id, "name": door_name}],
        "rule": [{"groups": ["tat-ca"], "doors": [door_id], "schedule": "ca-ngay"}],
    }


def _split(text: str, sep: str = ",") -> list[str]:
    return [p.strip() for p in text.split(sep) if p.strip()]


def to_form(src: dict[str, Any]) -> dict[str, Any]:
    """Rows for the template (with blank rows appended)."""
    groups = []
    for g in src.get("group", []):
        kind = next((k for k in GROUP_KINDS if k in g), "agency")
        value = "" if kind == "everyone" else ", ".join(str(v) for v in g.get(kind, []))
        groups.append({"id": g.get("id", ""), "kind": kind, "values": value})
    schedules = [
        {"id": s.get("id", ""), "weekly": "; ".join(s.get("weekly", []))} for s in src.get("schedule", [])
    ]
    holidays = [{"date": d, "kind": k} for d, k in sorted(dict(src.get("holidays", {})).items())]
    doors = [
        {
            "id": d.get("id", ""),
            "name": d.get("name", ""),
            "mode": d.get("mode", "normal"),
            "unlock": d.get("unlock_schedule", ""),
            "anticlone": bool(d.get("requires_anti_clone", False)),
        }
        for d in src.get("door", [])
    ]
    rules = [
        {
            "groups": ", ".join(r.get("groups", [])),
            "doors": ", ".join(r.get("doors", [])),
            "schedule": r.get("schedule", ""),
        }
        for r in src.get("rule", [])
    ]
    blank = BLANK_ROWS
    return {
        "site": src.get("site", ""),
        "timezone": src.get("timezone", "UTC+07:00"),
        "groups": groups + [{"id": "", "kind": "agency", "values": ""}] * blank,
        "schedules": schedules + [{"id": "", "weekly": ""}] * blank,
        "holidays": holidays + [{"date": "", "kind": "L"}] * blank,
        "doors": [*doors, {"id": "", "name": "", "mode": "normal", "unlock": "", "anticlone": False}],
        "rules": rules + [{"groups": "", "doors": "", "schedule": ""}] * blank,
        "kinds": GROUP_KINDS,
        "holiday_kinds": HOLIDAY_KINDS,
        "modes": DOOR_MODES,
    }


def _rows(lists: dict[str, list[str]], *names: str) -> list[tuple[str, ...]]:
    cols = [lists.get(n, []) for n in names]
    n = max((len(c) for c in cols), default=0)
    if any(len(c) != n for c in cols):
        raise FormError("The form is incomplete; reload the page.")
    return [tuple(c[i].strip() for c in cols) for i in range(n)]


def from_form(lists: dict[str, list[str]]) -> dict[str, Any]:
    """The configuration source from the posted rows (structure only; the API checks the rest)."""
    src: dict[str, Any] = {
        "site": (lists.get("site") or [""])[0].strip(),
        "timezone": (lists.get("timezone") or ["UTC+07:00"])[0].strip() or "UTC+07:00",
    }
    groups = []
    for gid, kind, values in _rows(lists, "group_id", "group_kind", "group_values"):
        if not gid:
            continue
        if kind not in GROUP_KINDS:
            raise FormError("Unknown group kind.")
        if kind == "everyone":
            groups.append({"id": gid, "everyone": True})
        elif kind == "staff":
            groups.append({"id": gid, "staff": _split(values)})
        elif kind == "unit":
            groups.append({"id": gid, "unit": _split(values)})
        else:
            groups.append({"id": gid, "agency": _split(values)})
    src["group"] = groups
    src["schedule"] = [
        {"id": sid, "weekly": _split(weekly, ";")}
        for sid, weekly in _rows(lists, "schedule_id", "schedule_weekly")
        if sid
    ]
    holidays = {}
    for date, kind in _rows(lists, "holiday_date", "holiday_kind"):
        if date:
            if kind not in HOLIDAY_KINDS:
                raise FormError("Unknown holiday kind.")
            holidays[date] = kind
    if holidays:
        src["holidays"] = holidays
    doors = []
    for did, name, mode, unlock, anticlone in _rows(
        lists, "door_id", "door_name", "door_mode", "door_unlock", "door_anticlone"
    ):
        if not did:
            continue
        if mode not in DOOR_MODES:
            raise FormError("Unknown door mode.")
        door: dict[str, Any] = {"id": did, "name": name or did, "mode": mode}
        if unlock:
            door["unlock_schedule"] = unlock
        if anticlone == "yes":
            door["requires_anti_clone"] = True
        doors.append(door)
    src["door"] = doors
    src["rule"] = [
        {"groups": _split(g), "doors": _split(d), **({"schedule": sch} if sch else {})}
        for g, d, sch in _rows(lists, "rule_groups", "rule_doors", "rule_schedule")
        if g or d
    ]
    return src


def partial(lists: dict[str, list[str]]) -> dict[str, Any]:
    """Best effort to show a refused form again as it was typed."""
    try:
        return from_form(lists)
    except FormError:
        return {"site": (lists.get("site") or [""])[0]}
