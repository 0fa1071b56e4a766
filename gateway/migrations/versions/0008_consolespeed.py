"""scoped name search: an index by agency code, then folded name and staff code, so a search
within a unit reads that unit's matches in name order (gateway/console/search.py)

Revision ID: 0007_consolespeed
Revises: 0007_attn
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_consolespeed"
down_revision: str | None = "0007_attn"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_staffrecord_unit_name ON staffrecord"
            ' ((agency_code COLLATE "C"), (cbcc_fold(full_name) COLLATE "C"), staff_code)'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_staffrecord_unit_name")
