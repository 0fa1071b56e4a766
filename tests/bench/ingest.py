"""Benchmark: gateway ingest against a real Mosquitto and PostgreSQL (and SQLite).

    uv run python tests/bench/ingest.py [--events 200000] [--readers 500] [--rate 5000]

1. Many simulated readers publish QoS 1 sealed events while the consumers are away: a backlog
   queued by a persistent Mosquitto for two primed sessions (``bench-drain``, ``bench-gw``).
2. (a) a bare paho consumer (same settings, acks only) drains its backlog;
   (b) the gateway (HMAC check, dedup, ack after commit) ingests its backlog into PostgreSQL.
3. Lost and duplicated events are counted against what was published (must be 0 / 0).
4. Tap-to-row latency with the gateway online and readers publishing at a paced ``--rate``:
   publish time (carried in the tap's serial field, publisher in its own process) → the commit
   time of the batch that stored the event (bench-only hook ``Consumer(on_batch=…)``; no column
   needed).
5. The writer alone (no MQTT) on PostgreSQL: COPY + INSERT … SELECT vs multi-row INSERT … VALUES,
   and SQLite; ``--profile`` prints a cProfile of the writer.

The machine is shared, so figures are noisy; nothing here asserts a time. The final line is one
JSON object.
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
import pg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from broker import Broker  # noqa: E402
from ingest_support import (  # noqa: E402
    TOPIC,
    Publisher,
    event_stream,
    expected_keys,
    reader_ids,
    setup_store,
    tap,
)
from pydantic import SecretStr  # noqa: E402

from gateway.ingest import BatchResult, IngestWriter, Message  # noqa: E402
from gateway.mqtt_consumer import BareDrain, Consumer, connect_async, make_client, subscriptions  # noqa: E402
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


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish-child":
        port, rate, m, start_seq, readers = sys.argv[2:7]
        publish_child(int(port), float(rate), int(m), int(start_seq), int(readers))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--readers", type=int, default=500)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--latency-seconds", type=float, default=12)
    ap.add_argument("--batch-max", type=int, default=4000)
    ap.add_argument("--writer-events", type=int, default=60_000)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    n, rids = a.events, reader_ids(a.readers)
    out: dict[str, Any] = {"events": n, "readers": a.readers, "batch_max": a.batch_max}
    tmp = Path(tempfile.mkdtemp(prefix="cbcc-bench-ingest-"))
    (tmp / "broker").mkdir()
    b = Broker(tmp / "broker", {"gateway": PASSWORD}, persistence=True)
    b.start()
    url = pg.create_database("cbcc_bench")
    try:
        st = setup_store(url, rids, tmp / "master.key")
        s_drain, s_gw = settings(b, "bench-drain"), settings(b, "bench-gw")
        prime(s_drain)
        prime(s_gw)
        dt = publish(b, event_stream(rids, n), n)
        out["publish_backlog_per_s"] = round(n / dt)
        print(f"backlog: {n} events from {a.readers} readers published in {dt:.1f} s ({n / dt:,.0f}/s)")

        # (a) bare drain
        d = BareDrain(s_drain, receive_max=min(65535, 4 * a.batch_max))
        t0 = time.perf_counter()
        d.start()
        if not d.wait(n, 600):
            raise RuntimeError(f"bare drain got {d.count} of {n}")
        bare = n / (time.perf_counter() - t0)
        d.stop()
        out["bare_drain_per_s"] = round(bare)
        print(f"(a) bare paho drain (acks only): {bare:,.0f} events/s")

        # (b) the gateway
        ing = IngestSettings(batch_max=a.batch_max, batch_wait_ms=50)
        done = threading.Event()
        stored = [0]
        secs: list[float] = []

        def on_batch(res: BatchResult, _m: Any) -> None:
            stored[0] += res.stored
            secs.append(res.seconds)
            if stored[0] >= n:
                done.set()

        c = Consumer(s_gw, IngestWriter(st.engine, st.keys), ingest=ing, on_batch=on_batch)
        t0 = time.perf_counter()
        c.start()
        if not done.wait(900):
            raise RuntimeError(f"gateway stored {stored[0]} of {n}")
        gw = n / (time.perf_counter() - t0)
        out["gateway_pg_per_s"] = round(gw)
        out["ratio_vs_bare"] = round(gw / bare, 3)
        out["batches"] = len(secs)
        out["batch_seconds_p50"] = round(statistics.median(secs), 4)
        print(f"(b) gateway into PostgreSQL: {gw:,.0f} events/s = {gw / bare:.2f}x bare drain "
              f"({len(secs)} batches, median batch {statistics.median(secs) * 1000:.0f} ms)")  # fmt: skip
        time.sleep(1.0)
        total, distinct = rows(st.engine)
        with st.engine.connect() as conn:
            keys = {(r, s) for r, s in conn.execute(sa.text("SELECT reader_id, seq FROM event"))}
        want = expected_keys(rids, n)
        out["lost"] = len(want - keys)
        out["duplicated"] = total - distinct + len(keys - want)
        print(f"lost {out['lost']}, duplicated {out['duplicated']}")

        # (c) latency at a paced rate, gateway online; the readers are another process (as they are
        # other machines), each event carrying its publish time (µs) in its serial field.
        m = int(a.rate * a.latency_seconds)
        lat: list[float] = []
        got = threading.Event()

        def on_batch_lat(res: BatchResult, msgs: Any) -> None:
            for msg in msgs:
                rec = cbor2.loads(cbor2.loads(msg.payload)[2])
                lat.append(res.committed_at - rec[12] / 1e6)
            if len(lat) >= m:
                got.set()

        c.on_batch = on_batch_lat
        start_seq = n // len(rids) + 10
        child = subprocess.run([sys.executable, __file__, "--publish-child", str(b.port), str(a.rate), str(m),
                                str(start_seq), str(a.readers)], check=True)  # fmt: skip
        del child
        got.wait(120)
        c.stop()
        lat.sort()
        p = {q: lat[min(len(lat) - 1, int(q / 100 * len(lat)))] * 1000 if lat else -1.0 for q in (50, 99)}
        out["latency_events"] = len(lat)
        out["latency_rate_per_s"] = a.rate
        out["latency_p50_ms"] = round(p[50], 1)
        out["latency_p99_ms"] = round(p[99], 1)
        print(f"(c) tap-to-row latency at {a.rate:,.0f}/s over {len(lat)} events: "
              f"p50 {p[50]:.0f} ms, p99 {p[99]:.0f} ms")  # fmt: skip
        st.engine.dispose()
    finally:
        b.stop()
        pg.drop_database(url)

    # (d) the writer alone
    wn = a.writer_events
    for method in ("copy", "values"):
        u = pg.create_database("cbcc_bench")
        try:
            f = tmp / f"w-{method}"
            f.mkdir()
            r, prof = writer_only(u, rids, wn, f, method, a.batch_max, a.profile and method == "copy")
        finally:
            pg.drop_database(u)
        out[f"writer_pg_{method}_per_s"] = round(r)
        print(f"(d) writer alone, PostgreSQL {method}: {r:,.0f} events/s")
        if prof:
            print(prof)
    f = tmp / "w-sqlite"
    f.mkdir()
    r, prof = writer_only(f"sqlite:///{f / 'g.db'}", rids, wn, f, "copy", a.batch_max, a.profile)
    out["writer_sqlite_per_s"] = round(r)
    print(f"(d) writer alone, SQLite (WAL, synchronous=FULL): {r:,.0f} events/s")
    if prof:
        print(prof)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
