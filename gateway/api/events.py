"""Events: filtered, keyset-paginated by id, and exported as CSV that Excel opens in Vietnamese.

Pagination is by event id (``cursor`` = the ``next`` of the previous page), so a page never
repeats or skips rows because new events arrived meanwhile.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
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
from gateway.models import Event

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

COLUMNS = (
    "Mã sự kiện",
    "Thời điểm (UTC)",
    "Giờ Việt Nam (UTC+7)",
    "Đầu đọc",
    "Cửa",
    "Loại sự kiện",
    "Quyết định",
    "Lý do",
    "Mã cán bộ",
    "Số serial thẻ",
    "Công nghệ thẻ",
    "Hướng",
    "Chấm công",
    "Giờ đã hiệu chỉnh",
    "Chất lượng đồng hồ",
    "Báo động",
    "Chi tiết",
)
HEADER = tuple(unicodedata.normalize("NFC", c) for c in COLUMNS)
KINDS = {"tap": "Quẹt thẻ", "alarm": "Báo động", "notice": "Thông báo", "boot": "Khởi động"}
DECISIONS = {"grant": "Cho qua", "deny": "Từ chối", "punch": "Chấm công"}
DIRECTIONS = {"in": "Vào", "out": "Ra"}
QUALITY = {0: "Chưa đặt giờ", 1: "RTC", 2: "Đã đồng bộ"}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    text = unicodedata.normalize("NFC", str(value))
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):  # a spreadsheet would run it as a formula
        text = "'" + text
    return text


def _row(e: Event) -> list[str]:
    at = utc(e.occurred_at)
    assert at is not None  # noqa: S101 — type narrowing for mypy, not input validation
    return [
        str(e.id),
        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        at.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S"),
        _cell(e.reader_id),
        _cell(e.door),
        _cell(KINDS.get(e.kind, e.kind)),
        _cell(DECISIONS.get(e.decision, e.decision) if e.decision else None),
        _cell(e.reason),
        _cell(e.staff_code),
        _cell(e.serial),
        _cell(e.technology),
        _cell(DIRECTIONS.get(e.direction, e.direction) if e.direction else None),
        _cell(e.punch),
        _cell(e.time_corrected),
        _cell(QUALITY.get(e.time_quality, e.time_quality)),
        _cell(e.alarm),
        _cell(e.detail),
    ]


def _csv_lines(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def _export(ctx_engine: Any, conditions: list[Any], max_rows: int) -> Iterator[bytes]:
    yield b"\xef\xbb\xbf" + _csv_lines([list(HEADER)])  # BOM: Excel then reads UTF-8
    last = 0
    sent = 0
    while sent < max_rows:
        n = min(EXPORT_BATCH, max_rows - sent)
        with Session(ctx_engine) as session:
            rows = session.exec(
                select(Event).where(*conditions, col(Event.id) > last).order_by(col(Event.id)).limit(n)
            ).all()
            lines = [_row(e) for e in rows]
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
) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _export(ctx.engine, filters.conditions(principal), max_rows),
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
