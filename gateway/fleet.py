"""The reader fleet: status / health / alarms / notices → reader rows and alarms; time replies.

The MQTT consumer calls :meth:`Fleet.on_status` and :meth:`Fleet.on_health` from its network
thread. They are cheap and never raise: a message is decoded and checked, the latest update per
reader is kept in memory, and :meth:`Fleet.flush` (the service calls it about every second) writes
what accumulated in ONE transaction — 2,000 readers with 30 s heartbeats are ~70 row updates a
second, one commit. Anything malformed is counted (``stats``) and dropped; a reader the
:class:`~gateway.registry.KeyCache` does not know (unregistered or disabled) is counted and
ignored, no row is created for it.

The time reply (docs/mqtt.md, "Status and health") is answered at once, from the network thread:
``[nonce, unix_ms, HMAC-SHA256(K_reader, "cbcc-time1" ‖ rid ‖ nonce ‖ unix_ms as 8 bytes)]`` on
``cbcc/v1/r/<rid>/time`` (QoS 0, not retained), only for a known reader, only for the newest
nonce and only once, and not for a heartbeat received more than 10 s ago (the reader would refuse
it as stale anyway).

Heartbeats also anchor the reader clock of the current boot (``BootAnchor``, source
``heartbeat``): true Unix ms ≈ receive time − uptime; the smallest such offset of a boot is the
best one (network delay and the whole-second uptime only ever make it larger), and an anchor
from a synced event (``gateway.timefix``) is never overwritten.

Alarms kept here besides those the readers journal: ``offline`` (the Last Will said offline for
longer than the grace period; cleared when the reader is back), ``role_mismatch`` (the role in the
status is not the registered one) and ``config_not_applied`` (:meth:`Fleet.laggards`).
:func:`apply_event_effects` runs inside ingest's batch transaction for new alarm and notice events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from gateway import metrics
from gateway.db import utc
from gateway.models import Alarm, BootAnchor, Command, ConfigPush, Reader
from gateway.registry import READER_ID, ROLES, KeyCache

Publish = Callable[[str, bytes, int, bool], None]

ROOT = "cbcc/v1/"
TIME_DOMAIN = b"cbcc-time1"
TIME_WINDOW_S = 10.0
NONCE_LEN = 8
MAX_PAYLOAD = 1024  # status and health maps are well under 100 bytes

READER: sa.Table = Reader.__table__  # type: ignore[attr-defined]
ALARM: sa.Table = Alarm.__table__  # type: ignore[attr-defined]
ANCHOR: sa.Table = BootAnchor.__table__  # type: ignore[attr-defined]
COMMAND: sa.Table = Command.__table__  # type: ignore[attr-defined]
CONFIG_PUSH: sa.Table = ConfigPush.__table__  # type: ignore[attr-defined]

U31 = (1 << 31) - 1  # INTEGER columns
U63 = (1 << 63) - 1  # BIGINT columns

# health map key -> (Reader column, upper bound)
HEALTH_FIELDS = {1: ("uptime_s", U63), 2: ("free_heap", U31), 3: ("reset_cause", U31), 4: ("rf_errors", U31),
                 5: ("journal_depth", U31), 6: ("journal_fill", U31), 7: ("time_quality", U31)}  # fmt: skip
STATUS_SEQS = {3: "trust_seq", 4: "crl_seq", 5: "config_seq"}

OFFLINE = "offline"
ROLE_MISMATCH = "role_mismatch"
CONFIG_NOT_APPLIED = "config_not_applied"


class _Garbage(Exception):
    pass


def time_mac(key: bytes, rid: str, nonce: bytes, unix_ms: int) -> bytes:
    msg = TIME_DOMAIN + rid.encode() + nonce + unix_ms.to_bytes(8, "big")
    return hmac.new(key, msg, hashlib.sha256).digest()


def time_reply(key: bytes, rid: str, nonce: bytes, unix_ms: int) -> bytes:
    """The CBOR ``[nonce, unix_ms, mac]`` a reader accepts for its heartbeat ``nonce``."""
    return cbor2.dumps([nonce, unix_ms, time_mac(key, rid, nonce, unix_ms)])


def _as_utc(value: datetime | float | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _uint(v: object, hi: int) -> int:
    if type(v) is not int or not 0 <= v <= hi:
        raise _Garbage
    return v


def _map(payload: bytes) -> dict[Any, Any]:
    if not isinstance(payload, bytes | bytearray | memoryview) or len(payload) > MAX_PAYLOAD:
        raise _Garbage
    try:
        m = cbor2.loads(bytes(payload))
    except Exception as exc:  # cbor2 raises several kinds on hostile input
        raise _Garbage from exc
    if not isinstance(m, dict):
        raise _Garbage
    return m


def parse_status(payload: bytes) -> dict[str, Any]:
    """A status map as Reader column values; raises _Garbage. ``{1: false}`` (the Last Will)
    gives only ``online``; an online status sets every field (absent = null, as the contract's
    null seqs)."""
    m = _map(payload)
    online = m.get(1)
    if type(online) is not bool:
        raise _Garbage
    out: dict[str, Any] = {"online": online}
    if not online:
        return out
    fw = m.get(2)
    if fw is not None and not (isinstance(fw, str) and len(fw) <= 64):
        raise _Garbage
    out["firmware"] = fw
    for k, col in STATUS_SEQS.items():
        v = m.get(k)
        out[col] = None if v is None else _uint(v, U63)
    boot = m.get(6)
    out["boot"] = None if boot is None else _uint(boot, U31)
    role = m.get(7)
    if role is not None and role not in ROLES:
        raise _Garbage
    out["role"] = role
    return out


def parse_health(payload: bytes) -> tuple[dict[str, Any], bytes | None]:
    """A health map as Reader column values (absent = null) and its nonce; raises _Garbage."""
    m = _map(payload)
    out: dict[str, Any] = {}
    for k, (col, hi) in HEALTH_FIELDS.items():
        v = m.get(k)
        out[col] = None if v is None else _uint(v, hi)
    nonce = m.get(8)
    if nonce is not None and not (isinstance(nonce, bytes) and len(nonce) == NONCE_LEN):
        raise _Garbage
    t = m.get(9)
    if t is not None:
        _uint(t, U63)
    return out, nonce


@dataclass
class _State:
    """What the network thread needs to know of one reader between flushes."""

    boot: int | None = None
    online: bool = False
    offline_since: datetime | None = None
    offline_alarm: bool = False
    nonce: bytes | None = None
    anchor: tuple[int, int] | None = None  # (boot, offset_ms) last written


def _dialect_insert(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _raise_alarm(conn: Connection, rid: str, kind: str, at: datetime, detail: str = "",
                 event_seq: int | None = None) -> bool:  # fmt: skip
    """A new active alarm unless one of that kind is already active (or this event raised one)."""
    if event_seq is not None:
        seen = conn.execute(sa.select(ALARM.c.id).where(ALARM.c.reader_id == rid,
                                                        ALARM.c.event_seq == event_seq)).first()  # fmt: skip
        if seen is not None:
            return False
    active = conn.execute(sa.select(ALARM.c.id).where(ALARM.c.reader_id == rid, ALARM.c.kind == kind,
                                                      ALARM.c.active == sa.true())).first()  # fmt: skip
    if active is not None:
        return False
    conn.execute(sa.insert(ALARM).values(reader_id=rid, kind=kind[:32], active=True, raised_at=at,
                                         detail=detail[:500], event_seq=event_seq))  # fmt: skip
    return True


def _clear_alarms(conn: Connection, rids: Iterable[str], kind: str, at: datetime) -> int:
    ids = list(rids)
    if not ids:
        return 0
    res = conn.execute(sa.update(ALARM).where(ALARM.c.reader_id.in_(ids), ALARM.c.kind == kind,
                                              ALARM.c.active == sa.true())
                       .values(active=False, cleared_at=at))  # fmt: skip
    return int(res.rowcount or 0)


class Fleet:
    def __init__(self, engine: Engine, keys: KeyCache, publish: Publish, *, offline_grace_s: float = 120.0,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._engine = engine
        self._keys = keys
        self._publish = publish
        self._grace = timedelta(seconds=offline_grace_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, _State] = {}
        self._status: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._health: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._anchors: dict[tuple[str, int], int] = {}
        self.stats: dict[str, int] = dict.fromkeys(
            ("status", "health", "garbage", "unknown", "time_replies", "time_skipped", "publish_errors",
             "errors", "flushes", "rows"), 0)  # fmt: skip
        self._last_alarm_count = 0.0
        self.load()

    # ---- start-up ------------------------------------------------------------------------------

    def load(self) -> None:
        """Read what the database knows (boot counters, who is offline since when, alarms)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(READER.c.id, READER.c.boot, READER.c.online, READER.c.status_at)
                                .where(READER.c.enabled == sa.true())).all()  # fmt: skip
            alarmed = {r for (r,) in conn.execute(sa.select(ALARM.c.reader_id).where(
                ALARM.c.kind == OFFLINE, ALARM.c.active == sa.true()))}  # fmt: skip
        with self._lock:
            for rid, boot, online, status_at in rows:
                st = self._state.setdefault(rid, _State())
                st.boot = boot
                st.online = bool(online)
                st.offline_since = None if online or status_at is None else utc(status_at)
                st.offline_alarm = rid in alarmed
            metrics.READERS_ONLINE.set(sum(1 for s in self._state.values() if s.online))

    # ---- network thread ------------------------------------------------------------------------

    def _known(self, rid: str) -> bytes | None:
        if not isinstance(rid, str) or not READER_ID.match(rid):
            return None
        return self._keys.get(rid)

    def on_status(self, rid: str, payload: bytes, received_at: datetime | float | None = None) -> None:
        """A (retained) status map or the Last Will ``{1: false}``. Never raises."""
        try:
            try:
                values = parse_status(payload)
            except _Garbage:
                self.stats["garbage"] += 1
                return
            if self._known(rid) is None:
                self.stats["unknown"] += 1
                return
            at = _as_utc(received_at)
            with self._lock:
                st = self._state.setdefault(rid, _State())
                if values["online"]:
                    st.online = True
                    st.offline_since = None
                    st.boot = values["boot"]
                elif st.online or st.offline_since is None:
                    st.online = False  # a retained Last Will seen again keeps its first time
                    st.offline_since = at
                prev = self._status.get(rid)
                if prev is not None and prev[0]["online"] and not values["online"]:
                    # keep the fields of an online status not yet written; the will only says offline
                    values = {**prev[0], "online": False}
                self._status[rid] = (values, at)
                self.stats["status"] += 1
        except Exception:  # never let a message take the consumer down
            self.stats["errors"] += 1

    def on_health(self, rid: str, payload: bytes, received_at: datetime | float | None = None) -> None:
        """A heartbeat: buffered for the reader row, answered at once with a time reply. Never raises."""
        try:
            try:
                values, nonce = parse_health(payload)
            except _Garbage:
                self.stats["garbage"] += 1
                return
            key = self._known(rid)
            if key is None:
                self.stats["unknown"] += 1
                return
            at = _as_utc(received_at)
            now_s = self._clock()
            answer: bytes | None = None
            with self._lock:
                st = self._state.setdefault(rid, _State())
                self._health[rid] = (values, at)
                self.stats["health"] += 1
                uptime = values["uptime_s"]
                if st.boot is not None and uptime is not None:
                    offset = int(at.timestamp() * 1000) - uptime * 1000
                    k = (rid, st.boot)
                    best = self._anchors.get(k)
                    written = st.anchor
                    floor = written[1] if written is not None and written[0] == st.boot else None
                    if (best is None or offset < best) and (floor is None or offset < floor - 100):
                        self._anchors[k] = offset
                if nonce is not None and nonce != st.nonce:
                    if now_s - at.timestamp() <= TIME_WINDOW_S:
                        st.nonce = nonce
                        answer = nonce
                    else:
                        self.stats["time_skipped"] += 1
                elif nonce is not None:
                    self.stats["time_skipped"] += 1  # that nonce was answered already
            metrics.HEARTBEATS.inc()
            if answer is not None:
                self._send_time(rid, key, answer)
        except Exception:
            self.stats["errors"] += 1

    def _send_time(self, rid: str, key: bytes, nonce: bytes) -> None:
        ms = int(self._clock() * 1000)
        try:
            self._publish(f"{ROOT}r/{rid}/time", time_reply(key, rid, nonce, ms), 0, False)
        except Exception:
            self.stats["publish_errors"] += 1
            return
        self.stats["time_replies"] += 1
        metrics.TIME_REPLIES.inc()

    # ---- service thread ------------------------------------------------------------------------

    def flush(self) -> int:
        """Write the buffered status and health updates, boot anchors and offline alarms in one
        transaction; returns the number of rows written. On a database error the updates are
        kept for the next flush (unless newer ones arrived) and the error is raised."""
        now = _as_utc(self._clock())
        with self._lock:
            status, self._status = self._status, {}
            health, self._health = self._health, {}
            anchors, self._anchors = self._anchors, {}
            due = [rid for rid, st in self._state.items()
                   if not st.online and not st.offline_alarm and st.offline_since is not None
                   and now - st.offline_since >= self._grace]  # fmt: skip
            back = [rid for rid, (v, _) in status.items() if v["online"]]
            offline_since = {rid: self._state[rid].offline_since for rid in due}
        if not (status or health or anchors or due):
            self._count_alarms()
            return 0
        try:
            with self._engine.begin() as conn:
                n = self._write(conn, status, health, anchors, due, back, offline_since, now)
        except Exception:
            with self._lock:
                for buf, old in ((self._status, status), (self._health, health)):
                    for rid, v in old.items():
                        buf.setdefault(rid, v)
                for k, o in anchors.items():
                    self._anchors.setdefault(k, o)
            raise
        with self._lock:
            for rid in due:
                self._state[rid].offline_alarm = True
            for rid in back:
                st = self._state.get(rid)
                if st is not None and st.online:
                    st.offline_alarm = False
            for (rid, boot), o in anchors.items():
                st = self._state.get(rid)
                if st is not None:
                    st.anchor = (boot, o)
            online = sum(1 for s in self._state.values() if s.online)
        metrics.READERS_ONLINE.set(online)
        self.stats["flushes"] += 1
        self.stats["rows"] += n
        self._count_alarms()
        return n

    def _write(self, conn: Connection, status: Mapping[str, tuple[dict[str, Any], datetime]],
               health: Mapping[str, tuple[dict[str, Any], datetime]], anchors: Mapping[tuple[str, int], int],
               due: list[str], back: list[str], offline_since: Mapping[str, datetime | None],
               now: datetime) -> int:  # fmt: skip
        n = 0
        where = sa.update(READER).where(READER.c.id == sa.bindparam("b_id"))
        full, down, roles = [], [], {}
        for rid, (v, at) in status.items():
            if "boot" in v:  # an online status (perhaps followed by the will before this flush)
                row = {k: x for k, x in v.items() if k != "role"}
                full.append({"b_id": rid, **row, "status_at": at, "last_seen": at})
                if v["role"] is not None:
                    roles[rid] = v["role"]
            else:
                down.append({"b_id": rid, "online": False, "status_at": at})
        for rows in (full, down):
            if rows:
                n += int(conn.execute(where, rows).rowcount or 0)
        if health:
            rows = [{"b_id": rid, **v, "health_at": at, "last_seen": at} for rid, (v, at) in health.items()]
            n += int(conn.execute(where, rows).rowcount or 0)
        if anchors:
            ins = _dialect_insert(conn, ANCHOR)
            stmt = ins.on_conflict_do_update(
                index_elements=[ANCHOR.c.reader_id, ANCHOR.c.boot],
                set_={"offset_ms": ins.excluded.offset_ms, "at": ins.excluded.at},
                where=(ANCHOR.c.source == "heartbeat") & (ANCHOR.c.offset_ms > ins.excluded.offset_ms),
            )
            conn.execute(stmt, [{"reader_id": rid, "boot": boot, "offset_ms": o, "source": "heartbeat",
                                 "at": now} for (rid, boot), o in anchors.items()])  # fmt: skip
            n += len(anchors)
        if roles:
            registered = dict(conn.execute(sa.select(READER.c.id, READER.c.role)
                                           .where(READER.c.id.in_(list(roles)))).all())  # fmt: skip
            ok = [rid for rid, r in roles.items() if registered.get(rid) == r]
            n += _clear_alarms(conn, ok, ROLE_MISMATCH, now)
            for rid, r in roles.items():
                want = registered.get(rid)
                if want is not None and want != r:
                    n += _raise_alarm(conn, rid, ROLE_MISMATCH, now,
                                      f"the reader reports role {r!r}, registered as {want!r}")  # fmt: skip
        if back:
            n += _clear_alarms(conn, back, OFFLINE, now)
        for rid in due:
            since = offline_since.get(rid) or now
            n += _raise_alarm(conn, rid, OFFLINE, now, f"offline since {since.isoformat(timespec='seconds')}")
        return n

    def _count_alarms(self) -> None:
        """Refresh the active-alarm gauge, at most every 10 s."""
        t = time.monotonic()
        if t - self._last_alarm_count < 10:
            return
        self._last_alarm_count = t
        try:
            with self._engine.connect() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(ALARM)
                                 .where(ALARM.c.active == sa.true())).scalar_one()  # fmt: skip
            metrics.ALARMS_ACTIVE.set(n)
        except Exception:
            self.stats["errors"] += 1

    def laggards(self, older_than_s: float) -> list[Reader]:  # see also laggard_filter
        """Readers whose reported configuration seq has stayed below the pushed one for longer
        than ``older_than_s`` (the pushed configuration was not applied); raises a
        ``config_not_applied`` alarm for each (once) and clears it for readers that caught up."""
        now = _as_utc(self._clock())
        lagging = behind_pushed_config()
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(READER).where(laggard_filter(now - timedelta(seconds=older_than_s)))
                                .order_by(READER.c.id)).mappings().all()  # fmt: skip
            for r in rows:
                _raise_alarm(
                    conn,
                    r["id"],
                    CONFIG_NOT_APPLIED,
                    now,
                    f"reports configuration {r['config_seq']}, pushed {r['pushed_config_seq']}",
                )
            alarmed = [rid for (rid,) in conn.execute(sa.select(ALARM.c.reader_id).where(
                ALARM.c.kind == CONFIG_NOT_APPLIED, ALARM.c.active == sa.true()))]  # fmt: skip
            if alarmed:
                still = {rid for (rid,) in conn.execute(sa.select(READER.c.id).where(
                    READER.c.id.in_(alarmed), lagging))}  # fmt: skip
                _clear_alarms(conn, [rid for rid in alarmed if rid not in still], CONFIG_NOT_APPLIED, now)
        return [Reader.model_validate(dict(r)) for r in rows]


