"""card issuance records

Revision ID: 0003_issuance
Revises: 0002
Create Date: 2026-12-06 02:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_issuance"
down_revision: str | None = "0003_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_issuance",
        sa.Column("serial", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("staff_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("issuer", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("gen", sa.Integer(), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("operator", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("station", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("replaces", sa.BigInteger(), nullable=True),
        sa.Column("credential", sa.LargeBinary(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("serial"),
    )
    with op.batch_alter_table("card_issuance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_issuance_issuer"), ["issuer"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_issuance_staff_code"), ["staff_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_issuance_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_issuance_station"), ["station"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_issuance_uid"), ["uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("card_issuance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_issuance_uid"))
        batch_op.drop_index(batch_op.f("ix_card_issuance_station"))
        batch_op.drop_index(batch_op.f("ix_card_issuance_state"))
        batch_op.drop_index(batch_op.f("ix_card_issuance_staff_code"))
        batch_op.drop_index(batch_op.f("ix_card_issuance_issuer"))
    op.drop_table("card_issuance")
