"""Benchmark: the gateway's fleet handling of 2,000 readers' heartbeats, in its own process.

    uv run python tests/bench/heartbeats.py [--readers 2000] [--interval 30] [--window 60]
                                            [--connect-rate 200] [--db sqlite|postgresql|URL]

A real Mosquitto (tests/support/broker.py's configuration: passwords, the contract's ACL) on loopback;
the readers are registered in the gateway database (so time replies are computed with their keys)
and in the broker's password file. The GATEWAY process (this script with ``--gateway``) runs the
fleet handling as the service does: an MQTT consumer feeding ``Fleet.on_status``/``on_health``
(which answer each heartbeat at once with a MAC'd time reply) and ``Fleet.flush()`` every second
(one transaction). The SIMULATOR (this process) is one asyncio loop with a raw-socket MQTT 3.1.1
client per reader (packets from firmware/lib/mqtt.py): staggered connects, a Last Will, the
retained status, then a heartbeat with a fresh nonce every ``--interval`` s at a random phase;
each time reply is checked as the reader checks it (MAC, current nonce, once, within 10 s).

The gateway's CPU time (user + system, /proc via psutil) is measured over ``--window`` s of
steady state, after every reader is connected and one full interval has passed. The final line
is one JSON object: CPU as % of one core (goal ≤ 10 %), heartbeats/s handled, time replies sent
and accepted, reply latency, rows written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
for extra in (ROOT, ROOT / "tests", ROOT / "firmware" / "lib"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import cbor2  # noqa: E402
import mqtt  # noqa: E402  # firmware/lib/mqtt.py: its packet builders run on CPython too

GW_USER, GW_PASSWORD = "gateway", "pw-gateway"
CONSUMERS = {"real": "gateway.mqtt.consumer.Consumer (with gateway.ingest.IngestWriter for events)",
             "paho": "minimal paho-mqtt loop feeding Fleet (gateway/mqtt/consumer.py not used)"}  # fmt: skip


def rid_of(i: int) -> str:
    return f"bench-{i:05d}"


def key_of(rid: str) -> bytes:
    return hashlib.sha256(b"bench mac key " + rid.encode()).digest()


# ---- the gateway process -------------------------------------------------------------------------


def run_gateway(args: argparse.Namespace) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from gateway import db
    from gateway.fleet import Fleet
    from gateway.registry import KeyCache
    from gateway.secretbox import SecretBox

    engine = db.make_engine(args.db)
    keys = KeyCache(engine, SecretBox(bytes.fromhex(args.master)))
    keys.load_all()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.consumer == "real":
        from gateway.fleet import apply_event_effects
        from gateway.ingest import IngestWriter
        from gateway.mqtt.consumer import Consumer
        from gateway.settings import MqttSettings

        settings = MqttSettings(host="127.0.0.1", port=args.port, username=GW_USER, password=GW_PASSWORD,  # type: ignore[arg-type]
                                client_id="gw-bench", embedded=False)  # fmt: skip
        holder: list[Any] = []
        fleet = Fleet(engine, keys, lambda t, p, q, r: holder[0].publish(t, p, q, r))
        writer = IngestWriter(engine, keys, apply_event_effects)
        consumer = Consumer(settings, writer, fleet.on_status, fleet.on_health)
        holder.append(consumer)
        consumer.start()
        consumer.wait_connected(10)
        _flush_loop(fleet, stop)
        consumer.stop()
        engine.dispose()
        return

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-bench", protocol=paho.MQTTv5)
    client.username_pw_set(GW_USER, GW_PASSWORD)

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        client.publish(topic, payload, qos=qos, retain=retain)

    fleet = Fleet(engine, keys, publish)
    ready = threading.Event()

    def on_connect(c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        c.subscribe([("cbcc/v1/r/+/status", 1), ("cbcc/v1/r/+/health", 0)])
        ready.set()

    def on_message(_c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
        parts = m.topic.split("/")
        if len(parts) != 5:
            return
        if parts[4] == "health":
            fleet.on_health(parts[3], m.payload, time.time())
        elif parts[4] == "status":
            fleet.on_status(parts[3], m.payload, time.time())

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", args.port, keepalive=60)
    client.loop_start()
    ready.wait(10)
    _flush_loop(fleet, stop)
    client.loop_stop()
    client.disconnect()
    engine.dispose()


def _flush_loop(fleet: Any, stop: threading.Event) -> None:
    """Fleet.flush() every second, as the service does; one JSON line of counters each time."""
    rows = flushes = 0
    flush_s = 0.0
    while not stop.wait(1.0):
        t = time.perf_counter()
        rows += fleet.flush()
        flush_s += time.perf_counter() - t
        flushes += 1
        print(json.dumps({"t": time.time(), "rows": rows, "flushes": flushes, "flush_s": round(flush_s, 3),
                          **fleet.stats}), flush=True)  # fmt: skip


# ---- set-up: broker, database -------------------------------------------------------------------


def start_broker(folder: Path, rids: list[str]) -> tuple[Any, subprocess.Popen[bytes]]:
    """tests/support/broker.py's Mosquitto, with every reader's password hashed in one mosquitto_passwd -U."""
    from support.broker import Broker

    folder.mkdir(parents=True, exist_ok=True)
    b = Broker(folder, {GW_USER: GW_PASSWORD})
    b.start()  # writes the CA, ACL and configuration
    b.stop()
    pw = folder / "passwd"
    pw.write_text(f"{GW_USER}:{GW_PASSWORD}\n" + "".join(f"{r}:pw-{r}\n" for r in rids))
    subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True)
    conf = folder / "mosquitto.conf"
    conf.write_text(conf.read_text() + "max_queued_messages 10000\n")
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    import socket

    while True:
        try:
            with socket.create_connection(("127.0.0.1", b.port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mosquitto did not start: " + b.log()) from None
            time.sleep(0.05)
    return b, proc


def prepare_db(url: str, rids: list[str]) -> bytes:
    from sqlmodel import Session

    from gateway import db, registry
    from gateway.secretbox import SecretBox

    db.migrate(url)
    master = os.urandom(32)
    box = SecretBox(master)
    engine = db.make_engine(url)
    with Session(engine) as s:
        for r in rids:
            registry.register(s, box, r, site="bench", role="door", mac_key=key_of(r))
        s.commit()
    engine.dispose()
    return master


# ---- the simulated readers ------------------------------------------------------------------------


class Sim:
    def __init__(self, port: int, interval: float) -> None:
        self.port = port
        self.interval = interval
        self.connected = 0
        self.failed = 0
        self.heartbeats = 0
        self.replies_ok = 0
        self.replies_bad = 0
        self.latency_ms: list[float] = []
        self.counting = False

    async def reader(self, i: int, start_at: float, phase: float) -> None:
        rid = rid_of(i)
        key = key_of(rid)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        try:
            r, w = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.failed += 1
            return
        will = (f"cbcc/v1/r/{rid}/status", cbor2.dumps({1: False}), True, 1)
        w.write(mqtt.connect_packet(rid, rid, "pw-" + rid, 90, will, False))
        first, body = await self._read(r)
        if first != mqtt.CONNACK or body[1] != 0:
            self.failed += 1
            w.close()
            return
        topic = f"cbcc/v1/r/{rid}/time"
        w.write(mqtt.packet(mqtt.SUBSCRIBE, struct.pack("!H", 1) + mqtt._str(topic) + b"\x00"))
        status = cbor2.dumps({1: True, 2: "bench 0.1", 3: 1, 4: 1, 5: 1, 6: 1, 7: "door"})
        w.write(mqtt.publish_packet(f"cbcc/v1/r/{rid}/status", status, 1, True, 2))
        self.connected += 1
        state: dict[str, Any] = {"nonce": None, "t": 0.0}
        asyncio.get_running_loop().create_task(self._receive(r, rid, key, state))
        boot = time.monotonic()
        await asyncio.sleep(phase)
        while True:
            nonce = os.urandom(8)
            state["nonce"], state["t"] = nonce, time.monotonic()
            h = {1: int(time.monotonic() - boot), 2: 100000, 4: 0, 5: 0, 6: 0, 7: 2, 8: nonce,
                 9: int(time.time())}  # fmt: skip
            w.write(mqtt.publish_packet(f"cbcc/v1/r/{rid}/health", cbor2.dumps(h), 0, False, 0))
            if self.counting:
                self.heartbeats += 1
            await asyncio.sleep(self.interval)

    async def _read(self, r: asyncio.StreamReader) -> tuple[int, bytes]:
        first = (await r.readexactly(1))[0]
        n = shift = 0
        while True:
            b = (await r.readexactly(1))[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return first, await r.readexactly(n) if n else b""

    async def _receive(self, r: asyncio.StreamReader, rid: str, key: bytes, state: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                first, body = await self._read(r)
                if first & 0xF0 != mqtt.PUBLISH:
                    continue  # SUBACK, PUBACK
                _topic, payload, _q, _ret, _pid = mqtt.parse_publish(first, body)
                nonce, ms, tag = cbor2.loads(payload)
                want = hmac.new(key, b"cbcc-time1" + rid.encode() + nonce + ms.to_bytes(8, "big"),
                                hashlib.sha256).digest()  # fmt: skip
                rtt = time.monotonic() - state["t"]
                good = hmac.compare_digest(tag, want) and nonce == state["nonce"] and rtt <= 10
                state["nonce"] = None  # once
                if not self.counting:
                    continue
                if good:
                    self.replies_ok += 1
                    self.latency_ms.append(rtt * 1000)
                else:
                    self.replies_bad += 1


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(p * len(s)))], 2)


Stat = dict[str, Any]
Stats = list[Stat]


async def drive(args: argparse.Namespace, port: int, gw: subprocess.Popen[str], lines: Stats) -> Stat:
    import psutil

    sim = Sim(port, args.interval)
    rnd = random.Random(1)
    t0 = time.monotonic() + 0.5
    tasks = [asyncio.create_task(sim.reader(i, t0 + i / args.connect_rate, rnd.uniform(0, args.interval)))
             for i in range(args.readers)]  # fmt: skip
    connect_s = args.readers / args.connect_rate
    await asyncio.sleep(connect_s + 1)
    while sim.connected + sim.failed < args.readers and time.monotonic() < t0 + connect_s + 30:
        await asyncio.sleep(0.5)
    connected_after = round(time.monotonic() - t0, 1)
    await asyncio.sleep(args.interval)  # one full interval: every reader has sent a heartbeat
    proc = psutil.Process(gw.pid)
    start_stats = dict(lines[-1])
    c0, w0 = proc.cpu_times(), time.monotonic()
    sim.counting = True
    await asyncio.sleep(args.window)
    c1, w1 = proc.cpu_times(), time.monotonic()
    sim.counting = False
    end_stats = dict(lines[-1])
    await asyncio.sleep(1.5)  # replies still in flight are counted by the simulator only
    for t in tasks:
        t.cancel()
    elapsed = w1 - w0
    cpu = (c1.user - c0.user) + (c1.system - c0.system)

    def d(k: str) -> int:
        return int(end_stats.get(k, 0)) - int(start_stats.get(k, 0))

    span = float(end_stats["t"]) - float(start_stats["t"])  # between the gateway's own reports

    return {
        "benchmark": "heartbeats",
        "readers": args.readers,
        "readers_connected": sim.connected,
        "connect_failures": sim.failed,
        "connected_after_s": connected_after,
        "interval_s": args.interval,
        "window_s": round(elapsed, 1),
        "gateway_cpu_s": round(cpu, 3),
        "gateway_cpu_percent_of_one_core": round(100 * cpu / elapsed, 2),
        "goal_percent": 10,
        "heartbeats_sent_per_s": round(sim.heartbeats / elapsed, 1),
        "heartbeats_handled_per_s": round(d("health") / span, 1),
        "time_replies_sent": d("time_replies"),
        "time_replies_sent_per_s": round(d("time_replies") / span, 1),
        "time_replies_accepted": sim.replies_ok,
        "time_replies_refused": sim.replies_bad,
        "reply_latency_ms_p50": _pct(sim.latency_ms, 0.5),
        "reply_latency_ms_p99": _pct(sim.latency_ms, 0.99),
        "rows_written": d("rows"),
        "flushes": d("flushes"),
        "flush_s_total": round(float(end_stats.get("flush_s", 0)) - float(start_stats.get("flush_s", 0)), 3),
        "garbage": d("garbage"),
        "unknown": d("unknown"),
        "gateway_errors": int(end_stats.get("errors", 0)),
        "consumer": CONSUMERS[args.consumer],
        "db": "sqlite (WAL, synchronous=FULL)" if args.db.startswith("sqlite") else "postgresql",
        "broker": "mosquitto (plain MQTT on loopback)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readers", type=int, default=2000)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--connect-rate", type=float, default=200.0, help="new connections per second")
    ap.add_argument("--db", default="sqlite", help="sqlite, postgresql (throwaway) or a URL")
    ap.add_argument("--consumer", choices=sorted(CONSUMERS), default="real",
                    help="the gateway's own MQTT consumer, or a minimal paho loop")  # fmt: skip
    ap.add_argument("--gateway", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--master", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.consumer == "real" and importlib.util.find_spec("gateway.mqtt.consumer") is None:
        args.consumer = "paho"  # the consumer is not there (yet): the JSON says which one ran
    if args.gateway:
        run_gateway(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="cbcc-hb-"))
    rids = [rid_of(i) for i in range(args.readers)]
    pg_made = None
    if args.db == "sqlite":
        args.db = f"sqlite:///{tmp / 'gateway.db'}"
    elif args.db == "postgresql":  # a throwaway database on the local server (tests/support/pg.py)
        from support import pg

        args.db = pg_made = pg.create_database("cbcc_bench")
    master = prepare_db(args.db, rids)
    broker, mosq = start_broker(tmp / "broker", rids)
    cmd = [sys.executable, str(HERE), "--gateway", "--port", str(broker.port), "--db", args.db,
           "--consumer", args.consumer]  # fmt: skip
    gw = subprocess.Popen([*cmd, "--master", master.hex()], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines: list[dict[str, Any]] = [{}]

    def collect() -> None:
        assert gw.stdout is not None
        for line in gw.stdout:
            if line.startswith("{"):
                lines.append(json.loads(line))

    threading.Thread(target=collect, daemon=True).start()
    try:
        while len(lines) < 2:
            if gw.poll() is not None:
                raise RuntimeError("the gateway process exited")
            time.sleep(0.1)
        result = asyncio.run(drive(args, broker.port, gw, lines))
    finally:
        gw.send_signal(signal.SIGTERM)
        try:
            gw.wait(10)
        except subprocess.TimeoutExpired:
            gw.kill()
        mosq.terminate()
        mosq.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_made is not None:
            pg.drop_database(pg_made)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
