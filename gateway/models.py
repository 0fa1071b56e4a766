"""Database tables (SQLModel). Times are timezone-aware UTC; SQLite hands them back naive, so
readers of these rows go through :func:`gateway.db.utc`.

Personal data is minimised (Decree 13/2023/NĐ-CP): events hold the staff code and card serial the
reader sent, never names; names live with the card records synced from the national database.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for events.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def now_utc() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = True, index: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class Door(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    site: str = Field(default="", max_length=64, index=True)
    building: str = Field(default="", max_length=64)  # within the site (the console groups by it)
    unit: str = Field(default="", max_length=64, index=True)  # agency/unit code, for scoping
    description: str = Field(default="", max_length=500)


class Reader(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)  # = its MQTT username
    name: str = Field(default="", max_length=200)
    site: str = Field(default="", max_length=64, index=True)
    unit: str = Field(default="", max_length=64, index=True)
    door_id: str | None = Field(default=None, max_length=64, foreign_key="door.id")
    role: str = Field(default="door", max_length=16)  # door | attendance | both
    # Per-reader HMAC key, AES-256-GCM under the gateway master key (gateway.secretbox).
    mac_key_enc: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    enabled: bool = True
    registered_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))
    # --- what the reader last told us (status / health) ---
    online: bool = False
    status_at: datetime | None = Field(default=None, sa_column=_ts())
    last_seen: datetime | None = Field(default=None, sa_column=_ts())
    firmware: str | None = Field(default=None, max_length=64)
    trust_seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    crl_seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    config_seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    boot: int | None = None
    health_at: datetime | None = Field(default=None, sa_column=_ts())
    uptime_s: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    free_heap: int | None = None
    reset_cause: int | None = None
    rf_errors: int | None = None
    journal_depth: int | None = None
    journal_fill: int | None = None
    time_quality: int | None = None
    # --- configuration pushed by the gateway (compare with config_seq to find laggards) ---
    pushed_config_seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    pushed_config_at: datetime | None = Field(default=None, sa_column=_ts())


_CLOCK_UNSET = "kind = 'tap' AND time_quality = 0 AND staff_code IS NOT NULL"


class Event(SQLModel, table=True):
    """One journal record of one reader, stored once per (reader_id, seq)."""

    __table_args__ = (
        sa.UniqueConstraint("reader_id", "seq", name="uq_event_reader_seq"),
        sa.Index("ix_event_staff_time", "staff_code", "occurred_at"),
        sa.Index("ix_event_door_time", "door", "occurred_at"),
        # a reader's latest door / notice / tap event, for the console's door states (one query)
        sa.Index("ix_event_reader_kind_seq", "reader_id", "kind", "seq"),
        # the month's clock-unset taps, which attendance catch-up reads per request (migration 0009)
        sa.Index(
            "ix_event_clock_unset_tap",
            "occurred_at",
            postgresql_where=sa.text(_CLOCK_UNSET),
            sqlite_where=sa.text(_CLOCK_UNSET),
        ),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    reader_id: str = Field(max_length=64, index=True)
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    kind: str = Field(max_length=16)  # tap | alarm | notice | boot | ...
    # Effective time: the reader's when it was trustworthy, else the corrected one.
    occurred_at: datetime = Field(sa_column=_ts(False, index=True))
    reader_time: datetime | None = Field(default=None, sa_column=_ts())  # as stamped, kept
    time_quality: int = 0  # 0 clock unset, 1 RTC, 2 synced
    time_corrected: bool = False
    received_at: datetime = Field(sa_column=_ts(False))
    boot: int | None = None
    uptime_ms: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    decision: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, max_length=48)
    serial: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, index=True))
    staff_code: str | None = Field(default=None, max_length=32)
    technology: str | None = Field(default=None, max_length=16)
    anti_clone: bool | None = None
    door: str | None = Field(default=None, max_length=64)
    direction: str | None = Field(default=None, max_length=8)
    punch: bool | None = None
    alarm: str | None = Field(default=None, max_length=32)
    active: bool | None = None
    detail: str | None = Field(default=None, max_length=500)
    # The record exactly as sealed, and its MAC: an auditor can re-verify it with the reader key.
    record: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    mac: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


class Quarantine(SQLModel, table=True):
    """A message that was not stored as an event: garbage, forged, unknown reader, conflict."""

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    received_at: datetime = Field(sa_column=_ts(False, index=True))
    topic: str = Field(max_length=256)
    reader_id: str | None = Field(default=None, max_length=64, index=True)
    reason: str = Field(max_length=64, index=True)
    detail: str = Field(default="", max_length=500)
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))  # first 4 KiB
    payload_size: int = 0


class BootAnchor(SQLModel, table=True):
    """Reader clock anchor for one boot: true Unix ms = offset_ms + uptime_ms."""

    reader_id: str = Field(primary_key=True, max_length=64)
    boot: int = Field(primary_key=True)
    offset_ms: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    source: str = Field(max_length=16)  # synced_event | heartbeat
    at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))


class Alarm(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    reader_id: str = Field(max_length=64, index=True)
    # forced_open | held_open | tamper | journal_full | clock_unset | fire | offline
    kind: str = Field(max_length=32)
    active: bool = Field(default=True, index=True)
    raised_at: datetime = Field(sa_column=_ts(False, index=True))
    cleared_at: datetime | None = Field(default=None, sa_column=_ts())
    detail: str = Field(default="", max_length=500)
    event_seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = Field(default=None, sa_column=_ts())


class Command(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    target: str = Field(max_length=64, index=True)  # reader id or "*"
    action: str = Field(max_length=16)
    args: str = Field(default="null", max_length=1000)  # JSON
    issued_by: str = Field(max_length=64)
    issued_at: datetime = Field(sa_column=_ts(False))
    expires_at: datetime = Field(sa_column=_ts(False))
    outcome: str | None = Field(default=None, max_length=32)  # from the reader's notice "cmd:<status>"
    outcome_at: datetime | None = Field(default=None, sa_column=_ts())


class ConfigPush(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    reader_id: str = Field(max_length=64, index=True)
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    pushed_by: str = Field(max_length=64)
    pushed_at: datetime = Field(sa_column=_ts(False))
    applied_at: datetime | None = Field(default=None, sa_column=_ts())
    outcome: str | None = Field(default=None, max_length=32)


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    at: datetime = Field(default_factory=now_utc, sa_column=_ts(False, index=True))
    actor: str = Field(max_length=64)
    role: str = Field(default="", max_length=16)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=128)
    detail: str = Field(default="{}", max_length=2000)  # JSON


class ApiToken(SQLModel, table=True):
    """An API token ``cbcc_<id>_<secret>``: the id is looked up, the secret checked with argon2."""

    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)  # admin | facility | hr | auditor
    unit_scope: str = Field(default="", max_length=64)  # "" = every unit; else a unit-code prefix
    secret_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))
    created_by: str = Field(default="", max_length=64)
    expires_at: datetime | None = Field(default=None, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())
    last_used_at: datetime | None = Field(default=None, sa_column=_ts())


class Counter(SQLModel, table=True):
    """Monotonic counters that must survive restarts (command seq, configuration seq per reader)."""

    name: str = Field(primary_key=True, max_length=96)
    value: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))


# ---- national card database (synced) and revocation lists --------------------------------------


class StaffRecord(SQLModel, table=True):
    """A civil servant as the national database knows them (only what doors and HR need)."""

    # Name search without diacritics (gateway/textfold.py): PostgreSQL only; the function comes
    # from migration 0003_console, SQLite registers it per connection and scans its small table.
    __table_args__ = (
        # byte order (COLLATE "C"): serves both the LIKE prefix and ORDER BY name, code, so a
        # short prefix ("nguyen van": 11,500 of 2 M) stops at the page's LIMIT (migration 0005)
        sa.Index(
            "ix_staffrecord_name_fold", sa.text('(cbcc_fold(full_name) COLLATE "C")'), "staff_code"
        ).ddl_if(dialect="postgresql"),
        # a search within a unit scope: each agency code's matches in name order (migration 0007)
        sa.Index(
            "ix_staffrecord_unit_name",
            sa.text('(agency_code COLLATE "C")'),
            sa.text('(cbcc_fold(full_name) COLLATE "C")'),
            "staff_code",
        ).ddl_if(dialect="postgresql"),
    )

    staff_code: str = Field(primary_key=True, max_length=32)
    full_name: str = Field(max_length=200)  # NFC
    agency_code: str = Field(max_length=32, index=True)  # e.g. 000.00.31.H26
    unit: str = Field(default="", max_length=200, index=True)  # a unit's attendance (migration 0009)
    position: str = Field(default="", max_length=200)
    active: bool = True  # false once retired or left the service
    updated_at: datetime = Field(sa_column=_ts(False))


class Card(SQLModel, table=True):
    """One issued card (serial = the credential's serial, dense per issuer range)."""

    serial: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    staff_code: str = Field(max_length=32, index=True)
    issuer: str = Field(max_length=32, index=True)  # issuing agency code (one of 96)
    gen: int = 1  # reissue generation: a reissued card is a new serial with gen + 1
    # issued | locked | revoked | expired | replaced; everything but "issued" is denied by readers
    status: str = Field(max_length=16, index=True)
    issued_at: datetime | None = Field(default=None, sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts(False, index=True))
    # A local action (a facility manager locked a lost card) waiting to be pushed upstream.
    pending_upstream: bool = Field(default=False, index=True)


class CardChange(SQLModel, table=True):
    """Every applied change, once (change_id from the national feed or "local:<n>")."""

    id: int | None = Field(default=None, sa_column=sa.Column(BigId, primary_key=True, autoincrement=True))
    change_id: str = Field(max_length=64, unique=True)
    source: str = Field(max_length=16)  # national | file | local
    kind: str = Field(max_length=32)
    serial: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, index=True))
    staff_code: str | None = Field(default=None, max_length=32)
    detail: str = Field(default="{}", max_length=2000)  # JSON
    applied_at: datetime = Field(sa_column=_ts(False, index=True))


