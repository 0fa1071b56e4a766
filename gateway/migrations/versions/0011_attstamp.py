"""att_stamp: a change counter per person-month, raised wherever ``att_dirty`` is marked and never
consumed. The console's kept attendance rows of an agency compare these stamps instead of reading
every input of its 4,300 people (~310,000 punches) per request. Empty at first: a process keeps
nothing across restarts, so no stamp is needed for changes made before.

Revision ID: 0011_attstamp
Revises: 0010_consolegaps
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0011_attstamp"
down_revision: str | None = "0010_consolegaps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "att_stamp",
        sa.Column("staff_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("staff_code", "month"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("att_stamp", if_exists=True)
