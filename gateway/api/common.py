"""Query parameters and helpers used by several routers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Query
from pydantic import BeforeValidator
from sqlmodel import Session

from gateway import audit
from gateway.api.errors import conflict
from gateway.api.schemas import CURSOR_PATTERN, INT64_MAX, MAX_PAGE, TEXT_PATTERN
from messages import _

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Số dòng mỗi trang, tối đa 1000 (page size)")]
Cursor = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        max_length=18,
        description="Con trỏ `next` của trang trước (cursor from the previous page)",
    ),
]
NUMBER = re.compile(r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$")


def _iso_only(value: Any) -> Any:
    """ISO 8601 only: pydantic would also take a bare number as a Unix time."""
    if isinstance(value, str) and NUMBER.match(value):
        raise ValueError(_("expected an ISO 8601 date-time such as 2025-03-01T00:00:00Z"))
    return value


IsoOnly = BeforeValidator(_iso_only)
Since = Annotated[
    datetime | None,
    IsoOnly,
    Query(alias="from", description="Từ thời điểm (ISO 8601; không có múi giờ = UTC)"),
]
Until = Annotated[
    datetime | None, IsoOnly, Query(alias="to", description="Đến trước thời điểm (ISO 8601, loại trừ)")
]
Order = Annotated[str, Query(pattern="^(asc|desc)$", description="asc (cũ trước) | desc (mới trước)")]
Word = Annotated[str | None, Query(pattern=r"^[a-z0-9_:.-]{1,32}$", max_length=32)]
TextQ = Annotated[str | None, Query(pattern=TEXT_PATTERN, min_length=1, max_length=128)]

T = TypeVar("T")


def page(rows: Sequence[T], limit: int, key: Any) -> tuple[list[T], str | None]:
    """Rows were fetched with ``limit + 1``: the extra one only says that a next page exists."""
    items = list(rows[:limit])
    nxt = str(key(items[-1])) if len(rows) > limit and items else None
    return items, nxt


def commit(session: Session, conflict_detail: str) -> None:
    """Commit; a unique or foreign-key violation (a concurrent change) becomes 409."""
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        raise conflict(conflict_detail) from None


def update_and_audit(
    session: Session,
    row: Any,
    changes: dict[str, Any],
    *,
    actor: str,
    role: str,
    action: str,
    target: str,
    conflict_detail: str,
) -> bool:
    """Apply ``changes`` to ``row``, audit exactly them in the same transaction, and commit (a
    concurrent change becomes 409). No change, no audit entry: returns whether anything changed."""
    if not changes:
        return False
    for field, value in changes.items():
        setattr(row, field, value)
    session.add(row)
    audit.record(session, actor, action, target, role=role, **changes)
    commit(session, conflict_detail)
    return True


def after_cursor(column: Any, cursor: str | None, order: str, max_id: int = INT64_MAX) -> Any:
    """Keyset condition for ``cursor`` on an integer id ``column`` (ids above ``max_id``, the
    column type's largest, cannot be bound: such a cursor is past every row, or before all)."""
    if cursor is None:
        return sa.true()
    value = int(cursor)
    if value > max_id:
        return sa.false() if order == "asc" else sa.true()
    return column > value if order == "asc" else column < value
