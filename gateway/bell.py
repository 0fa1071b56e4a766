"""A bell rung when ingest commits events, so the console's live feeds query at once.

Without it every open live feed polled the event table on a timer (a tap waited for the next
poll); with it a feed sleeps until a commit rings, and polls only as a fallback. Rung from any
thread (ingest's writer thread, the embedded broker's event loop); waited on in any asyncio loop
(uvicorn's).

Commits in another process (a separate ``gateway.ingest_main``, a sibling gateway sharing the
readers) reach it on PostgreSQL: the committing process sends ``NOTIFY cbcc_events`` with its own
token (:func:`notify`), and a :class:`Listener` thread in each gateway rings its bell for every
token but its own (its own commits ring directly).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from typing import Final

import psycopg
from sqlalchemy.engine import Engine

from messages import _

log = logging.getLogger("cbcc.gateway.bell")

CHANNEL: Final = "cbcc_events"
TOKEN: Final = secrets.token_hex(8)  # this process, in the NOTIFY payload


class Bell:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.rings = 0

    def ring(self) -> None:
        """Wake every waiter (thread-safe; never blocks)."""
        with self._lock:
            self.rings += 1
            waiters = list(self._waiters)
        for loop, ev in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
                loop.call_soon_threadsafe(ev.set)

    async def wait(self, seen: int, timeout: float) -> int:
        """Until the ring count differs from ``seen`` (read it before querying, so a commit
        between the query and this wait is not missed) or ``timeout`` seconds; the new count."""
        ev = asyncio.Event()
        me = (asyncio.get_running_loop(), ev)
        with self._lock:
            if self.rings != seen:
                return self.rings
            self._waiters.add(me)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(me)
        return self.rings


def notify(engine: Engine) -> None:
    """Tell the other processes' listeners that events were committed (PostgreSQL; best effort:
    their feeds also poll)."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '{TOKEN}')")
            conn.commit()
    except Exception as exc:
        log.debug("notify failed: %s", exc)


class Listener:
    """Rings ``bell`` when another process notifies a commit (a thread on its own PostgreSQL
    connection, reconnecting after a failure)."""

    def __init__(self, engine: Engine, bell: Bell, *, retry_s: float = 2.0) -> None:
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.bell = bell
        self.retry_s = retry_s
        self.heard = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cbcc-bell", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=0.5):
                            if n.payload != TOKEN:
                                self.heard += 1
                                self.bell.ring()
            except Exception as exc:
                self.listening.clear()
                log.warning(
                    _(
                        "live feed listener: {error}; again in {seconds:.0f} s",
                        error=type(exc).__name__,
                        seconds=self.retry_s,
                    )
                )
                self._stop.wait(self.retry_s)
