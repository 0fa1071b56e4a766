"""door state in one query (each reader's latest event of a kind is an index lookup); name
search served in byte order by one index (prefix match and ORDER BY name, staff code)

Revision ID: 0005_doorstate
Revises: 0003_console
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_doorstate"
down_revision: str | None = "0003_issuance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_event_reader_kind_seq", "event", ["reader_id", "kind", "seq"])
    if op.get_bind().dialect.name == "postgresql":  # name search: prefix and order from one index
        op.execute("DROP INDEX IF EXISTS ix_staffrecord_name_fold")
        op.execute(
            "CREATE INDEX ix_staffrecord_name_fold ON staffrecord"
            ' ((cbcc_fold(full_name) COLLATE "C"), staff_code)'
        )


def downgrade() -> None:
    op.drop_index("ix_event_reader_kind_seq", table_name="event")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_staffrecord_name_fold")
        op.execute(
            "CREATE INDEX ix_staffrecord_name_fold ON staffrecord (cbcc_fold(full_name) text_pattern_ops)"
        )
