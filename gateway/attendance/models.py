"""Attendance tables (SQLModel). Raw inputs (punches, corrections, leave) are only ever inserted;
what HR changes is recorded beside them, never edited into them. Times are timezone-aware UTC,
dates are civil dates in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gateway.models import BigId, now_utc


def _ts(nullable: bool = True, index: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class AttPunch(SQLModel, table=True):
    """A raw punch, once per (staff, exact time): a re-sent log or a file imported twice adds nothing.
    Punches of staff codes not (yet) in the staff records are kept here too and count once the
    record arrives."""

    __tablename__ = "att_punch"
    __table_args__ = (sa.UniqueConstraint("staff_code", "at", name="uq_att_punch_staff_at"),)

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    staff_code: str = Field(max_length=32)
    at: datetime = Field(sa_column=_ts(False, index=True))
    source: str = Field(max_length=16)  # reader | import | correction
    ref: str = Field(default="", max_length=128)  # event:<id> | file:<sha256/16>:<row> | correction:<id>
    terminal: str = Field(default="", max_length=64)
    received_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttCorrection(SQLModel, table=True):
    """HR's add / void of a punch, with its reason (the raw punch itself is never touched)."""

    __tablename__ = "att_correction"

    id: int | None = Field(default=None, primary_key=True)
    staff_code: str = Field(max_length=32, index=True)
    action: str = Field(max_length=8)  # add | void
    at: datetime = Field(sa_column=_ts(False))
    reason: str = Field(max_length=500)
    actor: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttShift(SQLModel, table=True):
    __tablename__ = "att_shift"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    sessions: str = Field(max_length=200)  # "07:30-11:30,13:00-17:00"
    days: str = Field(max_length=64)  # "Mon,Tue,Wed,Thu,Fri"
    grace_in: int = 0
    grace_out: int = 0
    # A round-the-clock shift that runs on public holidays and days off (contract rule 3's option).
    on_holidays: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    updated_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttAssignment(SQLModel, table=True):
    """A shift for one person (``staff_code``) or a whole unit (``unit``) from a date on."""

    __tablename__ = "att_assignment"

    id: int | None = Field(default=None, primary_key=True)
    shift_id: str = Field(max_length=64)
    staff_code: str | None = Field(default=None, max_length=32, index=True)
    unit: str | None = Field(default=None, max_length=200, index=True)
    start: date
    end: date | None = None
    created_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttCalendar(SQLModel, table=True):
    """A site override of the calendar (``cbcc attendance calendar set``)."""

    __tablename__ = "att_calendar"

    day: date = Field(primary_key=True)
    kind: str = Field(max_length=16)  # holiday | dayoff | workday
    name: str = Field(default="", max_length=200)
    set_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttLeave(SQLModel, table=True):
    __tablename__ = "att_leave"

    id: int | None = Field(default=None, primary_key=True)
    staff_code: str = Field(max_length=32, index=True)
    kind: str = Field(max_length=8)  # Mẫu C01-HD symbol or CT
    start: date
    end: date
    half: str | None = Field(default=None, max_length=2)  # am | pm
    reason: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttUnitSpan(SQLModel, table=True):
    """Unit history: from ``start`` on the person belonged to ``unit`` (kept from the staff records
    as they change, so a transfer mid-month splits the month)."""

    __tablename__ = "att_unit_span"

    staff_code: str = Field(primary_key=True, max_length=32)
    start: date = Field(primary_key=True)
    # indexed: a unit's page finds the people ever in it (migration 0009)
    unit: str = Field(max_length=200, index=True)
    agency_code: str = Field(default="", max_length=32, index=True)


class AttDay(SQLModel, table=True):
    """A computed person-day (the report's day entry as JSON), kept current incrementally."""

    __tablename__ = "att_day"

    staff_code: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    unit: str = Field(primary_key=True, max_length=200)
    data: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    computed_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttDirty(SQLModel, table=True):
    """A person-month whose inputs changed since its ``att_day`` rows were computed. ``marks``
    counts the marks: the refresh removes a row only if no mark came after it read it."""

    __tablename__ = "att_dirty"

    staff_code: str = Field(primary_key=True, max_length=32)
    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM
    since: datetime = Field(default_factory=now_utc, sa_column=_ts(False))  # the first mark
    marks: int = Field(default=1, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="1"))


class AttStamp(SQLModel, table=True):
    """A change counter per person-month, raised with every ``att_dirty`` mark (and never consumed,
    unlike ``att_dirty``): the console's kept rows of a person-month are current while its stamp
    (and the month's ``*`` stamp) is the one they were computed at."""

    __tablename__ = "att_stamp"

    staff_code: str = Field(primary_key=True, max_length=32)  # or "*": every person of the month
    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM
    seq: int = Field(default=1, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="1"))


class AttDoor(SQLModel, table=True):
    """A door whose granted entries count as attendance punches (opted in by HR)."""

    __tablename__ = "att_door"

    door_id: str = Field(primary_key=True, max_length=64)
    since: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class AttOvertime(SQLModel, table=True):
    """Approved overtime of one person-day (candidates are computed; only approved minutes count)."""

    __tablename__ = "att_overtime"

    staff_code: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    minutes: int
    reason: str = Field(max_length=500)
    approved_by: str = Field(max_length=64)
    approved_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))
