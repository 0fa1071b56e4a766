"""Whether ingest is moving: the writer loops report each commit and each failed attempt here;
``/healthz`` answers 503 with the reason once batches have failed for ``stuck_after_s`` without a
commit, and Prometheus shows the same (``cbcc_ingest_stuck``, ``cbcc_ingest_failing_seconds``,
``cbcc_ingest_failures{error}``). A database that answers pings while ingest keeps failing used to
look healthy; a poisoned batch is split and quarantined by :mod:`gateway.ingest`, so what remains
here is the database being away or something not yet understood — an operator must look.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import Counter, Gauge

from gateway import metrics
from gateway.sealed import printable

STUCK = Gauge("cbcc_ingest_stuck", "1 while batches keep failing without a commit (see /healthz).",
              registry=metrics.REGISTRY)  # fmt: skip
FAILING_SECONDS = Gauge("cbcc_ingest_failing_seconds", "Seconds since the first failure without a commit.",
                        registry=metrics.REGISTRY)  # fmt: skip
FAILURES = Counter("cbcc_ingest_failures", "Failed batch attempts, by error class.", ["error"],
                   registry=metrics.REGISTRY)  # fmt: skip


class IngestHealth:
    """Thread-safe: the writer thread reports, the API reads."""

    def __init__(self, stuck_after_s: float = 30.0) -> None:
        self.stuck_after_s = stuck_after_s
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._error = ""
        self.last_commit: float | None = None

    def committed(self) -> None:
        with self._lock:
            self._failing_since = None
            self._error = ""
            self.last_commit = time.time()
        STUCK.set(0)
        FAILING_SECONDS.set(0)

    def failed(self, exc: BaseException) -> None:
        name = type(exc).__name__
        FAILURES.labels(name).inc()
        now = time.monotonic()
        with self._lock:
            if self._failing_since is None:
                self._failing_since = now
            self._error = printable(f"{name}: {exc}")[:300]
            since = self._failing_since
        FAILING_SECONDS.set(now - since)
        if now - since >= self.stuck_after_s:
            STUCK.set(1)

    def stuck(self) -> str | None:
        """Why ingest is stuck, or None while it is moving (or only briefly failing)."""
        with self._lock:
            since, error = self._failing_since, self._error
        if since is None or time.monotonic() - since < self.stuck_after_s:
            return None
        return f"no commit for {time.monotonic() - since:.0f} s; last error {error}"
