"""A bell rung when ingest commits events, so the console's live feeds query at once.

Without it every open live feed polled the event table on a timer (a tap waited for the next
poll); with it a feed sleeps until a commit in this process rings, and polls only as a fallback
(events committed by another process: a separate ``gateway.ingest_main``, or a sibling gateway
sharing the readers). Rung from any thread (ingest's writer thread, the embedded broker's event
loop); waited on in any asyncio loop (uvicorn's).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


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