def behind_pushed_config() -> sa.ColumnElement[bool]:
    """A configuration was pushed and the reader has not reported applying it (yet)."""
    behind = sa.or_(READER.c.config_seq.is_(None), READER.c.config_seq < READER.c.pushed_config_seq)
    return sa.and_(READER.c.pushed_config_seq.is_not(None), behind)


def laggard_filter(cutoff: datetime) -> sa.ColumnElement[bool]:
    """The laggard rule, one home (Fleet.laggards and the API): an enabled reader still behind a
    configuration pushed at or before ``cutoff``."""
    return sa.and_(READER.c.enabled == sa.true(), behind_pushed_config(), READER.c.pushed_config_at <= cutoff)


# ---- effects of stored events (called by ingest inside its batch transaction) ---------------------


def parse_notice(detail: object) -> tuple[str, str] | None:
    """``"what:status"`` (the firmware's notice detail), or a JSON ``{"what", "status"}``."""
    if not isinstance(detail, str):
        return None
    if detail.startswith("{"):
        try:
            d = json.loads(detail)
        except ValueError:
            return None
        if isinstance(d, dict) and isinstance(d.get("what"), str) and isinstance(d.get("status"), str):
            return d["what"], d["status"]
        return None
    what, sep, status = detail.partition(":")
    if not sep or not what or not status:
        return None
    return what, status


