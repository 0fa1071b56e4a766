"""attendance: a shift option for round-the-clock shifts that run on public holidays and days off

Revision ID: 0007_attn
Revises: 0005_doorstate
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_attn"
down_revision: str | None = "0005_doorstate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("att_shift") as batch:
        batch.add_column(sa.Column("on_holidays", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("att_shift") as batch:
        batch.drop_column("on_holidays")
