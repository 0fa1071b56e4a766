"""Events: filtered, keyset-paginated by id, and exported as CSV that Excel opens in Vietnamese.

Pagination is by event id (``cursor`` = the ``next`` of the previous page), so a page never
repeats or skips rows because new events arrived meanwhile.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import StreamingResponse
from sqlmodel import Session, col, select

from gateway.api.common import Cursor, Limit, Order, Since, Until, after_cursor, page
from gateway.api.deps import DB, Ctx, as_utc, readers_in_scope, require
from gateway.api.errors import not_found, responses
from gateway.api.schemas import (
    DOOR_ID_PATTERN,
    INT64_MAX,
    READER_ID_PATTERN,
    EventDetail,
    EventOut,
    EventPage,
)
from gateway.auth import EVENTS_EXPORT, EVENTS_READ, Principal
from gateway.db import utc
from gateway.models import Door, Event, Reader, StaffRecord
from messages import N_, gettext, words
from messages.api import lang_of

router = APIRouter(prefix="/events", tags=["events"], responses=responses(400, 401, 403, 422))

CanRead = Annotated[Principal, Depends(require(EVENTS_READ))]
CanExport = Annotated[Principal, Depends(require(EVENTS_EXPORT))]

ReaderQ = Annotated[str | None, Query(pattern=READER_ID_PATTERN, max_length=63, description="Đầu đọc")]
DoorQ = Annotated[str | None, Query(pattern=DOOR_ID_PATTERN, max_length=64, description="Cửa")]
StaffQ = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,32}$", max_length=32, description="Mã cán bộ (staff code)")
]
SerialQ = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="Số serial thẻ (card serial)")]
KindQ = Annotated[
    str | None,
    Query(pattern=r"^[a-z_]{1,16}$", max_length=16, description="Loại: tap, alarm, notice, boot, …"),
]
DecisionQ = Annotated[
    str | None, Query(pattern=r"^[a-z_]{1,16}$", max_length=16, description="grant | deny | punch")
]

VN = timezone(timedelta(hours=7), "ICT")
EXPORT_BATCH = 1000


class EventFilter:
    """The filters that the list and the CSV export share (a dependency)."""

    def __init__(
        self,
        since: Since = None,
        until: Until = None,
        reader_id: ReaderQ = None,
        door: DoorQ = None,
        staff_code: StaffQ = None,
        serial: SerialQ = None,
        kind: KindQ = None,
        decision: DecisionQ = None,
        punch: Annotated[
            bool | None, Query(description="Chỉ sự kiện tính chấm công (attendance only)")
        ] = None,
    ) -> None:
        self.since = as_utc(since) if since is not None else None
        self.until = as_utc(until) if until is not None else None
        self.reader_id = reader_id
        self.door = door
        self.staff_code = staff_code
        self.serial = serial
        self.kind = kind
        self.decision = decision
        self.punch = punch

    def conditions(self, principal: Principal) -> list[Any]:
        out: list[Any] = []
        if principal.scoped:
            out.append(col(Event.reader_id).in_(readers_in_scope(principal)))
        if self.since is not None:
            out.append(col(Event.occurred_at) >= self.since)
        if self.until is not None:
            out.append(col(Event.occurred_at) < self.until)
        for column, value in (
            (Event.reader_id, self.reader_id),
            (Event.door, self.door),
            (Event.staff_code, self.staff_code),
            (Event.serial, self.serial),
            (Event.kind, self.kind),
            (Event.decision, self.decision),
        ):
            if value is not None:
                out.append(col(column) == value)
        if self.punch is not None:
            attendance = (col(Event.decision) == "punch") | (col(Event.punch) == True)  # noqa: E712
            out.append(attendance if self.punch else ~attendance)
        return out


Filters = Annotated[EventFilter, Depends()]


@router.get("", response_model=EventPage, summary="Tra cứu sự kiện (search events)")
def list_events(
    session: DB,
    principal: CanRead,
    filters: Filters,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: Order = "asc",
) -> EventPage:
    q = select(Event).where(*filters.conditions(principal))
    if cursor is not None:
        q = q.where(after_cursor(col(Event.id), cursor, order))
    q = q.order_by(col(Event.id) if order == "asc" else col(Event.id).desc()).limit(limit + 1)
    rows = session.exec(q).all()
    items, nxt = page(rows, limit, lambda e: e.id)
    return EventPage(items=[EventOut.model_validate(e) for e in items], next=nxt)


# ---- CSV ----------------------------------------------------------------------------------------

# English ids, Vietnamese in messages/vi.po; the language follows Accept-Language (default vi).
COLUMNS = (
    N_("Event id"),
    N_("Time (UTC)"),
    N_("Vietnam time (UTC+7)"),
    N_("Reader"),
    N_("Door"),
    N_("Event type"),
    N_("Decision"),
    N_("Reason"),
    N_("Staff code"),
    N_("Full name"),
    N_("Card serial"),
    N_("Card technology"),
    N_("Direction"),
    N_("Attendance punch"),
    N_("Time corrected"),
    N_("Clock quality"),
    N_("Alarm"),
    N_("Details"),
)
DIRECTIONS = {"in": N_("In"), "out": N_("Out")}
YES, NO = N_("Yes"), N_("No")


def header(lang: str) -> list[str]:
    return [unicodedata.normalize("NFC", gettext(c, lang)) for c in COLUMNS]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cell(value: Any, lang: str = "vi") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext(YES if value else NO, lang)
    text = unicodedata.normalize("NFC", str(value))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):  # a spreadsheet would run it as a formula
        text = "'" + text
    return text


@dataclass
class _Lookup:
    """Names shown beside codes: staff names (national records) and the reader's door."""

    names: dict[str, str]
    doors: dict[str, str]  # reader id -> door name (id)

    @classmethod
    def load(cls, session: Session, rows: Sequence[Event]) -> _Lookup:
        codes = {e.staff_code for e in rows if e.staff_code}
        names = {}
        if codes:
            known = col(StaffRecord.staff_code).in_(codes)
            pairs = session.exec(select(StaffRecord.staff_code, StaffRecord.full_name).where(known))
            for code, name in pairs:
                names[code] = name
        rids = {e.reader_id for e in rows}
        doors = {}
        if rids:
            for rid, door_id, door_name in session.exec(
                select(Reader.id, Reader.door_id, Door.name)
                .join(Door, col(Door.id) == col(Reader.door_id))
                .where(col(Reader.id).in_(rids))
            ):
                doors[rid] = f"{door_name} ({door_id})"
        return cls(names, doors)