class SyncState(SQLModel, table=True):
    """Cursor of an upstream feed; advanced in the same transaction as the changes it covers."""

    name: str = Field(primary_key=True, max_length=64)
    cursor: str = Field(default="", max_length=256)
    updated_at: datetime = Field(sa_column=_ts(False))


class RevocationPublication(SQLModel, table=True):
    """A national revocation list the gateway built and published (full or delta)."""

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, unique=True))
    kind: str = Field(max_length=8)  # full | delta
    base_seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    sha256: str = Field(max_length=64)
    size: int = 0
    revoked: int = 0  # serials revoked in the state it describes
    created_at: datetime = Field(sa_column=_ts(False))
    path: str = Field(default="", max_length=500)  # where the signed object is kept


# ---- web console (gateway/console): people who log in with a password --------------------------


class ConsoleUser(SQLModel, table=True):
    """A console account: argon2id password hash, role and unit scope as API tokens have them."""

    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    full_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)  # admin | facility | hr | auditor (gateway.auth.ROLES)
    unit_scope: str = Field(default="", max_length=64)
    password_hash: str = Field(max_length=200)
    language: str = Field(default="vi", max_length=8)
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=_ts())
    password_changed_at: datetime | None = Field(default=None, sa_column=_ts())
    created_at: datetime = Field(default_factory=now_utc, sa_column=_ts(False))
    created_by: str = Field(default="", max_length=64)


