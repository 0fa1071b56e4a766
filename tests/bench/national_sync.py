"""Benchmark: national card database sync into PostgreSQL (and SQLite).

    uv run python tests/bench/national_sync.py [--records 2073460] [--history 100000]
        [--incremental 10000] [--sqlite-records N] [--no-sqlite] [--feed-path]

The simulator (``simulators.national``) runs in its own process, serving HTTP on
127.0.0.1, so its memory and CPU are not the sync's (it shares the machine's cores, though).
It starts with all but the last ``--incremental`` history changes visible. Each sync runs in a
fresh child process (``HttpChangeFeed`` with prefetch + ``sync_feed``) that reports its own peak
RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``):

1. initial sync (full load) of records + history into an empty, migrated database: by default
   (the headline, ``postgresql``) the first-load path ``sync_feed`` takes, a snapshot as of the
   head (``GET /v1/snapshot``) then the feed; with ``--feed-path`` also every change through the
   feed alone (``postgresql_feed``, the path before snapshots);
2. ``POST /sim/advance`` reveals ``--incremental`` more changes; incremental sync.

Each result is checked: cursor = feed head, one CardChange row per change (the snapshot: one row
for the snapshot plus one per later change). Goals (PostgreSQL, default path):
initial ≤ 60 s, incremental ≤ 2 s, peak RSS ≤ 300 MB. The machine is shared; nothing here
asserts a time. The final line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

from support import pg  # noqa: E402

CHILD = """
import json, resource, sys, time
from gateway import db
from gateway.national.feed import HttpChangeFeed
from gateway.national.sync import sync_feed
url, base, snapshot = sys.argv[1], sys.argv[2], sys.argv[4] == "snapshot"
engine = db.make_engine(url)
feed = HttpChangeFeed(base, page_size=int(sys.argv[3]))
changed = [0]
t = time.perf_counter()
hook = lambda s: changed.__setitem__(0, changed[0] + len(s))
r = sync_feed(engine, feed, on_change=hook, snapshot=snapshot)
secs = time.perf_counter() - t
with engine.connect() as c:
    import sqlalchemy as sa
    n = c.execute(sa.text("SELECT count(*) FROM cardchange")).scalar_one()
    cards = c.execute(sa.text("SELECT count(*) FROM card")).scalar_one()
    staff = c.execute(sa.text("SELECT count(*) FROM staffrecord")).scalar_one()
print(json.dumps({"seconds": round(secs, 2), "snapshot": r.snapshot, "pages": r.pages, "applied": r.applied,
                  "cursor": r.cursor,
                  "cardchange_rows": n, "cards": cards, "staff": staff, "revocation_changed": changed[0],
                  "retries": feed.retries,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sim:
    def __init__(self, records: int, history: int, reveal: int, seed: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.national", "--records", str(records), "--history",
             str(history), "--reveal", str(reveal), "--seed", str(seed), "--port", str(self.port)],
            cwd=ROOT,
        )  # fmt: skip
        deadline = time.time() + 120
        while True:
            try:
                self.status = httpx.get(f"{self.base}/v1/status", timeout=2).json()
                break
            except httpx.HTTPError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("simulator did not start") from None
                time.sleep(0.2)

    def advance(self, n: int) -> int:
        return int(httpx.post(f"{self.base}/sim/advance", params={"n": n}, timeout=30).json()["head"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_sync(url: str, base: str, page_size: int, path: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CHILD, url, base, str(page_size), path], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def bench(label: str, url: str, a: argparse.Namespace, records: int, path: str) -> dict[str, Any]:
    """``path``: ``snapshot`` (the default first load: a snapshot, then the feed) or ``feed`` (every
    change through the feed, as before snapshots)."""
    from gateway import db

    db.migrate(url)
    sim = Sim(records, a.history, a.history - a.incremental, a.seed)
    try:
        head0 = sim.status["head"]
        initial = run_sync(url, sim.base, a.page_size, path)
        # One CardChange per change, or one for the snapshot (as_of = head) plus one per later change.
        rows = 1 if path == "snapshot" else head0
        initial["ok"] = initial["cursor"] == str(head0) and initial["cardchange_rows"] == rows
        if path == "snapshot":
            initial["ok"] = initial["ok"] and initial["snapshot"] == head0
        initial["changes_per_s"] = round(head0 / initial["seconds"])
        initial["records_per_s"] = round((initial["cards"] + initial["staff"]) / initial["seconds"])
        head1 = sim.advance(a.incremental)
        incr = run_sync(url, sim.base, a.page_size, path)
        incr["ok"] = incr["cursor"] == str(head1) and incr["cardchange_rows"] == rows + head1 - head0
    finally:
        sim.stop()
    res = {"engine": label, "path": path, "records": records, "changes_initial": head0, "initial": initial,
           "incremental_changes": head1 - head0, "incremental": incr}  # fmt: skip
    print(json.dumps(res), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--records", type=int, default=2_073_460)
    ap.add_argument("--history", type=int, default=100_000)
    ap.add_argument("--incremental", type=int, default=10_000)
    ap.add_argument("--page-size", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sqlite-records", type=int, default=None, help="default: --records")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--feed-path", action="store_true",
                    help="also a first load through the feed alone (no snapshot)")  # fmt: skip
    a = ap.parse_args()
    results: dict[str, Any] = {"bench": "national_sync", "simulator": "separate process (HTTP, 127.0.0.1)"}
    for path in ["snapshot", *(["feed"] if a.feed_path else [])]:
        key = "postgresql" if path == "snapshot" else f"postgresql_{path}"
        url = pg.create_database("cbcc_bench_national")
        try:
            results[key] = bench("postgresql", url, a, a.records, path)
        finally:
            pg.drop_database(url)
        if not a.no_sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                results[key.replace("postgresql", "sqlite")] = bench(
                    "sqlite", f"sqlite:///{tmp}/g.db", a, a.sqlite_records or a.records, path
                )
    p = results["postgresql"]
    results["goals"] = {"initial_s<=60": p["initial"]["seconds"] <= 60,
                        "incremental_s<=2": p["incremental"]["seconds"] <= 2,
                        "peak_rss_mb<=300": max(p["initial"]["peak_rss_mb"],
                                                p["incremental"]["peak_rss_mb"]) <= 300,
                        "correct": p["initial"]["ok"] and p["incremental"]["ok"]}  # fmt: skip
    results["goals_met"] = all(results["goals"].values())
    print(json.dumps(results))


if __name__ == "__main__":
    main()
