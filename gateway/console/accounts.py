"""Console accounts and sessions (domain: no HTTP here).

Passwords: argon2id (argon2-cffi) at the library's default cost (RFC 9106 low-memory profile),
at least 10 characters. Lockout: :data:`MAX_FAILURES` wrong passwords in a row lock the account
for :data:`LOCKOUT`; an unknown user name costs the same verification as a wrong password.
Sessions: the browser holds a random secret, the database its SHA-256; a session ends after
:data:`IDLE` without a request or :data:`ABSOLUTE` after login, whichever comes first, and on
password change every session of the user ends. Roles and unit scopes are those of API tokens
(:mod:`gateway.auth`): a :class:`UserPrincipal` *is* a :class:`~gateway.auth.Principal`.

First run: while no active admin exists, the gateway logs a one-time setup token
(:func:`setup_token`); ``/console/setup`` with it creates the first admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, delete, func, select

from gateway import audit
from gateway.auth import ROLES, Principal, check_unit_scope
from gateway.db import utc
from gateway.models import ConsoleSession, ConsoleUser, now_utc

MAX_FAILURES: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
IDLE: Final = timedelta(minutes=30)
ABSOLUTE: Final = timedelta(hours=12)
MIN_PASSWORD: Final = 10
MAX_PASSWORD: Final = 200
USERNAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")

_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("cbcc-console-dummy-password")


class AccountError(ValueError):
    """A request about accounts that is refused; the message is shown to the user (a msgid)."""


@dataclass(frozen=True)
class UserPrincipal(Principal):
    """A logged-in console user, with the same rights model as an API token."""

    username: str = ""
    user_id: int = 0
    language: str = "vi"

    @property
    def actor(self) -> str:
        return f"user:{self.username}"


def principal_of(user: ConsoleUser) -> UserPrincipal:
    if user.id is None:
        raise AccountError("The account is not saved yet.")
    return UserPrincipal(
        token_id=f"u{user.id}",
        name=user.full_name or user.username,
        role=user.role,
        unit_scope=user.unit_scope,
        username=user.username,
        user_id=user.id,
        language=user.language,
    )


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError("Password must be 10 to 200 characters long.")
    return password


def check_username(username: str) -> str:
    username = username.strip().lower()
    if not 2 <= len(username) <= 64 or not set(username) <= USERNAME_CHARS:
        raise AccountError("User name: 2 to 64 letters a-z, digits, dot, dash or underscore.")
    return username


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    unit_scope: str = "",
    full_name: str = "",
    created_by: str = "",
    language: str = "vi",
) -> ConsoleUser:
    """Add an account (the caller commits)."""
    username = check_username(username)
    check_password(password)
    if role not in ROLES:
        raise AccountError("Unknown role.")
    try:
        check_unit_scope(unit_scope)
    except ValueError:
        raise AccountError("Unit scope: letters, digits and . - _ / only.") from None
    if session.exec(select(ConsoleUser).where(ConsoleUser.username == username)).first() is not None:
        raise AccountError("This user name is taken.")
    user = ConsoleUser(
        username=username,
        full_name=full_name.strip()[:200],
        role=role,
        unit_scope=unit_scope,
        password_hash=_HASHER.hash(password),
        language=language if language in ("vi", "en") else "vi",
        created_by=created_by[:64],
        password_changed_at=now_utc(),
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        created_by or "setup",
        "console.user.create",
        f"user:{username}",
        role=role,
        unit_scope=unit_scope,
    )
    return user


def has_admin(session: Session) -> bool:
    n = session.exec(
        select(func.count()).select_from(ConsoleUser).where(ConsoleUser.role == "admin", ConsoleUser.active)
    ).one()
    return bool(n)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def login(
    session: Session, username: str, password: str, *, ip: str = "", now: datetime | None = None
) -> ConsoleUser:
    """The user, or :class:`AccountError` (one message for every failure). Counts failures and
    locks the account after :data:`MAX_FAILURES`; the caller commits in both cases."""
    now = now or now_utc()
    name = username.strip().lower()[:64]
    user = session.exec(select(ConsoleUser).where(ConsoleUser.username == name)).first()
    if user is None or not user.active:
        _verify(_DUMMY, password[:MAX_PASSWORD])
        audit.record(session, f"user:{name}", "console.login.fail", f"user:{name}", ip=ip, why="unknown")
        raise AccountError("Wrong user name or password, or the account is locked.")
    locked = utc(user.locked_until)
    if locked is not None and locked > now:
        audit.record(session, f"user:{name}", "console.login.fail", f"user:{name}", ip=ip, why="locked")
        raise AccountError("Wrong user name or password, or the account is locked.")
    if not _verify(user.password_hash, password[:MAX_PASSWORD]):
        user.failed_logins += 1
        why = "password"
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            why = "password; locked"
        session.add(user)
        audit.record(session, f"user:{name}", "console.login.fail", f"user:{name}", ip=ip, why=why)
        raise AccountError("Wrong user name or password, or the account is locked.")
    user.failed_logins = 0
    user.locked_until = None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    session.add(user)
    audit.record(session, f"user:{name}", "console.login", f"user:{name}", role=user.role, ip=ip)
    return user


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def open_session(
    session: Session, user: ConsoleUser, *, ip: str = "", now: datetime | None = None
) -> tuple[str, ConsoleSession]:
    """A new session (the caller commits); returns the cookie secret, shown only to the browser."""
    if user.id is None:
        raise AccountError("The account is not saved yet.")
    now = now or now_utc()
    secret = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id_hash=_digest(secret),
        user_id=user.id,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen=now,
        ip=ip[:64],
    )
    session.add(row)
    return secret, row


def resume(
    session: Session, secret: str, *, now: datetime | None = None
) -> tuple[ConsoleUser, ConsoleSession] | None:
    """The session's user, or None when unknown, idle too long, too old or the user is disabled.
    Touches ``last_seen`` at most every 30 s (the caller commits)."""
    if not secret or len(secret) > 100:
        return None
    now = now or now_utc()
    row = session.get(ConsoleSession, _digest(secret))
    if row is None:
        return None
    created, seen = utc(row.created_at), utc(row.last_seen)
    if created is None or seen is None:  # columns are NOT NULL; a damaged row ends the session
        return None
    if now - seen > IDLE or now - created > ABSOLUTE:
        session.delete(row)
        return None
    user = session.get(ConsoleUser, row.user_id)
    if user is None or not user.active:
        session.delete(row)
        return None
    if now - seen > timedelta(seconds=30):
        row.last_seen = now
        session.add(row)
    return user, row


def close_session(session: Session, secret: str) -> None:
    row = session.get(ConsoleSession, _digest(secret))
    if row is not None:
        session.delete(row)


def csrf_ok(row: ConsoleSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(row.csrf.encode(), (presented or "").encode())


def change_password(session: Session, user: ConsoleUser, old: str, new: str, *, ip: str = "") -> None:
    """Check the old password, set the new one and end every session of the user (the caller
    opens a new one for this browser and commits)."""
    if not _verify(user.password_hash, old[:MAX_PASSWORD]):
        raise AccountError("The current password is wrong.")
    check_password(new)
    if new == old:
        raise AccountError("The new password must differ from the current one.")
    user.password_hash = _HASHER.hash(new)
    user.password_changed_at = now_utc()
    session.add(user)
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user.id))
    audit.record(session, f"user:{user.username}", "console.password.change", f"user:{user.username}", ip=ip)


def setup_token() -> str:
    """A one-time secret for creating the first admin (printed to the gateway's log)."""
    return secrets.token_urlsafe(24)
