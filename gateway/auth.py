"""API tokens, roles and unit scoping (domain: no HTTP here; ``gateway.api`` adapts it).

A token reads ``cbcc_<id>_<secret>``: the 12-character id is public (listings, audit entries) and
is the primary key that is looked up; only then is the secret checked against its argon2id hash. A
malformed token or an unknown id is refused without any argon2 work (each verification costs
~90 ms of CPU: answering unknown ids at that price let anyone slow the gateway down), and failed
authentications are rate-limited per source (:class:`FailureLimiter`). A verified
secret is remembered in memory (as a SHA-256 of the whole token) for a few minutes so a console
that polls every second does not pay argon2 on each call; revocation and expiry are still read
from the row on every request and take effect at once.

Roles and what they may do are in :data:`PERMISSIONS`. A token's ``unit_scope`` is a unit code
(``""`` = every unit): a scoped token sees only the readers, doors, events and alarms of that unit
and the units under it, matched by whole code segments (``H01.05`` covers ``H01.05`` and
``H01.05.02``, never ``H01.050``: :func:`scope_prefixes`); an object outside the scope is reported
as not found, never as forbidden, so its id is not disclosed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from gateway.db import utc
from gateway.models import ApiToken, now_utc
from messages import _

ROLES: Final = ("admin", "facility", "hr", "auditor")

# Permissions (one per endpoint class).
READERS_READ = "readers:read"
READERS_WRITE = "readers:write"
DOORS_READ = "doors:read"
DOORS_WRITE = "doors:write"
EVENTS_READ = "events:read"
EVENTS_EXPORT = "events:export"
ALARMS_READ = "alarms:read"
ALARMS_ACK = "alarms:ack"
COMMANDS_READ = "commands:read"
COMMANDS_SEND = "commands:send"
CONFIG_PUSH = "config:push"
QUARANTINE_READ = "quarantine:read"
AUDIT_READ = "audit:read"
TOKENS_MANAGE = "tokens:manage"
METRICS_READ = "metrics:read"
CARDS_READ = "cards:read"
CARDS_LOCK = "cards:lock"
ATTENDANCE_READ = "attendance:read"  # timesheets, punches (personal data: every read is audited)
ATTENDANCE_WRITE = "attendance:write"  # leave, corrections, punch imports

ALL_PERMISSIONS: Final = frozenset(
    {
        READERS_READ,
        READERS_WRITE,
        DOORS_READ,
        DOORS_WRITE,
        EVENTS_READ,
        EVENTS_EXPORT,
        ALARMS_READ,
        ALARMS_ACK,
        COMMANDS_READ,
        COMMANDS_SEND,
        CONFIG_PUSH,
        QUARANTINE_READ,
        AUDIT_READ,
        TOKENS_MANAGE,
        METRICS_READ,
        CARDS_READ,
        CARDS_LOCK,
        ATTENDANCE_READ,
        ATTENDANCE_WRITE,
    }
)

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "admin": ALL_PERMISSIONS,
    # Facility managers run the doors: readers, doors, alarms, commands, configurations.
    "facility": frozenset(
        {
            READERS_READ,
            READERS_WRITE,
            DOORS_READ,
            DOORS_WRITE,
            ALARMS_READ,
            ALARMS_ACK,
            COMMANDS_READ,
            COMMANDS_SEND,
            CONFIG_PUSH,
            EVENTS_READ,
            CARDS_READ,
            CARDS_LOCK,  # a lost card is locked where it was reported
        }
    ),
    # HR reads attendance and exports it for timesheets.
    "hr": frozenset({EVENTS_READ, EVENTS_EXPORT, CARDS_READ, ATTENDANCE_READ, ATTENDANCE_WRITE}),
    # Auditors read everything (audit log and quarantine included) and change nothing.
    "auditor": frozenset(
        {
            READERS_READ,
            DOORS_READ,
            EVENTS_READ,
            EVENTS_EXPORT,
            ALARMS_READ,
            COMMANDS_READ,
            QUARANTINE_READ,
            AUDIT_READ,
            METRICS_READ,
            CARDS_READ,
            ATTENDANCE_READ,
        }
    ),
}

PREFIX: Final = "cbcc"
ID_LEN: Final = 12
SECRET_LEN: Final = 40  # 40 characters of [a-z0-9]: ~206 bits
_ALPHABET: Final = string.ascii_lowercase + string.digits
TOKEN_RE: Final = re.compile(rf"^{PREFIX}_([a-z0-9]{{{ID_LEN}}})_([a-z0-9]{{{SECRET_LEN}}})$")
# A unit code prefix: letters, digits and . - _ / (agency codes such as "H01.05" or "000-00-00").
UNIT_SCOPE_RE: Final = re.compile(r"^[A-Za-z0-9._/-]{0,64}$")
NAME_MAX: Final = 100

# argon2id at OWASP's minimum (19 MiB, t=2): the secret is random, so stretching is defence in
# depth against a stolen database rather than against guessing.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

LAST_USED_WRITE_INTERVAL: Final = timedelta(seconds=60)
VERIFIED_CACHE_S: Final = 300.0


class AuthError(ValueError):
    """Authentication failed; ``reason`` is for logs only (clients see one uniform answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenError(ValueError):
    """A token could not be created or changed (bad role, name, scope, …)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's identity, role and unit scope (never its secret)."""

    token_id: str
    name: str
    role: str
    unit_scope: str = ""

    @property
    def actor(self) -> str:
        """How audit entries name this caller."""
        return f"token:{self.token_id}"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def sees_unit(self, unit: str | None) -> bool:
        return in_scope(self.unit_scope, unit)

    @property
    def scoped(self) -> bool:
        return self.unit_scope != ""


SEGMENT_SEPARATORS: Final = "./-_"  # between the segments of a unit code (UNIT_SCOPE_RE's others)


def scope_prefixes(unit_scope: str) -> tuple[str | None, tuple[str, ...]]:
    """A non-empty scope as (the unit it equals or None, prefixes a unit under it starts with):
    whole segments only, so ``H01.05`` gives ("H01.05", ("H01.05.", "H01.05-", …)) and a scope that
    ends with a separator (``H01.``) is a prefix as it stands."""
    if unit_scope[-1] in SEGMENT_SEPARATORS:
        return None, (unit_scope,)
    return unit_scope, tuple(unit_scope + s for s in SEGMENT_SEPARATORS)


def in_scope(unit_scope: str, unit: str | None) -> bool:
    """True when ``unit`` is ``unit_scope`` or a unit under it ("" covers everything)."""
    if not unit_scope:
        return True
    if unit is None:
        return False
    exact, prefixes = scope_prefixes(unit_scope)
    return unit == exact or unit.startswith(prefixes)


def scope_within(outer: str, inner: str) -> bool:
    """True when every unit under ``inner`` is also under ``outer``."""
    if not outer:
        return True
    return bool(inner) and in_scope(outer, inner)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise TokenError(_("role must be one of {roles}", roles=", ".join(ROLES)))
    return role


def check_unit_scope(unit_scope: str) -> str:
    if not UNIT_SCOPE_RE.match(unit_scope):
        raise TokenError(_("unit scope: at most 64 letters, digits or . - _ / (empty = every unit)"))
    return unit_scope


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def create_token(
    session: Session,
    name: str,
    role: str,
    unit_scope: str,
    created_by: str,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Add a token (the caller commits); returns the row and the plaintext, shown once."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise TokenError(_("name: 1 to {max} characters", max=NAME_MAX))
    check_role(role)
    check_unit_scope(unit_scope)
    now = now_utc()
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise TokenError(_("expires_at must carry a time zone (UTC)"))
        if expires_at <= now:
            raise TokenError(_("expires_at is in the past"))
    token_id = _random(ID_LEN)
    while session.get(ApiToken, token_id) is not None:  # pragma: no cover - 36^12 ids
        token_id = _random(ID_LEN)
    secret = _random(SECRET_LEN)
    row = ApiToken(
        id=token_id,
        name=name,
        role=role,
        unit_scope=unit_scope,
        secret_hash=_HASHER.hash(secret),
        created_at=now,
        created_by=created_by[:64],
        expires_at=expires_at,
    )
    session.add(row)
    return row, f"{PREFIX}_{token_id}_{secret}"


def revoke_token(session: Session, token_id: str, *, now: datetime | None = None) -> ApiToken:
    """Mark a token revoked (the caller commits); revoking twice keeps the first time."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise TokenError(_("token {id} does not exist", id=token_id))
    if row.revoked_at is None:
        row.revoked_at = now or now_utc()
        session.add(row)
    return row


def list_tokens(session: Session, *, within_scope: str = "") -> list[ApiToken]:
    rows = session.exec(select(ApiToken).order_by(col(ApiToken.created_at), col(ApiToken.id))).all()
    return [r for r in rows if scope_within(within_scope, r.unit_scope)]


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or now_utc()
    if row.revoked_at is not None:
        return "revoked"
    expires = utc(row.expires_at)
    if expires is not None and expires <= now:
        return "expired"
    return "active"


class Authenticator:
    """Checks presented tokens; keeps a short in-memory memo of verified secrets (thread-safe)."""

    def __init__(self, *, cache_s: float = VERIFIED_CACHE_S) -> None:
        self._cache_s = cache_s
        self._verified: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def _memo_ok(self, token_id: str, digest: bytes) -> bool:
        with self._lock:
            hit = self._verified.get(token_id)
        return hit is not None and hit[1] > time.monotonic() and hmac.compare_digest(hit[0], digest)

    def _remember(self, token_id: str, digest: bytes) -> None:
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token_id] = (digest, time.monotonic() + self._cache_s)

    def authenticate(self, session: Session, presented: str, *, now: datetime | None = None) -> Principal:
        """The caller's principal, or :class:`AuthError`. Updates ``last_used_at`` (at most once a
        minute per token; the caller commits)."""
        now = now or now_utc()
        m = TOKEN_RE.match(presented)
        if m is None:
            raise AuthError("malformed token")
        token_id, secret = m.group(1), m.group(2)
        row = session.get(ApiToken, token_id)
        if row is None:  # ids are public: refusing at once discloses nothing, and costs nothing
            raise AuthError("unknown token id")
        digest = hashlib.sha256(presented.encode() + b"\x00" + row.secret_hash.encode()).digest()
        if not self._memo_ok(token_id, digest):
            if not _verify(row.secret_hash, secret):
                raise AuthError("wrong secret")
            self._remember(token_id, digest)
        state = token_state(row, now)
        if state != "active":
            raise AuthError(f"token {state}")
        last = utc(row.last_used_at)
        if last is None or now - last >= LAST_USED_WRITE_INTERVAL:
            row.last_used_at = now
            session.add(row)
        return Principal(token_id=row.id, name=row.name, role=row.role, unit_scope=row.unit_scope)


class FailureLimiter:
    """Failed authentications per source (client address), as a token bucket: ``burst`` failures
    at once, then one per ``1 / rate`` seconds. A source out of budget is refused before its token
    is even looked at. Bounded memory (the fullest buckets are the ones forgotten). Thread-safe."""

    def __init__(self, *, burst: int = 10, rate: float = 0.5, max_sources: int = 10_000) -> None:
        self.burst = burst
        self.rate = rate
        self.max_sources = max_sources
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, at monotonic)
        self._lock = threading.Lock()

    def _level(self, source: str, now: float) -> float:
        tokens, at = self._buckets.get(source, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def retry_after(self, source: str) -> float:
        """0 when ``source`` may try; else seconds until it may."""
        with self._lock:
            level = self._level(source, time.monotonic())
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def failed(self, source: str) -> None:
        now = time.monotonic()
        with self._lock:
            level = self._level(source, now)
            if len(self._buckets) >= self.max_sources and source not in self._buckets:
                full = [s for s in self._buckets if self._level(s, now) >= self.burst]
                for s in full or list(self._buckets)[: self.max_sources // 10]:
                    del self._buckets[s]
            self._buckets[source] = (max(0.0, level - 1), now)


def _verify(hashed: str, secret: str) -> bool:
    try:
        return _HASHER.verify(hashed, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def describe(row: ApiToken, now: datetime | None = None) -> dict[str, Any]:
    """A token's public fields (never its hash)."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "unit_scope": row.unit_scope,
        "created_at": utc(row.created_at),
        "created_by": row.created_by,
        "expires_at": utc(row.expires_at),
        "revoked_at": utc(row.revoked_at),
        "last_used_at": utc(row.last_used_at),
        "state": token_state(row, now),
    }
