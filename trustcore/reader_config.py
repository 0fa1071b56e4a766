"""Signed reader configuration v1: from a facility manager's TOML/JSON file to the signed CBOR a reader loads.

The source (``docs/reader-config.md``) names doors, access groups, weekly schedules such as
``"Mon-Fri 07:00-18:00"``, the holiday calendar, rules, allow/deny lists and anti-passback areas in
words; this module checks it strictly (an unknown key is a typo, not a silent default), resolves names
to indices and packs schedules and holidays into byte strings, giving the payload

``{0: "config", 1: 1, 2: seq, 3: iat, 4: reader_id, 5: tz_minutes, 6: site, 7: [door…], 8: [group…],
9: [schedule…], 10: [rule…], 11: holidays, 12: apb_capacity, 13: apb_timeout}``

signed as a COSE_Sign1 (RS256) with the configuration key, ≤ 16 KiB. ``parse_payload`` is the
reverse (used by ``cbcc config show``) and applies the reader's own validity rules
(``firmware/lib/reader_config.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from trustcore import cbor_det, cose, keys, signed_object
from trustcore.errors import N_, Text, TrustcoreError

TYPE_TAG = "config"
VERSION = 1
MAX_SIZE = 16384
WRONG_READER = "wrong_reader"

MAX_DOORS = 16
MAX_GROUPS = 250
MAX_SCHEDULES = 64
MAX_RULES = 250
MAX_AREAS = 256
MAX_APB = 4096
DEFAULT_APB = 256
DEFAULT_APB_TIMEOUT = 43200
MAX_APB_TIMEOUT = 7 * 86400
MAX_RETAP = 3600
MAX_SERIAL = 1 << 53
MAX_SEGMENTS = 8  # dot-separated segments of an agency prefix
DEFAULT_TZ_MINUTES = 7 * 60  # Vietnam, UTC+7, no daylight saving time
DEFAULT_RETAP = 3
DEFAULT_UNLOCK_S = 5
DEFAULT_HELD_OPEN_S = 30

MODES = {"normal": 0, "locked_down": 1}
APB_MODES = {"off": 0, "soft": 1, "hard": 2}
EFFECTS = {"allow": 1, "deny": 2}
HOLIDAY_KINDS = {"L": 1, "NB": 2, "LB": 3}
HOLIDAY_TYPE = 7  # day type index of holidays and days off in schedules

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Hol")
_DAY_ALIASES: dict[str, int] = {
    **{name.lower(): i for i, name in enumerate(DAY_NAMES)},
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "t2": 0,
    "t3": 1,
    "t4": 2,
    "t5": 3,
    "t6": 4,
    "t7": 5,
    "cn": 6,
    "holiday": 7,
    "le": 7,
    "lễ": 7,
}
_EVERY_DAY = ("daily", "everyday", "hàng-ngày", "hangngay")  # every day, holidays included

# The [deny] / [allow] lists become one group per list (staff codes, serials) under one rule: a rule
# ORs its groups, while a group ANDs its criteria.
SHORTCUT_GROUPS = {
    "deny": (("staff", "deny-staff"), ("serials", "deny-serials")),
    "allow": (("staff", "allow-staff"), ("serials", "allow-serials")),
}
RESERVED_GROUP_IDS = {gid for pairs in SHORTCUT_GROUPS.values() for _, gid in pairs}

_TOP_KEYS = {
    "reader_id",
    "site",
    "timezone",
    "antipassback_capacity",
    "antipassback_timeout",
    "holidays",
    "group",
    "schedule",
    "door",
    "rule",
    "deny",
    "allow",
}
_GROUP_KEYS = {"id", "description", "agency", "unit", "card_groups", "staff", "serials", "everyone"}
_SCHEDULE_KEYS = {"id", "description", "weekly", "calendar"}
_DOOR_KEYS = {
    "id",
    "name",
    "mode",
    "requires_anti_clone",
    "retap_seconds",
    "unlock_seconds",
    "held_open_seconds",
    "unlock_schedule",
    "first_card",
    "lockdown_override",
    "anti_passback",
}
_RULE_KEYS = {"groups", "doors", "schedule", "effect", "description"}
_LIST_KEYS = {"staff", "serials"}
_APB_KEYS = {"mode", "from", "to"}


class ConfigError(TrustcoreError):
    """The configuration source is wrong; the message names the place (e.g. ``door[2].mode``)."""


# ---- small readers for the source ------------------------------------------------------------------


def _where(path: str, problem: str, /, **fields: object) -> ConfigError:
    """``path: problem``, the problem a catalog template (``N_``) with its fields."""
    return ConfigError(N_("{where}: {problem}"), where=path, problem=Text(problem, **fields))


def _check_keys(obj: object, allowed: set[str], path: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise _where(path, N_("must be a table"))
    unknown = sorted(set(obj) - allowed)
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise _where(
            path,
            N_("unknown key(s) {names}; allowed: {allowed}"),
            names=names,
            allowed=", ".join(sorted(allowed)),
        )
    return obj


def _text(obj: object, path: str) -> str:
    """A non-empty text, trimmed and NFC-normalised (as credentials are minted, so that a unit
    typed with decomposed Vietnamese diacritics still matches the card's claim)."""
    if not isinstance(obj, str) or not obj.strip():
        raise _where(path, N_("must be a non-empty text"))
    return unicodedata.normalize("NFC", obj.strip())


def _texts(obj: object, path: str) -> list[str]:
    if isinstance(obj, str):
        obj = [obj]
    if not isinstance(obj, list) or not obj:
        raise _where(path, N_("must be a non-empty list of texts"))
    out = [_text(x, f"{path}[{i}]") for i, x in enumerate(obj)]
    if len(set(out)) != len(out):
        raise _where(path, N_("lists the same entry twice"))
    return out


def _bool(obj: object, path: str) -> bool:
    if not isinstance(obj, bool):
        raise _where(path, N_("must be true or false"))
    return obj


def _int(obj: object, lo: int, hi: int, path: str) -> int:
    if not isinstance(obj, int) or isinstance(obj, bool) or not lo <= obj <= hi:
        raise _where(path, N_("must be an integer from {lo} to {hi}"), lo=lo, hi=hi)
    return obj


def _choice(obj: object, options: Mapping[str, int], path: str) -> int:
    if not isinstance(obj, str) or obj not in options:
        raise _where(path, N_("must be one of {options}"), options=", ".join(options))
    return options[obj]


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_duration(obj: object, path: str) -> int:
    """Seconds from an integer or a text like ``"90s"``, ``"15m"``, ``"12h"``, ``"1d"``."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    m = _DURATION.match(obj) if isinstance(obj, str) else None
    if not m:
        raise _where(path, N_("must be seconds, or a text like '90s', '15m', '12h', '1d'"))
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


_TZ = re.compile(r"^\s*(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\s*$", re.IGNORECASE)


def parse_timezone(obj: object, path: str = "timezone") -> int:
    """Fixed offset in minutes from ``"+07:00"``, ``"UTC+7"``, ``"GMT+07:00"`` or an integer of minutes."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        minutes = obj
    else:
        m = _TZ.match(obj) if isinstance(obj, str) else None
        if not m:
            raise _where(
                path, N_("must be a fixed UTC offset such as '+07:00' or 'UTC+7' (no daylight saving)")
            )
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        if m.group(1) == "-":
            minutes = -minutes
    if not -720 <= minutes <= 840:
        raise _where(path, N_("offset must lie between UTC-12:00 and UTC+14:00"))
    return minutes


def format_timezone(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# ---- schedules ---------------------------------------------------------------------------------------

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


def _minutes(text: str, path: str, *, end: bool) -> int:
    m = _TIME.match(text)
    if not m:
        raise _where(path, N_("{text!r} is not a time HH:MM"), text=text)
    h, mi = int(m.group(1)), int(m.group(2))
    if mi > 59 or h > 24 or (h == 24 and (mi or not end)):
        raise _where(path, N_("{text!r} is not a time of day (00:00 … 24:00)"), text=text)
    return h * 60 + mi


def parse_interval(text: str, path: str) -> tuple[int, int]:
    """``"07:00-18:00"`` → (420, 1080); an end at or before the start crosses midnight (``"22:00-06:00"``
    → (1320, 1800)); ``"00:00-24:00"`` is the whole day."""
    parts = text.split("-")
    if len(parts) != 2:
        raise _where(path, N_("{text!r} is not a time range HH:MM-HH:MM"), text=text)
    start = _minutes(parts[0].strip(), path, end=False)
    stop = _minutes(parts[1].strip(), path, end=True)
    if stop == start:
        raise _where(path, N_("{text!r} is empty (write 00:00-24:00 for a whole day)"), text=text)
    if stop < start:
        stop += 1440
    return start, stop


def _day(token: str, path: str) -> int:
    d = _DAY_ALIASES.get(token.strip().lower())
    if d is None:
        raise _where(
            path, N_("unknown day {token!r} (Mon … Sun, T2 … T7, CN, or Hol for holidays)"), token=token
        )
    return d


def parse_days(spec: str, path: str) -> int:
    """Day mask (bit 0 Monday … bit 6 Sunday, bit 7 holidays) from ``"Mon-Fri"``, ``"Mon,Wed,Fri"``,
    ``"T2-T6"``, ``"Sat-Mon"`` (wraps), ``"Hol"``, or ``"daily"`` (all seven days *and* holidays;
    ``"Mon-Sun"`` leaves holidays out)."""
    if spec.strip().lower() in _EVERY_DAY:
        return 0xFF
    mask = 0
    for item in spec.split(","):
        if not item.strip():
            raise _where(path, N_("empty day in {spec!r}"), spec=spec)
        if "-" in item:
            a_text, b_text = item.split("-", 1)
            a, b = _day(a_text, path), _day(b_text, path)
            if HOLIDAY_TYPE in (a, b):
                raise _where(path, N_("Hol (holidays) is a day of its own, not part of a range"))
            i = a
            while True:
                mask |= 1 << i
                if i == b:
                    break
                i = (i + 1) % 7
        else:
            mask |= 1 << _day(item, path)
    return mask


def parse_weekly(line: str, path: str) -> list[tuple[int, int, int]]:
    """``"Mon-Fri 07:00-11:30, 13:00-17:00"`` → [(mask, start, end), …]."""
    if not isinstance(line, str) or not line.strip():
        raise _where(path, N_("must be a text like 'Mon-Fri 07:00-18:00'"))
    head, _, rest = line.strip().partition(" ")
    ranges = [r for r in re.split(r"[,\s]+", rest.strip()) if r]
    if not ranges:
        raise _where(path, N_("{line!r} has days but no time range"), line=line)
    mask = parse_days(head, path)
    return [(mask, *parse_interval(r, path)) for r in ranges]


def pack_intervals(items: Sequence[tuple[int, int, int]]) -> bytes:
    return b"".join(bytes((m,)) + a.to_bytes(2, "big") + b.to_bytes(2, "big") for m, a, b in items)


def _hhmm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def format_days(mask: int) -> str:
    if mask == 0xFF:
        return "daily"
    parts: list[str] = []
    i = 0
    while i < 7:
        if mask & (1 << i):
            j = i
            while j + 1 < 7 and mask & (1 << (j + 1)):
                j += 1
            parts.append(DAY_NAMES[i] if i == j else f"{DAY_NAMES[i]}-{DAY_NAMES[j]}")
            i = j + 1
        else:
            i += 1
    if mask & 0x80:
        parts.append("Hol")
    return ",".join(parts)


def format_interval(start: int, end: int) -> str:
    return f"{_hhmm(start)}-{_hhmm(end - 1440 if end > 1440 else end)}"


# ---- holidays ------------------------------------------------------------------------------------------

_EPOCH = dt.date(1970, 1, 1)


def _date(text: str, path: str) -> int:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise _where(path, N_("{text!r} is not a date YYYY-MM-DD"), text=text) from None
    n = (day - _EPOCH).days
    if not 0 <= n < 1 << 16:
        raise _where(path, N_("{text!r} is outside 1970 … 2149"), text=text)
    return n


def parse_holiday_type(obj: object, path: str) -> int:
    """``"L"`` public holiday, ``"NB"`` compensatory day off, ``"LB"`` make-up working day following
    Monday's schedule, or ``"LB:Fri"`` / ``"LB:T6"`` following another weekday's."""
    if isinstance(obj, Mapping):
        obj = _check_keys(obj, {"type", "name"}, path).get("type")
    if not isinstance(obj, str):
        raise _where(path, N_("must be 'L', 'NB', 'LB' or 'LB:<weekday>'"))
    kind_text, _, follow = obj.strip().partition(":")
    kind = HOLIDAY_KINDS.get(kind_text.strip().upper())
    if kind is None:
        raise _where(path, N_("{value!r}: type must be L (nghỉ lễ), NB (nghỉ bù) or LB (làm bù)"), value=obj)
    wd = 0
    if follow:
        if kind != HOLIDAY_KINDS["LB"]:
            raise _where(path, N_("only a working day (LB) follows a weekday"))
        wd = _day(follow, path)
        if wd > 6:
            raise _where(path, N_("a working day follows a weekday, not Hol"))
    return (kind << 4) | wd


def parse_holidays(obj: object, path: str = "holidays") -> bytes:
    """``{"2026-01-01": "L", "2026-02-14..2026-02-22": "L", "2026-02-07": "LB"}`` → packed bytes, 3 per
    day (day number u16 big-endian, type byte), ascending."""
    if not isinstance(obj, Mapping):
        raise _where(path, N_("must be a table of date = type"))
    days: dict[int, int] = {}
    for key, value in obj.items():
        where = f"{path}.{key}"
        t = parse_holiday_type(value, where)
        first, sep, last = str(key).partition("..")
        a = _date(first, where)
        b = _date(last, where) if sep else a
        if b < a or b - a > 366:
            raise _where(where, N_("range must run forwards and span at most a year"))
        for n in range(a, b + 1):
            if n in days:
                raise _where(where, N_("{date} is listed twice"), date=_EPOCH + dt.timedelta(days=n))
            days[n] = t
    return b"".join(n.to_bytes(2, "big") + bytes((days[n],)) for n in sorted(days))


def format_holiday_type(t: int) -> str:
    kind = {v: k for k, v in HOLIDAY_KINDS.items()}[t >> 4]
    return f"LB:{DAY_NAMES[t & 15]}" if kind == "LB" and t & 15 else kind


# ---- the compiler ---------------------------------------------------------------------------------------


def _agency_prefix(text: object, path: str) -> str:
    p = _text(text, path).upper()
    segments = p.split(".")
    if not all(seg.isascii() and seg.isalnum() for seg in segments) or len(segments) > MAX_SEGMENTS:
        raise _where(
            path,
            N_(
                "{text!r} is not an agency code prefix (at most {max} dot-separated segments, e.g. 000.00.31)"
            ),
            text=text,
            max=MAX_SEGMENTS,
        )
    return p


def _table_list(src: Mapping[str, Any], key: str, limit: int) -> list[Any]:
    v = src.get(key, [])
    if isinstance(v, Mapping):
        v = [v]
    if not isinstance(v, list):
        raise _where(key, N_("must be a list of tables ([[{key}]])"), key=key)
    if len(v) > limit:
        raise _where(key, N_("at most {max} entries"), max=limit)
    return v


def _group_payload(g: Mapping[str, Any], path: str) -> dict[int, Any]:
    out: dict[int, Any] = {1: _text(g.get("id"), f"{path}.id")}
    if "agency" in g:
        prefixes = [_agency_prefix(p, f"{path}.agency") for p in _texts(g["agency"], f"{path}.agency")]
        if len(set(prefixes)) != len(prefixes):
            raise _where(f"{path}.agency", N_("lists the same prefix twice"))
        out[2] = prefixes
    if "unit" in g:
        out[3] = _texts(g["unit"], f"{path}.unit")
    if "card_groups" in g:
        out[4] = _texts(g["card_groups"], f"{path}.card_groups")
    if "staff" in g:
        out[5] = _texts(g["staff"], f"{path}.staff")
    if "serials" in g:
        serials = g["serials"]
        if not isinstance(serials, list) or not serials:
            raise _where(f"{path}.serials", N_("must be a non-empty list of card serials"))
        out[6] = [_int(s, 0, MAX_SERIAL - 1, f"{path}.serials") for s in serials]
        if len(set(out[6])) != len(out[6]):
            raise _where(f"{path}.serials", N_("lists the same serial twice"))
    everyone = _bool(g["everyone"], f"{path}.everyone") if "everyone" in g else False
    if everyone and len(out) > 1:
        raise _where(path, N_("'everyone = true' cannot be combined with other criteria"))
    if everyone:
        out[7] = True
    elif len(out) == 1:
        raise _where(path, N_("needs one of agency, unit, card_groups, staff, serials (or everyone = true)"))
    return out


def _schedule_payload(s: Mapping[str, Any], path: str) -> dict[int, Any]:
    out: dict[int, Any] = {1: _text(s.get("id"), f"{path}.id")}
    weekly = s.get("weekly")
    if isinstance(weekly, str):
        weekly = [weekly]
    if not isinstance(weekly, list):
        raise _where(f"{path}.weekly", N_("must be a list like ['Mon-Fri 07:00-18:00']"))
    items: list[tuple[int, int, int]] = []
    for i, line in enumerate(weekly):
        items.extend(parse_weekly(line, f"{path}.weekly[{i}]"))
    out[2] = pack_intervals(items)
    if "calendar" in s:
        out[3] = _bool(s["calendar"], f"{path}.calendar")
    return out


def _area_key(obj: object, path: str) -> str | int:
    if isinstance(obj, int) and not isinstance(obj, bool):
        return _int(obj, 0, MAX_AREAS - 1, path)
    return _text(obj, path)


def _area_numbers(doors: Sequence[Any]) -> dict[str | int, int]:
    """Anti-passback areas: numbers stay themselves; names get the lowest free numbers in order of
    first appearance."""
    keys_seen: list[str | int] = []
    for i, d in enumerate(doors):
        apb = d.get("anti_passback") if isinstance(d, Mapping) else None
        if isinstance(apb, Mapping):
            for end in ("from", "to"):
                if end in apb:
                    k = _area_key(apb[end], f"door[{i}].anti_passback.{end}")
                    if k not in keys_seen:
                        keys_seen.append(k)
    out: dict[str | int, int] = {k: k for k in keys_seen if isinstance(k, int)}
    free = (n for n in range(MAX_AREAS) if n not in out)
    for k in keys_seen:
        if isinstance(k, str):
            n = next(free, None)
            if n is None:
                raise _where("door", N_("at most {max} anti-passback areas"), max=MAX_AREAS)
            out[k] = n
    return out


def _index(names: Sequence[str], ref: object, what: str, path: str) -> int:
    name = _text(ref, path)
    try:
        return list(names).index(name)
    except ValueError:
        if not names:
            raise _where(
                path, N_("no {what} with id {name!r} (none is defined)"), what=what, name=name
            ) from None
        known = ", ".join(names)
        raise _where(
            path, N_("no {what} with id {name!r} (known: {known})"), what=what, name=name, known=known
        ) from None


def _indices(names: Sequence[str], refs: object, what: str, path: str) -> list[int]:
    out = [_index(names, r, what, path) for r in _texts(refs, path)]
    return out


def compile_source(src: Mapping[str, Any], *, reader_id: str | None = None) -> dict[int, Any]:
    """Check the source and return the payload map without seq (2) and iat (3)."""
    _check_keys(src, _TOP_KEYS, "config")
    rid = _text(reader_id if reader_id is not None else src.get("reader_id"), "reader_id")
    payload: dict[int, Any] = {0: TYPE_TAG, 1: VERSION, 4: rid}
    payload[5] = parse_timezone(src["timezone"]) if "timezone" in src else DEFAULT_TZ_MINUTES
    if "site" in src:
        payload[6] = _text(src["site"], "site")

    groups: list[dict[int, Any]] = []
    for i, g in enumerate(_table_list(src, "group", MAX_GROUPS)):
        path = f"group[{i}]"
        groups.append(_group_payload(_check_keys(g, _GROUP_KEYS, path), path))
        if groups[-1][1] in RESERVED_GROUP_IDS:
            raise _where(
                f"{path}.id", N_("{id!r} is reserved for the [deny] and [allow] lists"), id=groups[-1][1]
            )
    shortcuts: list[tuple[list[int], int]] = []  # (group indices, effect) of the [deny] / [allow] lists
    for key, pairs in SHORTCUT_GROUPS.items():
        if key in src:
            lists = _check_keys(src[key], _LIST_KEYS, key)
            made = []
            for field, gid in pairs:
                if field in lists:
                    groups.append(_group_payload({"id": gid, field: lists[field]}, f"{key}.{field}"))
                    made.append(len(groups) - 1)
            if made:
                shortcuts.append((made, EFFECTS[key]))
    group_ids = [g[1] for g in groups]
    if len(set(group_ids)) != len(group_ids):
        raise _where("group", N_("ids must be unique"))
    if len(groups) > MAX_GROUPS:
        raise _where("group", N_("at most {max} groups"), max=MAX_GROUPS)

    schedules = [
        _schedule_payload(_check_keys(s, _SCHEDULE_KEYS, f"schedule[{i}]"), f"schedule[{i}]")
        for i, s in enumerate(_table_list(src, "schedule", MAX_SCHEDULES))
    ]
    sched_ids = [s[1] for s in schedules]
    if len(set(sched_ids)) != len(sched_ids):
        raise _where("schedule", N_("ids must be unique"))

    doors_src = _table_list(src, "door", MAX_DOORS)
    if not doors_src:
        raise _where("door", N_("a reader needs at least one [[door]]"))
    areas = _area_numbers(doors_src)
    doors: list[dict[int, Any]] = []
    for i, d_any in enumerate(doors_src):
        path = f"door[{i}]"
        d = _check_keys(d_any, _DOOR_KEYS, path)
        door: dict[int, Any] = {1: _text(d.get("id"), f"{path}.id"), 2: _text(d.get("name"), f"{path}.name")}
        door[3] = _choice(d.get("mode", "normal"), MODES, f"{path}.mode")
        if "unlock_schedule" in d:
            door[4] = _index(sched_ids, d["unlock_schedule"], "schedule", f"{path}.unlock_schedule")
        if "first_card" in d:
            if 4 not in door:
                raise _where(
                    f"{path}.first_card", N_("needs an unlock_schedule (the window a first card opens)")
                )
            door[5] = _indices(group_ids, d["first_card"], "group", f"{path}.first_card")
        if "lockdown_override" in d:
            door[6] = _indices(group_ids, d["lockdown_override"], "group", f"{path}.lockdown_override")
        door[7] = _bool(d.get("requires_anti_clone", False), f"{path}.requires_anti_clone")
        door[8] = _int(d.get("retap_seconds", DEFAULT_RETAP), 0, MAX_RETAP, f"{path}.retap_seconds")
        if "anti_passback" in d:
            apb = _check_keys(d["anti_passback"], _APB_KEYS, f"{path}.anti_passback")
            apb_mode = _choice(apb.get("mode", "hard"), APB_MODES, f"{path}.anti_passback.mode")
            if apb_mode:
                ends = [
                    areas[_area_key(apb.get(end), f"{path}.anti_passback.{end}")] for end in ("from", "to")
                ]
                if ends[0] == ends[1]:
                    raise _where(f"{path}.anti_passback", N_("'from' and 'to' must be different areas"))
                door[9], door[10], door[11] = apb_mode, ends[0], ends[1]
        door[12] = _int(d.get("unlock_seconds", DEFAULT_UNLOCK_S), 1, 3600, f"{path}.unlock_seconds")
        held = d.get("held_open_seconds", DEFAULT_HELD_OPEN_S)
        door[13] = _int(held, 1, 86400, f"{path}.held_open_seconds")
        doors.append(door)
    door_ids = [d[1] for d in doors]
    if len(set(door_ids)) != len(door_ids):
        raise _where("door", N_("ids must be unique"))

    rules: list[dict[int, Any]] = []
    for i, r_any in enumerate(_table_list(src, "rule", MAX_RULES)):
        path = f"rule[{i}]"
        r = _check_keys(r_any, _RULE_KEYS, path)
        effect = _choice(r.get("effect", "allow"), EFFECTS, f"{path}.effect")
        rule: dict[int, Any] = {1: effect, 2: _indices(group_ids, r.get("groups"), "group", f"{path}.groups")}
        if "doors" in r:
            rule[3] = _indices(door_ids, r["doors"], "door", f"{path}.doors")
        if "schedule" in r:
            rule[4] = _index(sched_ids, r["schedule"], "schedule", f"{path}.schedule")
        rules.append(rule)
    # The [deny] and [allow] shortcuts: every door, at all times.
    for gis, effect in shortcuts:
        rules.append({1: effect, 2: gis})
    if len(rules) > MAX_RULES:
        raise _where("rule", N_("at most {max} rules"), max=MAX_RULES)

    payload[7] = doors
    if groups:
        payload[8] = groups
    if schedules:
        payload[9] = schedules
    if rules:
        payload[10] = rules
    if "holidays" in src:
        packed = parse_holidays(src["holidays"])
        if packed:
            payload[11] = packed
    if "antipassback_capacity" in src:
        payload[12] = _int(src["antipassback_capacity"], 1, MAX_APB, "antipassback_capacity")
    if "antipassback_timeout" in src:
        timeout = parse_duration(src["antipassback_timeout"], "antipassback_timeout")
        payload[13] = _int(timeout, 1, MAX_APB_TIMEOUT, "antipassback_timeout")
    return payload


def load_source(path: Path) -> dict[str, Any]:
    """Read a configuration source: TOML (``.toml``) or JSON (anything else)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(N_("cannot read {path}: {reason}"), path=path, reason=exc.strerror) from None
    try:
        if path.suffix.lower() == ".toml":
            src = tomllib.loads(data.decode("utf-8"))
        else:
            src = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            N_("{path}: not valid TOML or JSON: {reason}"), path=path, reason=str(exc)
        ) from None
    if not isinstance(src, dict):
        raise ConfigError(N_("{path}: the top level must be a table"), path=path)
    return src


def build_payload(src: Mapping[str, Any], seq: int, iat: int, *, reader_id: str | None = None) -> bytes:
    payload = compile_source(src, reader_id=reader_id)
    payload[2] = seq
    payload[3] = iat
    return cbor_det.dumps(payload)


def build(
    src: Mapping[str, Any], key: rsa.RSAPrivateKey, seq: int, iat: int, *, reader_id: str | None = None
) -> bytes:
    """Sign a reader configuration (RS256, kid = the configuration key's); refuses more than 16 KiB."""
    if seq < 0 or iat < 0:
        raise ConfigError(N_("seq and iat must be non-negative"))
    blob = cose.sign1(build_payload(src, seq, iat, reader_id=reader_id), key, alg=cose.ALG_RS256)
    if len(blob) > MAX_SIZE:
        raise ConfigError(
            N_("the signed configuration would be {size} bytes; readers accept at most {max}"),
            size=len(blob),
            max=MAX_SIZE,
        )
    return blob


# ---- the reverse: validate a payload as a reader would, and show it as a source ----------------------


class _Bad(Exception):
    pass


def _u(v: object, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
        raise _Bad
    return v


def _t(v: object) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad
    return v


def _ts(v: object) -> list[str]:
    if not isinstance(v, list) or not v:
        raise _Bad
    return [_t(x) for x in v]


def _b(v: object) -> bool:
    if not isinstance(v, bool):
        raise _Bad
    return v


def _ix(v: object, n: int) -> list[int]:
    if not isinstance(v, list) or not v:
        raise _Bad
    out = [_u(x, n - 1) for x in v]
    if n == 0 or len(set(out)) != len(out):
        raise _Bad
    return out


def _tab(p: Mapping[int | str, Any], key: int, limit: int) -> list[Mapping[int | str, Any]]:
    if key not in p:
        return []
    v = p[key]
    if not isinstance(v, list) or len(v) > limit or not all(isinstance(e, dict) for e in v):
        raise _Bad
    return v


def _decode_group(e: Mapping[int | str, Any]) -> dict[str, Any]:
    g: dict[str, Any] = {"id": _t(e.get(1))}
    if 2 in e:
        prefixes = _ts(e[2])
        if any(
            len(p.split(".")) > MAX_SEGMENTS or any(not s or " " in s for s in p.split(".")) for p in prefixes
        ):
            raise _Bad
        g["agency"] = prefixes
    if 3 in e:
        g["unit"] = _ts(e[3])
    if 4 in e:
        g["card_groups"] = _ts(e[4])
    if 5 in e:
        g["staff"] = _ts(e[5])
    if 6 in e:
        serials = e[6]
        if not isinstance(serials, list) or not serials:
            raise _Bad
        g["serials"] = [_u(s, MAX_SERIAL - 1) for s in serials]
    everyone = _b(e[7]) if 7 in e else False
    if everyone == (len(g) > 1):
        raise _Bad
    if everyone:
        g["everyone"] = True
    return g


def _decode_schedule(e: Mapping[int | str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {"id": _t(e.get(1))}
    packed = e.get(2)
    if not isinstance(packed, bytes) or len(packed) % 5:
        raise _Bad
    weekly = []
    for i in range(0, len(packed), 5):
        mask = packed[i]
        start = int.from_bytes(packed[i + 1 : i + 3], "big")
        end = int.from_bytes(packed[i + 3 : i + 5], "big")
        if not mask or start >= 1440 or end <= start or end > start + 1440:
            raise _Bad
        weekly.append(f"{format_days(mask)} {format_interval(start, end)}")
    s["weekly"] = weekly
    if 3 in e:
        s["calendar"] = _b(e[3])
    return s


def _decode_holidays(v: object) -> dict[str, str]:
    if not isinstance(v, bytes) or len(v) % 3:
        raise _Bad
    days: list[tuple[int, int]] = []
    prev = -1
    for i in range(0, len(v), 3):
        day = int.from_bytes(v[i : i + 2], "big")
        t = v[i + 2]
        kind, wd = t >> 4, t & 15
        if day <= prev or kind not in (1, 2, 3) or (kind != 3 and wd) or wd > 6:
            raise _Bad
        prev = day
        days.append((day, t))
    # Runs of consecutive days of one type read as ranges, as a manager would write them.
    out: dict[str, str] = {}
    i = 0
    while i < len(days):
        j = i
        while (
            j + 1 < len(days)
            and days[j + 1] == (days[j][0] + 1, days[i][1])
            and days[j + 1][0] - days[i][0] < 366
        ):
            j += 1
        first = (_EPOCH + dt.timedelta(days=days[i][0])).isoformat()
        last = (_EPOCH + dt.timedelta(days=days[j][0])).isoformat()
        out[first if i == j else f"{first}..{last}"] = format_holiday_type(days[i][1])
        i = j + 1
    return out


def _decode(p: Mapping[int | str, Any]) -> dict[str, Any]:
    if p.get(0) != TYPE_TAG or signed_object.as_uint(p.get(1)) != VERSION:
        raise _Bad
    src: dict[str, Any] = {}
    src["seq"] = _u(p.get(2), 1 << 63)
    src["iat"] = _u(p.get(3), 1 << 63)
    src["reader_id"] = _t(p.get(4))
    tz = p.get(5)
    if not isinstance(tz, int) or isinstance(tz, bool) or not -720 <= tz <= 840:
        raise _Bad
    src["timezone"] = format_timezone(tz)
    if 6 in p:
        if not isinstance(p[6], str):
            raise _Bad
        src["site"] = p[6]
    if 11 in p:
        src["holidays"] = _decode_holidays(p[11])
    if 12 in p:
        src["antipassback_capacity"] = _u(p[12], MAX_APB)
        if not src["antipassback_capacity"]:
            raise _Bad
    if 13 in p:
        src["antipassback_timeout"] = _u(p[13], MAX_APB_TIMEOUT)
        if not src["antipassback_timeout"]:
            raise _Bad
    groups = [_decode_group(e) for e in _tab(p, 8, MAX_GROUPS)]
    schedules = [_decode_schedule(e) for e in _tab(p, 9, MAX_SCHEDULES)]
    gids = [g["id"] for g in groups]
    sids = [s["id"] for s in schedules]
    if 7 not in p:
        raise _Bad
    doors_raw = _tab(p, 7, MAX_DOORS)
    if not doors_raw:
        raise _Bad
    doors = []
    for e in doors_raw:
        d: dict[str, Any] = {"id": _t(e.get(1)), "name": _t(e.get(2))}
        d["mode"] = {0: "normal", 1: "locked_down"}[_u(e.get(3, 0), 1)]
        if 4 in e:
            d["unlock_schedule"] = sids[_u(e[4], len(sids) - 1)]
        if 5 in e:
            if 4 not in e:
                raise _Bad
            d["first_card"] = [gids[i] for i in _ix(e[5], len(gids))]
        if 6 in e:
            d["lockdown_override"] = [gids[i] for i in _ix(e[6], len(gids))]
        d["requires_anti_clone"] = _b(e.get(7, False))
        d["retap_seconds"] = _u(e.get(8, 0), MAX_RETAP)
        apb = _u(e.get(9, 0), 2)
        if apb:
            a, b = _u(e.get(10), 255), _u(e.get(11), 255)
            if a == b:
                raise _Bad
            d["anti_passback"] = {"mode": ("soft", "hard")[apb - 1], "from": a, "to": b}
        unlock_s = e.get(12, DEFAULT_UNLOCK_S)
        held = e.get(13, DEFAULT_HELD_OPEN_S)
        if _u(unlock_s, 3600) < 1 or _u(held, 86400) < 1:
            raise _Bad
        d["unlock_seconds"], d["held_open_seconds"] = unlock_s, held
        doors.append(d)
    dids = [d["id"] for d in doors]
    for ids in (gids, sids, dids):
        if len(set(ids)) != len(ids):
            raise _Bad
    rules = []
    for e in _tab(p, 10, MAX_RULES):
        effect = _u(e.get(1), 2)
        if effect not in (1, 2):
            raise _Bad
        r: dict[str, Any] = {"effect": "allow" if effect == 1 else "deny"}
        r["groups"] = [gids[i] for i in _ix(e.get(2), len(gids))]
        if 3 in e:
            r["doors"] = [dids[i] for i in _ix(e[3], len(dids))]
        if 4 in e:
            r["schedule"] = sids[_u(e[4], len(sids) - 1)]
        rules.append(r)
    _fold_shortcuts(groups, rules, doors, src)
    src["group"], src["schedule"], src["door"], src["rule"] = groups, schedules, doors, rules
    return src


def _fold_shortcuts(
    groups: list[dict[str, Any]],
    rules: list[dict[str, Any]],
    doors: list[dict[str, Any]],
    src: dict[str, Any],
) -> None:
    """Show the builder's [deny] / [allow] lists as such (so that a shown config builds again)."""
    for key, pairs in SHORTCUT_GROUPS.items():
        found = [(field, g) for field, gid in pairs for g in groups if g["id"] == gid]
        gids = [g["id"] for _, g in found]
        refs = [r for r in rules if set(gids) & set(r["groups"])]
        used_by_doors = any(
            set(gids) & set(d.get(k, ())) for d in doors for k in ("first_card", "lockdown_override")
        )
        if (
            found
            and all(set(g) == {"id", field} for field, g in found)
            and len(refs) == 1
            and refs[0] == {"effect": key, "groups": gids}
            and not used_by_doors
        ):
            src[key] = {field: g[field] for field, g in found}
            for _, g in found:
                groups.remove(g)
            rules.remove(refs[0])


def parse_payload(payload: Mapping[int | str, Any]) -> dict[str, Any] | None:
    """The configuration as a readable source-like dict (plus seq, iat), or None when a reader
    would call it ``malformed``. Areas come back as numbers, holidays as date ranges, the builder's
    deny/allow lists as ``deny`` / ``allow``; the rest can be built again as it is."""
    try:
        return _decode(payload)
    except (_Bad, IndexError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class LoadResult:
    status: str
    config: dict[str, Any] | None = None


def load(
    blob: bytes, key: keys.PublicKey, held_seq: int | None = None, *, reader_id: str | None = None
) -> LoadResult:
    """Verify a signed configuration under the pinned configuration key, in the reader's order of checks."""

    def for_this_reader(cfg: dict[str, Any]) -> str | None:
        return WRONG_READER if reader_id is not None and cfg["reader_id"] != reader_id else None

    status, parsed = signed_object.load_signed(
        blob, MAX_SIZE, key, parse_payload, lambda cfg: cfg["seq"], held_seq, for_this_reader
    )
    return LoadResult(status, parsed)