def _door(e: Event, look: _Lookup) -> str | None:
    """The reader's own door index (``0``) means little to a person: show the registered door."""
    if (e.door is None or e.door.isdigit()) and e.reader_id in look.doors:
        return look.doors[e.reader_id]
    return e.door


def _row(e: Event, look: _Lookup, lang: str = "vi") -> list[str]:
    at = utc(e.occurred_at)
    assert at is not None  # noqa: S101 — type narrowing for mypy, not input validation
    punch = bool(e.punch) or e.decision == "punch"
    return [
        str(e.id),
        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        at.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S"),
        _cell(e.reader_id),
        _cell(_door(e, look)),
        _cell(_cap(words.kind(e.kind, lang))),
        _cell(_cap(words.decision(e.decision, lang)) if e.decision else None),
        _cell(words.reason(e.reason, e.decision, lang) if e.reason else None),
        _cell(e.staff_code),
        _cell(look.names.get(e.staff_code or "")),
        _cell(e.serial),
        _cell(e.technology),
        _cell(gettext(DIRECTIONS[e.direction], lang) if e.direction in DIRECTIONS else e.direction),
        _cell(True, lang) if punch else _cell(e.punch, lang),
        _cell(e.time_corrected, lang),
        _cell(_cap(words.time_quality(e.time_quality, lang)) or e.time_quality),
        _cell(words.alarm(e.alarm, e.active, lang) if e.alarm else None),
        _cell(e.detail),
    ]


def _csv_lines(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def _export(ctx_engine: Any, conditions: list[Any], max_rows: int, lang: str = "vi") -> Iterator[bytes]:
    yield b"\xef\xbb\xbf" + _csv_lines([header(lang)])  # BOM: Excel then reads UTF-8
    last = 0
    sent = 0
    while sent < max_rows:
        n = min(EXPORT_BATCH, max_rows - sent)
        with Session(ctx_engine) as session:
            rows = session.exec(
                select(Event).where(*conditions, col(Event.id) > last).order_by(col(Event.id)).limit(n)
            ).all()
            look = _Lookup.load(session, rows)
            lines = [_row(e, look, lang) for e in rows]
        if not rows:
            return
        yield _csv_lines(lines)
        sent += len(rows)
        last = rows[-1].id or last
        if len(rows) < n:
            return


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "CSV UTF-8 có BOM (Excel mở được tiếng Việt); tiêu đề cột tiếng Việt",
        }
    },
    summary="Xuất sự kiện ra CSV cho Excel (export events as CSV)",
)
def export_csv(
    ctx: Ctx,
    principal: CanExport,
    filters: Filters,
    max_rows: Annotated[int, Query(ge=1, le=1_000_000, description="Số dòng tối đa (row limit)")] = 1_000_000,
    accept_language: Annotated[str | None, Header(description="en: English; otherwise Vietnamese")] = None,
) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _export(ctx.engine, filters.conditions(principal), max_rows, lang_of(accept_language)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="cbcc-su-kien-{stamp}.csv"'},
    )


@router.get(
    "/{event_id}",
    response_model=EventDetail,
    responses=responses(404),
    summary="Một sự kiện, kèm bản ghi gốc và MAC (one event, with its sealed record)",
)
def get_event(
    event_id: Annotated[int, Path(ge=1, le=INT64_MAX)], session: DB, principal: CanRead
) -> EventDetail:
    q = select(Event).where(Event.id == event_id, *EventFilter().conditions(principal))
    event = session.exec(q).first()
    if event is None:
        raise not_found("event")
    data = EventOut.model_validate(event).model_dump()
    return EventDetail(**data, record_hex=event.record.hex(), mac_hex=event.mac.hex())
