"""Reader registration and the in-memory cache of reader MAC keys.

Registering a reader makes its 32-byte event/time MAC key and its MQTT password; both are shown
once (for provisioning the device) and the key is kept only sealed under the master key. Ingest
and the time service look keys up many thousand times a second, so they use :class:`KeyCache`,
which decrypts each key once and reloads on a miss (a reader registered by another gateway
process), at most once per ``miss_interval_s`` per reader id so a flood of unknown ids cannot
hammer the database.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.models import Door, Reader
from gateway.secretbox import SecretBox
from messages import _
from trustcore import ids

READER_ID = ids.READER_ID  # the one rule: trustcore/ids.py
ROLES = ("door", "attendance", "both")


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class NewReader:
    reader: Reader
    mac_key: bytes      # show once; goes to the device's /keys at provisioning
    mqtt_password: str  # show once; goes to the broker's password file and the device


def key_context(reader_id: str) -> str:
    return "reader-mac:" + reader_id


def check_reader_id(reader_id: str) -> str:
    if not READER_ID.match(reader_id):
        raise RegistryError(
            _(
                "reader id must be 1-63 lowercase letters, digits or '-', starting with a letter or digit "
                "(it is also the MQTT username and a topic level)"
            )
        )
    return reader_id


def register(
    session: Session,
    box: SecretBox,
    reader_id: str,
    *,
    name: str = "",
    site: str = "",
    unit: str = "",
    door_id: str | None = None,
    role: str = "door",
    mac_key: bytes | None = None,
) -> NewReader:
    """Add a reader (the caller commits). ``mac_key`` imports an existing key (re-provisioning)."""
    check_reader_id(reader_id)
    if role not in ROLES:
        raise RegistryError(_("role must be one of {roles}", roles=", ".join(ROLES)))
    if session.get(Reader, reader_id) is not None:
        raise RegistryError(_("reader {id} is already registered", id=reader_id))
    if door_id is not None and session.get(Door, door_id) is None:
        raise RegistryError(_("door {id} does not exist", id=door_id))
    key = mac_key if mac_key is not None else os.urandom(32)
    if len(key) != 32:
        raise RegistryError(_("a reader MAC key is 32 bytes"))
    reader = Reader(id=reader_id, name=name, site=site, unit=unit, door_id=door_id, role=role,
                    mac_key_enc=box.seal(key, key_context(reader_id)))  # fmt: skip
    session.add(reader)
    return NewReader(reader, key, secrets.token_urlsafe(24))


class KeyCache:
    """Thread-safe reader id → MAC key (None: unknown or disabled reader)."""

    def __init__(self, engine: Engine, box: SecretBox, *, miss_interval_s: float = 5.0) -> None:
        self._engine = engine
        self._box = box
        self._keys: dict[str, bytes] = {}
        self._misses: dict[str, float] = {}
        self._miss_interval = miss_interval_s
        self._lock = threading.Lock()

    def load_all(self) -> int:
        with Session(self._engine) as s:
            rows = s.exec(select(Reader.id, Reader.mac_key_enc).where(Reader.enabled == True)).all()  # noqa: E712
        keys = {rid: self._box.open(enc, key_context(rid)) for rid, enc in rows}
        with self._lock:
            self._keys = keys
            self._misses.clear()
        return len(keys)

    def get(self, reader_id: str) -> bytes | None:
        key = self._keys.get(reader_id)
        if key is not None:
            return key
        now = time.monotonic()
        with self._lock:
            last = self._misses.get(reader_id)
            if last is not None and now - last < self._miss_interval:
                return None
            if len(self._misses) > 10_000:  # bounded: a flood of invented ids
                self._misses.clear()
            self._misses[reader_id] = now
        with Session(self._engine) as s:
            reader = s.get(Reader, reader_id)
            if reader is None or not reader.enabled:
                return None
            key = self._box.open(reader.mac_key_enc, key_context(reader_id))
        with self._lock:
            self._keys[reader_id] = key
            self._misses.pop(reader_id, None)
        return key

    def forget(self, reader_id: str) -> None:
        """Drop a key (reader disabled or re-keyed); the next get() reloads it."""
        with self._lock:
            self._keys.pop(reader_id, None)
            self._misses.pop(reader_id, None)
