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

from sqlmodel import Session, col, select

from gateway.db import utc
from gateway.models import Alarm, Command, Event, Reader, now_utc

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


RECENT: Final = 300  # events looked at per reader: bounded work however long its history


def read(session: Session, readers: Sequence[Reader]) -> dict[str, ReaderDoor]:
    """The door state of each reader: its active alarms, and its last door event, mode notice and
    grant among its :data:`RECENT` latest events (one bounded, indexed query per reader, so a page
    costs the same with 10 M events as with 10). A lockdown older than that window is still seen
    through the last lockdown / release command the reader acknowledged."""
    out = {r.id: ReaderDoor(r.id, online=r.online) for r in readers}
    if not out:
        return out
    active = select(Alarm).where(Alarm.active == True, col(Alarm.reader_id).in_(list(out)))  # noqa: E712
    for a in session.exec(active):
        out[a.reader_id].alarms.add(a.kind)
    for rid, rd in out.items():
        recent = session.exec(
            select(Event.kind, Event.detail, Event.decision, Event.occurred_at)
            .where(Event.reader_id == rid)
            .order_by(col(Event.seq).desc())
            .limit(RECENT)
        ).all()
        for kind, detail, decision, at in recent:  # newest first
            if kind == "door" and rd.opened is None and detail in ("opened", "closed"):
                rd.opened = detail == "opened"
            elif kind == "notice" and rd.mode is None and detail and detail.startswith("mode:"):
                rd.mode = detail.split(":", 1)[1]
            elif kind == "tap" and decision == "grant" and rd.last_grant is None:
                rd.last_grant = utc(at)
        if rd.mode is None:
            cmd = session.exec(
                select(Command.action)
                .where(
                    Command.target == rid,
                    col(Command.action).in_(("lockdown", "release")),
                    Command.outcome == "ok",
                )
                .order_by(col(Command.id).desc())
                .limit(1)
            ).first()
            if cmd == "lockdown":
                rd.mode = "locked_down"
    return out
