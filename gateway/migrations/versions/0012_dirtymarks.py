"""att_dirty.marks: how many times a person-month was marked. The periodic refresh read the marks,
computed, then emptied the table — a punch arriving meanwhile for a person-month already marked
added no row (the mark was there) and lost its mark with the rest, leaving that person-month's
stored days stale until its next change. The refresh now removes a row only if its count is the
one it read.

Revision ID: 0012_dirtymarks
Revises: 0011_attstamp
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_dirtymarks"
down_revision: str | None = "0011_attstamp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("att_dirty") as batch:
        batch.add_column(sa.Column("marks", sa.BigInteger(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("att_dirty") as batch:
        batch.drop_column("marks")
