"""attendance pages of one agency: the people in view found by index, and the month's
clock-unset taps (catch-up, per request) read from a small partial index instead of every
event of the month (gateway/attendance/store.py, readers.catch_up)

Revision ID: 0009_attnfast
Revises: 0007_consolespeed
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_attnfast"
down_revision: str | None = "0007_consolespeed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLOCK_UNSET = "kind = 'tap' AND time_quality = 0 AND staff_code IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_staffrecord_unit", "staffrecord", ["unit"], if_not_exists=True)
    op.create_index("ix_att_unit_span_unit", "att_unit_span", ["unit"], if_not_exists=True)
    op.create_index("ix_att_unit_span_agency_code", "att_unit_span", ["agency_code"], if_not_exists=True)
    op.create_index(
        "ix_event_clock_unset_tap",
        "event",
        ["occurred_at"],
        postgresql_where=sa.text(_CLOCK_UNSET),
        sqlite_where=sa.text(_CLOCK_UNSET),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_event_clock_unset_tap", "event", if_exists=True)
    op.drop_index("ix_att_unit_span_agency_code", "att_unit_span", if_exists=True)
    op.drop_index("ix_att_unit_span_unit", "att_unit_span", if_exists=True)
    op.drop_index("ix_staffrecord_unit", "staffrecord", if_exists=True)
