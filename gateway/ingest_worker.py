"""Ingest in a worker process: verification and the database transaction off the MQTT process's GIL.

With ``ingest.workers = 1`` the gateway process keeps only paho's network thread, the event queue
and the acknowledgements; each batch goes as raw ``(topic, payload, received_at)`` tuples over a
socket pair to a child process (``python -m gateway.ingest_worker``: a fresh interpreter, nothing of
the parent's threads, sockets or ``__main__`` is inherited or re-run) that
builds its own engine, :class:`~gateway.registry.KeyCache` and :class:`~gateway.ingest.IngestWriter`
from :class:`WorkerSpec`, verifies and stores the batch in one transaction — the effects callback
(an importable reference such as ``"gateway.fleet:apply_event_effects"``) runs in that same
transaction, in the child — and answers with the :class:`~gateway.ingest.BatchResult`.

Guarantees are those of the in-thread writer, because the parent still acknowledges a batch only
after the child reported its commit:

- the database fails → the child answers with an error, :meth:`ProcessWriter.write_batch` raises,
  the consumer keeps the batch un-acknowledged and retries it after ``ingest.db_retry_s``;
- the child dies (killed, out of memory) at any moment → the parent sees the pipe close, starts a
  new child and sends the same batch again (once; then it raises and the consumer retries later).
  If the child had committed before it died, the batch comes back as duplicates: rows are unique
  on ``(reader_id, seq)``, nothing is stored twice;
- the parent dies → the child reads end-of-file and exits; the broker re-sends what the parent had
  not acknowledged.

The parent counts the Prometheus metrics from the results (the child's registry is not scraped).
A reader disabled through the API must be forgotten by the child's key cache too:
:meth:`ProcessWriter.forget`.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from gateway import metrics
from gateway.ingest import BatchResult, Effects, IngestWriter, Message, count_result
from gateway.registry import KeyCache
from gateway.settings import Settings
from messages import _

log = logging.getLogger("cbcc.gateway.ingest_worker")

Raw = tuple[str, bytes, float]  # (topic, payload, received_at)


class WorkerLost(Exception):
    """The worker process died (twice in a row for one batch); nothing of the batch is acknowledged."""


class WorkerError(Exception):
    """The worker could not commit the batch (its exception, as text); nothing is acknowledged."""


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs to build its writer (picklable, no secrets but paths)."""

    database_url: str
    master_key_file: Path
    pool_size: int = 2
    effects: str | None = None  # "package.module:function", run in the batch's transaction
    pg_method: str = "copy"


def resolve(ref: str) -> Effects:
    """``"package.module:function"`` → the function."""
    mod, _, name = ref.partition(":")
    if not mod or not name:
        raise ValueError(f"effects reference {ref!r} is not 'module:function'")
    fn = getattr(importlib.import_module(mod), name)
    if not callable(fn):
        raise TypeError(f"{ref} is not callable")
    return fn  # type: ignore[no-any-return]