class ConsoleSession(SQLModel, table=True):
    """A logged-in browser: the cookie holds a random secret, the row its SHA-256 (never the secret)."""

    __tablename__ = "console_session"

    id_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="console_user.id", index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts(False))
    last_seen: datetime = Field(sa_column=_ts(False))
    ip: str = Field(default="", max_length=64)


class ConsoleConfigSource(SQLModel, table=True):
    """The configuration source last pushed to a reader from the console (the signed object is
    built from it; the reader's applied/pending state is in ``Reader`` / ``ConfigPush``)."""

    __tablename__ = "console_config_source"

    reader_id: str = Field(primary_key=True, max_length=64)
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))  # JSON
    seq: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    updated_at: datetime = Field(sa_column=_ts(False))
    updated_by: str = Field(default="", max_length=64)


# ---- card issuance (provisioning/issuance, docs/card-issuance.md) --------------------------------


class CardIssuance(SQLModel, table=True):
    """One card issued at an issuing station: ``pending`` from the serial's allocation (committed
    before the card is touched) until the card was read back and verified as a reader reads it
    (``done``), or ``abandoned`` (the card was lost half-written: its serial is revoked, never reused)."""

    __tablename__ = "card_issuance"

    serial: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    staff_code: str = Field(max_length=32, index=True)
    issuer: str = Field(max_length=32, index=True)  # the issuing agency (Card.issuer)
    gen: int = 1
    uid: str = Field(max_length=20, index=True)  # the chip's real UID, hex
    state: str = Field(max_length=16, index=True)  # pending | done | abandoned
    operator: str = Field(max_length=64)
    station: str = Field(max_length=64, index=True)
    replaces: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))  # reissue: old serial
    # The signed credential, kept only while pending (to finish the same card the same way).
    credential: bytes | None = Field(default=None, sa_column=sa.Column(sa.LargeBinary))
    started_at: datetime = Field(sa_column=_ts(False))
    finished_at: datetime | None = Field(default=None, sa_column=_ts())


# The attendance tables live with their package; importing them here registers them wherever the
# gateway's tables are (migrations, tests).
import gateway.attendance.models  # noqa: E402, F401
