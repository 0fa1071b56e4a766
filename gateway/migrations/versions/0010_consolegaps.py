"""head count of every agency, kept by the database (PostgreSQL): the console's unit picker lists
up to 300 agencies with their counts in one indexed read. Counting them per request read every
staff record of the scope (2 M nationally) — a GROUP BY became a sequential scan (4-5 s), one count
per agency about as much in total — so the picker showed counts for at most 50 agencies.

Statement-level triggers with transition tables keep ``agency_headcount`` exact under every
writer (national sync, ``cbcc sync import``, COPY, ORM): each statement appends one row per agency
it changed with the net change (+1 a new record, -1 a removed one), never updates a row — an
upsert of the same few hundred rows by every statement of a long transaction (a sync batch) made
version chains that each later statement walked: 200,000 records inserted 1,000 at a time took
minutes. The reader sums the rows per agency and folds them back to one row each when they pile
up (gateway/attendance/store.py). SQLite sites are small: their picker counts with a GROUP BY.

Revision ID: 0010_consolegaps
Revises: 0009_attnfast
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_consolegaps"
down_revision: str | None = "0009_attnfast"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# append the net change of each agency (+1 per new row, -1 per old row) the statement made
_APPLY = """
  INSERT INTO agency_headcount (agency_code, n)
    SELECT agency_code, sum(d) FROM ({rows}) AS x(agency_code, d) GROUP BY agency_code HAVING sum(d) <> 0;
"""
_ROWS = {
    "ins": "SELECT agency_code, 1 FROM cbcc_new",
    "del": "SELECT agency_code, -1 FROM cbcc_old",
    "upd": "SELECT agency_code, 1 FROM cbcc_new UNION ALL SELECT agency_code, -1 FROM cbcc_old",
}
_REFERENCING = {
    "ins": ("INSERT", "NEW TABLE AS cbcc_new"),
    "del": ("DELETE", "OLD TABLE AS cbcc_old"),
    "upd": ("UPDATE", "NEW TABLE AS cbcc_new OLD TABLE AS cbcc_old"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        'CREATE TABLE agency_headcount (agency_code varchar(32) COLLATE "C" NOT NULL, n bigint NOT NULL)'
    )
    op.execute("CREATE INDEX ix_agency_headcount ON agency_headcount (agency_code, n)")
    for op_name, rows in _ROWS.items():
        event, referencing = _REFERENCING[op_name]
        op.execute(
            f"CREATE FUNCTION cbcc_headcount_{op_name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f"{_APPLY.format(rows=rows)} RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER staffrecord_headcount_{op_name} AFTER {event} ON staffrecord"
            f" REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION cbcc_headcount_{op_name}()"
        )
    op.execute(
        "CREATE FUNCTION cbcc_headcount_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " DELETE FROM agency_headcount; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER staffrecord_headcount_truncate AFTER TRUNCATE ON staffrecord"
        " FOR EACH STATEMENT EXECUTE FUNCTION cbcc_headcount_truncate()"
    )
    # the triggers' lock on staffrecord holds writers off until this transaction commits: the
    # counts taken now are not missed nor counted twice
    op.execute(
        "INSERT INTO agency_headcount (agency_code, n)"
        " SELECT agency_code, count(*) FROM staffrecord GROUP BY agency_code"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in (*_ROWS, "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS staffrecord_headcount_{name} ON staffrecord")
        op.execute(f"DROP FUNCTION IF EXISTS cbcc_headcount_{name}()")
    op.execute("DROP TABLE IF EXISTS agency_headcount")