def _build(spec: WorkerSpec) -> IngestWriter:
    from gateway import db
    from gateway.secretbox import SecretBox

    engine = db.make_engine(spec.database_url, pool_size=spec.pool_size)
    keys = KeyCache(engine, SecretBox.from_file(spec.master_key_file))
    keys.load_all()
    effects = resolve(spec.effects) if spec.effects else None
    return IngestWriter(engine, keys, effects, pg_method=spec.pg_method, count_metrics=False)


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """The child process: build the writer, then serve batches until told to stop or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        writer = _build(spec)
    except Exception as exc:
        conn.send(("fatal", 0, f"{type(exc).__name__}: {exc}"[:1000]))
        return
    conn.send(("ready", 0, os.getpid()))
    while True:
        try:
            req = conn.recv()
        except (EOFError, OSError):
            break  # the parent is gone
        kind = req[0]
        if kind == "batch":
            _, seq, items = req
            try:
                res = writer.write_batch([Message(t, p, 0, at) for t, p, at in items])
                reply: tuple[str, int, Any] = ("ok", seq, res)
            except Exception as exc:  # the database is away (or the effects failed): not committed
                reply = ("err", seq, f"{type(exc).__name__}: {exc}"[:1000])
            try:
                conn.send(reply)
            except OSError:
                break  # the parent died meanwhile: the broker re-sends what it had not acknowledged
        elif kind == "forget":
            writer.keys.forget(req[1])
        elif kind == "stop":
            break
    writer.engine.dispose()


class ProcessWriter:
    """A :class:`~gateway.mqtt.consumer.BatchWriter` whose writer runs in a child process.

    ``write_batch`` is called by one thread at a time (the consumer's writer thread); ``forget``
    from any thread."""

    def __init__(self, spec: WorkerSpec, *, start_timeout_s: float = 120, poll_s: float = 0.5) -> None:
        self.spec = spec
        self.start_timeout_s = start_timeout_s
        self.poll_s = poll_s
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._seq = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._conn is not None and self.alive():
            return
        ours, theirs = socket.socketpair()
        with ours, theirs:
            fd = theirs.fileno()
            proc = subprocess.Popen([sys.executable, "-m", "gateway.ingest_worker", str(fd)], pass_fds=(fd,),  # noqa: S603 — argv list: this interpreter running our own worker module; no shell
                                    stdin=subprocess.DEVNULL)  # fmt: skip
            conn = Connection(os.dup(ours.fileno()))
        # (our copy of the child's end is closed: when the child dies, recv() sees end-of-file)
        try:
            conn.send(("init", list(sys.path), self.spec))
            deadline = time.monotonic() + self.start_timeout_s
            while not conn.poll(0.2):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise WorkerLost(_("ingest worker did not start (exit code {code})", code=proc.poll()))
            kind, _seq, detail = conn.recv()
        except (EOFError, OSError) as exc:
            self._reap(proc, conn)
            raise WorkerLost(
                _("ingest worker died while starting (exit code {code})", code=proc.poll())
            ) from exc
        except WorkerLost:
            self._reap(proc, conn)
            raise
        if kind != "ready":
            self._reap(proc, conn)
            raise WorkerError(_("ingest worker could not start: {reason}", reason=detail))
        self._proc, self._conn = proc, conn
        log.info(_("ingest worker {pid} started", pid=proc.pid))

    def stop(self, timeout: float = 10) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None or conn is None:
            return
        try:
            with self._send_lock:
                conn.send(("stop", 0, None))
            proc.wait(timeout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self._reap(proc, conn)

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes], conn: Connection) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        conn.close()

    # ---- the BatchWriter protocol ------------------------------------------------------------

    def write_batch(self, msgs: Sequence[Message]) -> BatchResult:
        items: list[Raw] = [(m.topic, m.payload, m.received_at) for m in msgs]
        for _attempt in range(2):
            if self._conn is None:
                try:
                    self.start()
                except (WorkerLost, WorkerError):
                    metrics.DB_ERRORS.inc()
                    raise
            try:
                reply = self._exchange(items)
            except (EOFError, OSError, BrokenPipeError):
                self._proc_died()
                continue
            kind, _seq, detail = reply
            if kind == "ok":
                count_result(detail)
                return detail  # type: ignore[no-any-return]
            metrics.DB_ERRORS.inc()
            raise WorkerError(detail)
        metrics.DB_ERRORS.inc()
        raise WorkerLost(_("ingest worker died twice with the same batch"))

    def _exchange(self, items: list[Raw]) -> tuple[str, int, Any]:
        conn, proc = self._conn, self._proc
        assert conn is not None and proc is not None  # noqa: S101 — type narrowing for mypy, not input validation
        self._seq += 1
        seq = self._seq
        with self._send_lock:
            conn.send(("batch", seq, items))
        while True:
            if conn.poll(self.poll_s):  # the child's end is closed here: poll() is True at its death
                reply: tuple[str, int, Any] = conn.recv()  # EOFError when the child died
                if reply[1] == seq:
                    return reply
                continue
            if proc.poll() is not None:
                raise EOFError("ingest worker exited")

    def _proc_died(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None and conn is not None:
            self._reap(proc, conn)
        self.restarts += 1
        log.warning(
            _(
                "ingest worker died with a batch in hand (exit code {code}); re-sending it to a new one",
                code=None if proc is None else proc.returncode,
            )
        )

    def forget(self, reader_id: str) -> None:
        """Drop a reader's key in the worker (reader disabled or re-keyed)."""
        conn = self._conn
        if conn is None:
            return  # a new worker loads the keys afresh
        try:
            with self._send_lock:
                conn.send(("forget", 0, reader_id))
        except (OSError, ValueError):
            pass


def writer_from_settings(settings: Settings, engine: Engine, keys: KeyCache,
                         effects: str | None = None) -> IngestWriter | ProcessWriter:  # fmt: skip
    """The batch writer ``settings.ingest.workers`` asks for; a worker process is started here.
    ``engine`` and ``keys`` are the parent's (used in-thread only); ``effects`` is an importable
    reference (``"gateway.fleet:apply_event_effects"``) so that a worker can import it too."""
    if settings.ingest.workers == 0:
        return IngestWriter(engine, keys, resolve(effects) if effects else None)
    w = ProcessWriter(WorkerSpec(settings.database.url, settings.resolved_master_key_file(),
                                 pool_size=2, effects=effects))  # fmt: skip
    w.start()
    return w


def main(argv: list[str]) -> int:
    """``python -m gateway.ingest_worker <fd>``: started by :class:`ProcessWriter` only."""
    conn = Connection(int(argv[1]))
    try:
        kind, path, spec = conn.recv()
    except (EOFError, OSError):
        return 1
    if kind != "init" or not isinstance(spec, WorkerSpec):
        return 2
    sys.path[:0] = [p for p in path if p not in sys.path]  # e.g. where a test's effects module lives
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    worker_main(spec, conn)
    return 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the spec unpickles as
    # gateway.ingest_worker.WorkerSpec.
    from gateway.ingest_worker import main as _main

    raise SystemExit(_main(sys.argv))
