"""Benchmark: gateway ingest against a real Mosquitto and PostgreSQL (and SQLite).

    uv run python tests/bench/ingest.py [--events 200000] [--repeat 3] [--readers 500] [--rate 5000]

1. Many simulated readers publish QoS 1 sealed events while the consumers are away: a backlog
   queued by a persistent Mosquitto for one primed session per variant below.
2. Each variant drains its backlog, in the same run (the machine is shared: only figures from one
   run compare); repeated ``--repeat`` times with a fresh backlog, medians reported:
   - ``bare_stock``: paho's stock client, acks only (the baseline the goals were set against);
   - ``bare_fast``: the gateway's :class:`~gateway.mqtt.consumer.IngestClient`, acks only;
   - ``gw_stock_w0``: the gateway as it was (stock client, writer thread in the same process);
   - ``gw_w0``: IngestClient, writer thread (``ingest.workers = 0``);
   - ``gw_w0_noack``: the same without the end-to-end confirmations (their cost);
   - ``gw_w1``: IngestClient, writer in a worker process (``ingest.workers = 1``).
   Every gateway variant stores into emptied tables; lost and duplicated events are counted
   against what was published (must be 0 / 0).
3. Tap-to-row latency with the default configuration online and readers publishing at a paced
   ``--rate``: publish time (carried in the tap's serial field, publisher in its own process) →
   the commit time of the batch that stored the event (bench-only hook ``Consumer(on_batch=…)``).
4. The writer alone (no MQTT) on PostgreSQL: COPY + INSERT … SELECT vs multi-row INSERT … VALUES,
   and SQLite; ``--profile`` prints a cProfile of the writer.

Nothing here asserts a time. The final line is one JSON object; its headline ``gateway_pg_per_s``
and ``ratio_vs_bare`` are the default configuration (``IngestSettings().workers``) against the
stock bare drain, ``ratio_vs_bare_fast`` against the bare drain with the same client.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))

import cbor2  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from support import pg  # noqa: E402
from support.broker import Broker  # noqa: E402
from support.ingest import (  # noqa: E402
    TOPIC,
    Publisher,
    event_stream,
    expected_keys,
    reader_ids,
    setup_store,
    tap,
)

from gateway.ingest import BatchResult, IngestWriter, Message  # noqa: E402
from gateway.ingest_worker import ProcessWriter, WorkerSpec  # noqa: E402
from gateway.mqtt.consumer import BareDrain, Consumer, connect_async, make_client, subscriptions  # noqa: E402
from gateway.settings import IngestSettings, MqttSettings  # noqa: E402

PASSWORD = "bench-pw"


def settings(b: Broker, client_id: str) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=b.port, username="gateway", password=SecretStr(PASSWORD),
                        client_id=client_id, embedded=False)  # fmt: skip


def prime(s: MqttSettings) -> None:
    c = make_client(s)
    done = threading.Event()
    c.on_subscribe = lambda *_a: done.set()
    c.on_connect = lambda cl, *_a: cl.subscribe([(t, 1) for t in subscriptions(None)])
    connect_async(c, s, 100)
    c.loop_start()
    if not done.wait(10):
        raise RuntimeError("prime: no subscription")
    c.disconnect()
    c.loop_stop()


def publish(b: Broker, msgs: Any, total: int, rate: float | None = None, on_sent: Any = None) -> float:
    pub = Publisher(b.port, "gateway", PASSWORD, clients=3, inflight=3000, window=30_000)
    t0 = time.perf_counter()
    pub.publish_all(msgs, rate=rate, on_sent=on_sent)
    pub.wait_acked(total, timeout=600)
    dt = time.perf_counter() - t0
    pub.close()
    return dt


def rows(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as c:
        r = c.execute(sa.text("SELECT count(*), count(DISTINCT reader_id || '/' || seq) FROM event")).one()
    return int(r[0]), int(r[1])


def writer_only(url: str, rids: list[str], n: int, folder: Path, method: str, batch: int,
                profile: bool) -> tuple[float, str]:  # fmt: skip
    st = setup_store(url, rids, folder / "master.key")
    w = IngestWriter(st.engine, st.keys, pg_method=method)
    now = time.time()
    msgs = [Message(t, p, i, now) for i, (t, p) in enumerate(event_stream(rids, n))]
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    for i in range(0, n, batch):
        w.write_batch(msgs[i:i + batch])
    if prof:
        prof.disable()
    dt = time.perf_counter() - t0
    text = ""
    if prof:
        import io

        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
        text = out.getvalue()
    assert rows(st.engine) == (n, n)
    st.engine.dispose()
    return n / dt, text


def publish_child(port: int, rate: float, m: int, start_seq: int, readers: int) -> None:
    """Readers in their own process: ``m`` taps at ``rate``/s, each stamped with its publish time."""
    rids = reader_ids(readers)
    pub = Publisher(port, "gateway", PASSWORD, clients=2, inflight=2000)

    def stamped() -> Any:
        for i in range(m):
            rid = rids[i % readers]
            yield TOPIC.format(rid), tap(rid, start_seq + i // readers, serial=int(time.time() * 1e6))

    pub.publish_all(stamped(), rate=rate)
    pub.wait_acked(m, timeout=300)
    pub.close()


VARIANTS = ("bare_stock", "bare_fast", "gw_stock_w0", "gw_w0", "gw_w0_noack", "gw_w1")


class NoAckWriter(IngestWriter):
    """The writer without the end-to-end confirmations (gateway/ack.py): what they cost."""

    def _with_acks(self, res: BatchResult) -> BatchResult:
        return res


def run_variant(name: str, s: MqttSettings, st: Any, key_file: Path, n: int, rids: list[str],
                batch_max: int) -> dict[str, Any]:  # fmt: skip
    """Drain this variant's backlog of ``n`` events; events/s and (gateways) lost/duplicated."""
    if name.startswith("bare"):
        d = BareDrain(s, receive_max=min(65535, 4 * batch_max), fast=name == "bare_fast")
        t0 = time.perf_counter()
        d.start()
        if not d.wait(n, 600):
            raise RuntimeError(f"{name} got {d.count} of {n}")
        rate = n / (time.perf_counter() - t0)
        d.stop()
        return {"per_s": round(rate)}
    with st.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE event, quarantine, bootanchor"))
    done = threading.Event()
    stored = [0]
    secs: list[float] = []

    def on_batch(res: BatchResult, _m: Any) -> None:
        stored[0] += res.stored
        secs.append(res.seconds)
        if stored[0] >= n:
            done.set()

    workers = 1 if name.endswith("w1") else 0
    plain = NoAckWriter if name.endswith("_noack") else IngestWriter
    writer: Any = ProcessWriter(WorkerSpec(st.url, key_file)) if workers else plain(st.engine, st.keys)
    if workers:
        writer.start()  # started before the clock, as the gateway starts it before connecting
    c = Consumer(s, writer, ingest=IngestSettings(batch_max=batch_max, batch_wait_ms=50, workers=workers),
                 on_batch=on_batch, fast=name != "gw_stock_w0")  # fmt: skip
    t0 = time.perf_counter()
    c.start()
    if not done.wait(900):
        raise RuntimeError(f"{name} stored {stored[0]} of {n}")
    rate = n / (time.perf_counter() - t0)
    c.stop()
    if workers:
        writer.stop()
    time.sleep(0.5)
    total, distinct = rows(st.engine)
    with st.engine.connect() as conn:
        keys = {(r, q) for r, q in conn.execute(sa.text("SELECT reader_id, seq FROM event"))}
    want = expected_keys(rids, n)
    return {"per_s": round(rate), "lost": len(want - keys), "duplicated": total - distinct + len(keys - want),
            "batches": len(secs), "batch_seconds_p50": round(statistics.median(secs), 4)}  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish-child":
        port, rate, count, start_seq, readers = sys.argv[2:7]
        publish_child(int(port), float(rate), int(count), int(start_seq), int(readers))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--readers", type=int, default=500)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--latency-seconds", type=float, default=12)
    ap.add_argument("--batch-max", type=int, default=4000)
    ap.add_argument("--writer-events", type=int, default=60_000)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    n, rids = a.events, reader_ids(a.readers)
    default_workers = IngestSettings().workers
    headline = f"gw_w{default_workers}"
    variants = [v for v in a.variants.split(",") if v] if a.repeat > 0 else []  # --repeat 0: latency only
    out: dict[str, Any] = {"events": n, "readers": a.readers, "batch_max": a.batch_max, "repeat": a.repeat,
                           "default_workers": default_workers}  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="cbcc-bench-ingest-"))
    (tmp / "broker").mkdir()
    b = Broker(tmp / "broker", {"gateway": PASSWORD}, persistence=True)
    b.start()
    url = pg.create_database("cbcc_bench")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    try:
        st = setup_store(url, rids, tmp / "master.key")
        for rep in range(a.repeat):
            sessions = {v: settings(b, f"bench-{v}-{rep}") for v in variants}
            for s in sessions.values():
                prime(s)
            dt = publish(b, event_stream(rids, n), n)
            print(f"[{rep + 1}/{a.repeat}] backlog: {n} events from {a.readers} readers, {n / dt:,.0f}/s")
            for v in variants:
                r = run_variant(v, sessions[v], st, tmp / "master.key", n, rids, a.batch_max)
                runs[v].append(r)
                tail = (f"  lost {r['lost']}, duplicated {r['duplicated']}, median batch "
                        f"{r['batch_seconds_p50'] * 1000:.0f} ms") if "lost" in r else ""  # fmt: skip
                print(f"    {v:12s} {r['per_s']:>8,} events/s{tail}", flush=True)
        med = {v: statistics.median(r["per_s"] for r in rs) for v, rs in runs.items()}
        out["variants"] = {v: {"median_per_s": round(med[v]), "runs": [r["per_s"] for r in rs]}
                           for v, rs in runs.items()}  # fmt: skip
        for v, rs in runs.items():
            if v.startswith("gw"):
                out["variants"][v]["lost"] = sum(r["lost"] for r in rs)
                out["variants"][v]["duplicated"] = sum(r["duplicated"] for r in rs)
        print("medians:")
        for v in variants:
            extra = ""
            if v.startswith("gw") and "bare_stock" in med:
                extra = f" = {med[v] / med['bare_stock']:.2f}x bare_stock"
                if "bare_fast" in med:
                    extra += f", {med[v] / med['bare_fast']:.2f}x bare_fast"
            print(f"    {v:12s} {med[v]:>8,.0f} events/s{extra}")
        if "bare_stock" in med:
            out["bare_drain_per_s"] = round(med["bare_stock"])
        if "bare_fast" in med:
            out["bare_drain_fast_per_s"] = round(med["bare_fast"])
        if headline in med:
            out["gateway_pg_per_s"] = round(med[headline])
            if "bare_stock" in med:
                out["ratio_vs_bare"] = round(med[headline] / med["bare_stock"], 3)
                # the goal is judged per run: gateway and bare drain of the same repetition
                pairs = zip(runs[headline], runs["bare_stock"], strict=True)
                out["ratio_vs_bare_runs"] = [round(g["per_s"] / bb["per_s"], 3) for g, bb in pairs]
            if "bare_fast" in med:
                out["ratio_vs_bare_fast"] = round(med[headline] / med["bare_fast"], 3)
            out["lost"] = out["variants"][headline]["lost"]
            out["duplicated"] = out["variants"][headline]["duplicated"]

        # (c) latency at a paced rate, the default configuration online; the readers are another
        # process (as they are other machines), each event carrying its publish time (µs) in its
        # serial field.
        m = int(a.rate * a.latency_seconds)
        lat: list[float] = []
        got = threading.Event()

        def on_batch_lat(res: BatchResult, msgs: Any) -> None:
            for msg in msgs:
                rec = cbor2.loads(cbor2.loads(msg.payload)[2])
                lat.append(res.committed_at - rec[12] / 1e6)
            if len(lat) >= m:
                got.set()

        s_lat = settings(b, "bench-latency")
        prime(s_lat)
        writer: Any = (ProcessWriter(WorkerSpec(url, tmp / "master.key")) if default_workers
                       else IngestWriter(st.engine, st.keys))  # fmt: skip
        if default_workers:
            writer.start()
        c = Consumer(s_lat, writer, ingest=IngestSettings(batch_max=a.batch_max, batch_wait_ms=50),
                     on_batch=on_batch_lat)  # fmt: skip
        c.start()
        c.wait_connected(10)
        start_seq = n + 10
        subprocess.run([sys.executable, __file__, "--publish-child", str(b.port), str(a.rate), str(m),
                        str(start_seq), str(a.readers)], check=True)  # fmt: skip
        got.wait(120)
        c.stop()
        if default_workers:
            writer.stop()
        lat.sort()
        p = {q: lat[min(len(lat) - 1, int(q / 100 * len(lat)))] * 1000 if lat else -1.0 for q in (50, 99)}
        out["latency_events"] = len(lat)
        out["latency_rate_per_s"] = a.rate
        out["latency_p50_ms"] = round(p[50], 1)
        out["latency_p99_ms"] = round(p[99], 1)
        print(f"(c) tap-to-row latency ({headline}) at {a.rate:,.0f}/s over {len(lat)} events: "
              f"p50 {p[50]:.0f} ms, p99 {p[99]:.0f} ms")  # fmt: skip
        st.engine.dispose()
    finally:
        b.stop()
        pg.drop_database(url)

    # (d) the writer alone (PostgreSQL: COPY, VALUES; SQLite)
    wn = a.writer_events
    for method in ("copy", "values"):
        u = pg.create_database("cbcc_bench")
        try:
            f = tmp / f"w-{method}"
            f.mkdir()
            wr, prof = writer_only(u, rids, wn, f, method, a.batch_max, a.profile and method == "copy")
        finally:
            pg.drop_database(u)
        out[f"writer_pg_{method}_per_s"] = round(wr)
        print(f"(d) writer alone, PostgreSQL {method}: {wr:,.0f} events/s")
        if prof:
            print(prof)
    f = tmp / "w-sqlite"
    f.mkdir()
    wr, prof = writer_only(f"sqlite:///{f / 'g.db'}", rids, wn, f, "copy", a.batch_max, a.profile)
    out["writer_sqlite_per_s"] = round(wr)
    print(f"(d) writer alone, SQLite (WAL, synchronous=FULL): {wr:,.0f} events/s")
    if prof:
        print(prof)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
