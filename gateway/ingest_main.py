"""Run ingest alone: ``python -m gateway.ingest_main [--config gateway.toml]``.

Settings come from the TOML file and ``CBCC_*`` environment variables (:mod:`gateway.settings`);
the broker is always external here (``mqtt.embedded`` is ignored). The process holds no state
of its own, so it may be killed at any moment and restarted, and several may run side by side
with ``mqtt.shared_group`` set. It stops cleanly on SIGTERM or SIGINT (the batch in hand is
committed and acknowledged). ``cbcc gateway run`` composes the same pieces with the API and fleet.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from gateway import bell, db
from gateway.ingest_worker import ProcessWriter, writer_from_settings
from gateway.mqtt.consumer import Consumer
from gateway.registry import KeyCache
from gateway.secretbox import SecretBox
from gateway.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.ingest_main", description=__doc__)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--migrate", action="store_true", help="bring the schema up to date first")
    args = ap.parse_args(argv)
    settings = load_settings(args.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.migrate:
        db.migrate(settings.database.url)
    engine = db.make_engine(settings.database.url, pool_size=settings.database.pool_size)
    keys = KeyCache(engine, SecretBox.from_file(settings.resolved_master_key_file()))
    keys.load_all()
    # ingest.workers = 1: verification and the database write in a child process (it exits when
    # this process dies; the broker re-sends whatever was not acknowledged)
    writer = writer_from_settings(settings, engine, keys)
    consumer = Consumer(settings.mqtt, writer, ingest=settings.ingest)
    # the gateways' console live feeds wake on this process's commits too (PostgreSQL NOTIFY)
    consumer.on_batch = lambda res, _msgs: bell.notify(engine) if res.stored else None
    done = threading.Event()

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    consumer.start()
    done.wait()
    consumer.stop()
    if isinstance(writer, ProcessWriter):
        writer.stop()
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
