"""A door's state as the console shows it, from what its reader last reported.

The reader journals ``door`` events (``opened``/``closed``), ``notice`` ``mode:<mode>`` when its
door mode changes (configuration, lockdown and release commands), ``alarm`` events (kept as
``Alarm`` rows by the fleet) and taps. The state is the most serious that applies:
lockdown > forced > held open > open > unlocked > locked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gateway.db import utc
from gateway.models import Alarm, Event, Reader, now_utc

STATES: Final = ("lockdown", "forced", "held_open", "open", "unlocked", "locked", "unknown")
UNLOCK_WINDOW: Final = timedelta(seconds=5)  # a grant unlocks for unlock_seconds (default 5)
DOOR_ALARMS: Final = ("forced_open", "held_open", "tamper", "fire", "offline")


@dataclass
class ReaderDoor:
    reader_id: str
    mode: str | None = None  # normal | scheduled_unlocked | locked_down
    opened: bool | None = None  # from the last door event
    last_grant: datetime | None = None
    alarms: set[str] = field(default_factory=set)
    online: bool = False

    def state(self, now: datetime | None = None) -> str:
        now = now or now_utc()
        if self.mode == "locked_down":
            return "lockdown"
        if "forced_open" in self.alarms:
            return "forced"
        if "held_open" in self.alarms:
            return "held_open"
        if self.opened:
            return "open"
        if self.mode == "scheduled_unlocked" or "fire" in self.alarms:
            return "unlocked"
        if self.last_grant is not None and now - self.last_grant < UNLOCK_WINDOW:
            return "unlocked"
        if self.opened is None and self.mode is None and not self.online:
            return "unknown"  # never told us anything and not connected: we cannot say
        return "locked"  # the relay is off unless something above holds it (boot never energises it)


def worst(states: Iterable[str]) -> str:
    found = list(states)
    for s in STATES:
        if s in found:
            return s
    return "unknown"


def _last(session: Session, rid: str, cond: sa.ColumnElement[bool]) -> Event | None:
    q = select(Event).where(Event.reader_id == rid, cond).order_by(col(Event.seq).desc()).limit(1)
    return session.exec(q).first()


def read(session: Session, readers: Sequence[Reader]) -> dict[str, ReaderDoor]:
    """The door state of each reader (a few indexed queries per reader: keep lists per site)."""
    out = {r.id: ReaderDoor(r.id, online=r.online) for r in readers}
    if not out:
        return out
    for a in session.exec(select(Alarm).where(Alarm.active == True, col(Alarm.reader_id).in_(list(out)))):  # noqa: E712
        out[a.reader_id].alarms.add(a.kind)
    for rid, rd in out.items():
        door = _last(session, rid, col(Event.kind) == "door")
        if door is not None and door.detail in ("opened", "closed"):
            rd.opened = door.detail == "opened"
        mode = _last(
            session, rid, sa.and_(col(Event.kind) == "notice", col(Event.detail).startswith("mode:"))
        )
        if mode is not None and mode.detail:
            rd.mode = mode.detail.split(":", 1)[1]
        grant = _last(session, rid, sa.and_(col(Event.kind) == "tap", col(Event.decision) == "grant"))
        if grant is not None:
            rd.last_grant = utc(grant.occurred_at)
    return out