def apply_event_effects(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Alarm events raise or clear Alarm rows (idempotent on (reader_id, event seq)); notices
    ``cmd:<status>`` give the latest outstanding command for that reader its outcome, and
    ``config:<status>`` the latest outstanding configuration push (``ok`` also sets applied_at
    and marks older outstanding pushes ``superseded``). Other rows are ignored."""
    for row in rows:
        kind = row.get("kind")
        rid = row.get("reader_id")
        if not isinstance(rid, str):
            continue
        at = _as_utc(row.get("occurred_at") or row.get("received_at"))
        if kind == "alarm":
            name, active, seq = row.get("alarm"), row.get("active"), row.get("seq")
            if not isinstance(name, str) or not name or type(active) is not bool:
                continue
            if active:
                _raise_alarm(conn, rid, name, at, str(row.get("detail") or ""),
                             seq if type(seq) is int else None)  # fmt: skip
            else:
                _clear_alarms(conn, [rid], name, at)
        elif kind == "notice":
            parsed = parse_notice(row.get("detail"))
            if parsed is None:
                continue
            what, status = parsed
            received = _as_utc(row.get("received_at") or row.get("occurred_at"))
            if what == "cmd":
                _command_outcome(conn, rid, status[:32], received)
            elif what == "config":
                _config_outcome(conn, rid, status[:32], received)


def _command_outcome(conn: Connection, rid: str, status: str, received: datetime) -> None:
    cid = conn.execute(sa.select(COMMAND.c.id).where(COMMAND.c.target == rid, COMMAND.c.outcome.is_(None),
                                                     COMMAND.c.issued_at <= received)
                       .order_by(COMMAND.c.seq.desc()).limit(1)).scalar()  # fmt: skip
    if cid is not None:
        done = sa.update(COMMAND).where(COMMAND.c.id == cid)
        conn.execute(done.values(outcome=status, outcome_at=received))


def _config_outcome(conn: Connection, rid: str, status: str, received: datetime) -> None:
    cp = CONFIG_PUSH.c
    open_ = (cp.reader_id == rid) & cp.outcome.is_(None) & (cp.pushed_at <= received)
    row = conn.execute(sa.select(CONFIG_PUSH.c.id, CONFIG_PUSH.c.seq).where(open_)
                       .order_by(CONFIG_PUSH.c.seq.desc()).limit(1)).first()  # fmt: skip
    if row is None:
        return
    values: dict[str, Any] = {"outcome": status}
    if status == "ok":
        values["applied_at"] = received
        older = sa.update(CONFIG_PUSH).where(open_, cp.seq < row.seq)
        conn.execute(older.values(outcome="superseded"))
    conn.execute(sa.update(CONFIG_PUSH).where(CONFIG_PUSH.c.id == row.id).values(**values))
