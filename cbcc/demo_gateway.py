"""The product preview of ``cbcc demo``: a gateway as a small office runs it, with readers.

Given the keys, lists and credentials the trust-core part of the demo made, this starts the
gateway exactly as ``cbcc gateway init`` + ``cbcc gateway run`` would (embedded broker with TLS,
SQLite, REST API over HTTP on a free port), registers readers through the API, and runs each
reader as the **real firmware under the MicroPython unix port** (RF simulator for the MFRC522
and the cards, a file for its journal flash). The readers tap on a script, decide offline and
deliver their sealed events; the result is read back through the HTTP API and checked.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.table import Table

from cbcc import demo_tour as tour
from cbcc.demo_link import Link
from gateway import bootstrap
from gateway.service import Gateway
from gateway.settings import load_settings
from messages import _, lang, words
from simulators import firmware_runner
from trustcore import keys
from trustcore import reader_config as host_config

_GIVEN: set[int] = set()


def _free_port() -> int:
    """A free port not handed out before in this process: each call closes its probe socket, so
    two calls could get the same port, and the second server then finds it taken (seen once: the
    gateway's API could not bind its port and the demo failed)."""
    port = 0
    for _attempt in range(1000):  # the kernel has tens of thousands: a new one comes at once
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _GIVEN:
            break
    _GIVEN.add(port)
    return port


@dataclass
class Card:
    credential: str  # file name in the trust-core folder
    uid: str  # hex
    who: str


@dataclass
class VirtualReader:
    rid: str
    name: str
    role: str
    steps: list[dict[str, Any]]
    expect: list[tuple[str, str]]  # (decision, reason) per tap, in order
    out: list[dict[str, Any]] = field(default_factory=list)


CARDS = {
    "huong": Card("huong.cbor", "04a1b2c3d4e5f6", "Nguyễn Thị Hương"),
    "duc": Card("duc.cbor", "04112233445566", "Trần Văn Đức"),
    "tuan": Card("tuan.cbor", "04deadbeef0102", "Lê Minh Tuấn"),
    "trang": Card("trang.cbor", "04998877665544", "Phạm Thu Trang"),
}

# The building's doors, created at the gateway (API /api/v1/doors) and in each reader's signed
# configuration under the same id and name: events and their CSV name the door, not its index "0".
DOORS = {
    "hn-snv-cong-chinh": ("cong-chinh", "Cổng chính"),
    "hn-snv-cham-cong": ("sanh-tang-1", "Sảnh tầng 1"),
    "hn-snv-cua-sau": ("cua-sau", "Cửa sau"),
}

CONFIG: dict[str, Any] = {
    "site": "Sở Nội vụ Hà Nội",
    "timezone": "UTC+07:00",
    "group": [{"id": "so-noi-vu-hn", "agency": ["000.00.31"]}, {"id": "bo-noi-vu", "agency": ["000.00.00"]}],
    "schedule": [{"id": "ca-ngay", "weekly": ["Mon-Sun 00:00-24:00"]}],
    "door": [{"id": "cong-chinh", "name": "Cổng chính", "requires_anti_clone": True, "retap_seconds": 3,
              "held_open_seconds": 2}],
    "rule": [{"groups": ["so-noi-vu-hn", "bo-noi-vu"], "doors": ["cong-chinh"], "schedule": "ca-ngay"}],
}


def reader_config(rid: str) -> dict[str, Any]:
    """The signed configuration of one of the demo's readers: its own door, by id and name."""
    door_id, name = DOORS.get(rid, ("cong-chinh", "Cổng chính"))
    door = {**CONFIG["door"][0], "id": door_id, "name": name}
    rule = {**CONFIG["rule"][0], "doors": [door_id]}
    return {**CONFIG, "door": [door], "rule": [rule], "reader_id": rid}


NATIONAL_RECORDS, NATIONAL_HISTORY = 192, 60  # the simulator's smallest universe (2 per issuer)
OFFLINE = "hn-snv-cua-sau"
LINK_UP_AFTER_S = 6.0  # the offline reader's link comes back this long after the readers start


def _tap(name: str, at: int) -> list[dict[str, Any]]:
    """A card held on the reader for a second: long enough on a loaded machine, where the firmware's
    loop under the unix port can be busy for a few hundred ms (TLS, flash writes)."""
    return [{"at_ms": at, "present": name}, {"at_ms": at + 1000, "remove": name}]


def _clock(day: date, hms: str, at: int) -> dict[str, Any]:
    """Set the reader's wall clock to ``hms`` on ``day`` (the tap script's "clock" step)."""
    return {"at_ms": at, "clock": tour.at(day, hms)}


def readers(day: date) -> list[VirtualReader]:
    """The three readers and their script for the story ``day``: each reader's clock is set to that
    day's hours (the gateway's time sync keeps it there), so live taps are on time, late, early."""
    code = {"duc": "CB000000042", "huong": "CB010012345", "minh": "CB010033120"}
    morning = [(who, tour.LIVE_IN[code[who]]) for who in ("duc", "huong", "minh")]
    evening = [(who, tour.LIVE_OUT[code[who]]) for who in ("huong", "duc", "minh")]
    live: list[dict[str, Any]] = []
    for k, (who, hms) in enumerate(morning + evening):
        start = 300 + k * 1200 + (1800 if k >= 3 else 0)  # the afternoon a little later: no retap
        live += [_clock(day, hms, start - 100), *_tap(who, start)]
    return [
        VirtualReader(
            "hn-snv-cong-chinh",
            "Cổng chính",
            "door",
            [
                _clock(day, "07:24:50", 100),
                *_tap("huong", 300),
                {"at_ms": 1400, "door": "open"},  # Hương walks in … and the door stays open (held open)
                *_tap("tuan", 1600),
                *_tap("trang", 2900),
                {"at_ms": 5000, "door": "close"},
                _clock(day, "19:42:10", 7900),
                {"at_ms": 8000, "door": "open"},  # opened with no card in the evening: forced open
                {"at_ms": 8400, "door": "close"},
            ],
            [("grant", "granted"), ("deny", "revoked"), ("deny", "expired")],
        ),
        VirtualReader(  # morning arrivals, then (its clock moved on) the afternoon's leaving
            "hn-snv-cham-cong", "Máy chấm công tầng 1", "attendance", live, [("punch", "ok")] * 6
        ),
        VirtualReader(  # its network is down when the day starts: it decides offline, catches up later
            OFFLINE,
            "Cửa sau",
            "door",
            [_clock(day, "07:31:20", 100), *_tap("duc", 300), *_tap("huong", 1500)],
            [("grant", "granted"), ("grant", "granted")],
        ),
    ]


def reader_files(
    work: Path,
    vr: VirtualReader,
    secret: dict[str, Any],
    broker_port: int,
    issuer: dict[str, str],
    *,
    ca_pem: bytes,
    config_key: Path,
    tail: list[dict[str, Any]] | None = None,
    images: dict[str, Path] | None = None,
) -> Path:
    """A virtual reader's files in ``work/<rid>``: reader.json and its tap script (``vr.steps``, then
    ``tail``: by default wait until the journal is delivered and exit). Cards and lists come from
    the trust-core demo's folder ``work``."""
    d = work / vr.rid
    (d / "state").mkdir(parents=True, exist_ok=True)
    (d / "ca.der").write_bytes(
        x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)
    )
    cfg = {
        "reader_id": vr.rid,
        "password": secret["mqtt_password"],
        "mac_key": secret["mac_key_hex"],
        "role": vr.role,
        "broker": {
            "host": "127.0.0.1",
            "port": broker_port,
            "ca_der": str(d / "ca.der"),
            "server_hostname": "localhost",
        },
        "root_key": str(work / "root.cose_key"),
        "config_key": str(config_key),
        "state_dir": str(d / "state"),
        "journal_image": str(d / "journal.img"),
        "journal_blocks": 16,
        "issuer_keys": issuer,
        "cards": {
            **{n: {"credential": str(work / c.credential), "uid": c.uid} for n, c in CARDS.items()},
            **{n: {"image": str(p)} for n, p in (images or {}).items()},  # issued through the encoder
        },
        "trust": str(work / "trust.cbor"),
        "crl": str(work / "crl.cbor"),
        "config": str(d / "reader.cfg"),
        "unix_ms": int(time.time() * 1000),
        "keepalive": 10,
        "health_every_s": 2,
        "backoff_min_s": 0.2,
        "backoff_max_s": 1,
    }
    path = d / "reader.json"
    path.write_text(json.dumps(cfg))
    if tail is None:
        tail = [{"at_ms": 9000, "wait_delivered": 20000}, {"at_ms": 0, "exit": True}]
    (d / "taps.json").write_text(json.dumps([*vr.steps, *tail]))
    return path


def reader_command(cfg: Path) -> list[str]:
    """The virtual reader (real firmware, MicroPython unix port) for ``cfg`` and its tap script;
    run with ``cwd=firmware_runner.ROOT`` and ``env=firmware_runner.micropython_env()``."""
    return [
        firmware_runner.micropython_binary(),
        "-X",
        "heapsize=2M",
        "firmware/tools/virtual_reader.py",
        str(cfg),
        "--taps",
        str(cfg.parent / "taps.json"),
    ]


_RUNNING: set[subprocess.Popen[str]] = set()  # virtual readers alive, stopped if the demo is
_RUNNING_LOCK = threading.Lock()  # interrupted (Ctrl-C, SIGTERM) so it never waits for their script


def run_reader(cfg: Path) -> list[dict[str, Any]]:
    proc = subprocess.Popen(  # noqa: S603 — argv list: the venv's micropython and files this demo wrote; no shell
        reader_command(cfg),
        cwd=firmware_runner.ROOT,
        env=firmware_runner.micropython_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    if proc.returncode != 0:
        raise RuntimeError(
            _("virtual reader {name} failed: {detail}", name=cfg.parent.name, detail=stderr[-2000:])
        )
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def stop_readers() -> None:
    """Stop every virtual reader still running (the demo was interrupted)."""
    with _RUNNING_LOCK:
        for proc in _RUNNING:
            proc.kill()


def _serve(app: Any, port: int, name: str = "cbcc-demo-http") -> tuple[Any, threading.Thread]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, name=name, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, t


def run(work: Path, console: Console, *, serve: bool = False,
        issuers: dict[str, Any] | None = None, check: bool = False) -> bool:  # fmt: skip
    """Run the preview in ``work`` (the trust-core demo's folder); True when everything matched."""
    title = _("System preview: the gateway and virtual readers running the real firmware")
    console.rule(f"[bold]{title}[/bold]")
    data = work / "gateway"
    pass_file = work / "gateway.pass"
    keys.write_new_file(pass_file, secrets.token_urlsafe(24).encode(), private=True)
    broker_tls, http_port = _free_port(), _free_port()
    # The national database: the simulator (simulators/national.py) over HTTP with a bearer token,
    # followed by the gateway's own sync loop exactly as in production.
    from simulators.national import NationalSim, create_app

    sim = NationalSim(seed=7, records=NATIONAL_RECORDS, history=NATIONAL_HISTORY)
    sim.enrol(tour.national_people())  # the agency's people are national records like everyone's
    national_token = secrets.token_urlsafe(24)
    keys.write_new_file(work / "national.token", national_token.encode(), private=True)
    national_port = _free_port()
    national_server, national_thread = _serve(
        create_app(sim, national_token), national_port, "cbcc-demo-national"
    )
    settings = load_settings(
        None,
        data_dir=data,
        database={"url": f"sqlite:///{data / 'gateway.db'}"},
        signing_passphrase_file=pass_file,
        mqtt={
            "embedded": True,
            "port": _free_port(),
            "embedded_tls_host": "127.0.0.1",
            "embedded_tls_port": broker_tls,
        },
        http={"host": "127.0.0.1", "port": http_port},
        national={"url": f"http://127.0.0.1:{national_port}", "token_file": work / "national.token",
                  "interval_s": 1.0},
    )  # fmt: skip
    with console.status(_("cbcc gateway init…")):
        init = bootstrap.init(settings, pass_file, server_names=["localhost"])
    token = init.admin_token
    assert token is not None  # noqa: S101 — type narrowing for mypy, not input validation
    console.print(
        "  • "
        + _(
            "cbcc gateway init: master key, configuration signing key, broker CA, SQLite database, "
            "admin API token"
        )
    )
    logging.getLogger("cbcc").setLevel(logging.ERROR)  # the console shows the story, not the logs
    # amqtt cancels in-flight publish tasks when the demo is stopped mid-day and asyncio logs each as
    # "Task exception was never retrieved": noise for the newcomer, not a fault.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    gw = Gateway(settings)
    gw.start()
    server, thread = _serve(gw.app, http_port)
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    ok = True
    link: Link | None = None
    try:
        console.print(
            "  • "
            + _("gateway running: API http://127.0.0.1:{port}/docs, MQTT/TLS broker on port {tls}").format(
                port=http_port, tls=broker_tls
            )
        )
        from provisioning.card_keys import CardMasterKeys

        master = CardMasterKeys(os.urandom(16), os.urandom(16), os.urandom(16), os.urandom(16))
        issuer = {"amk": master.amk.hex(), "read": master.read.hex(), "uid": master.uid.hex(),
                  "picc": master.picc.hex()}  # fmt: skip
        with console.status(_("following the national database's change feed…")):
            synced = tour.wait_national_sync(gw.engine, sim.head, 60)
        console.print("  • " + _(
            "national database (simulator, {url}): {staff} staff records and {cards} cards synced, "
            "{changes} changes").format(url=f"http://127.0.0.1:{national_port}/v1/changes",
                                        changes=sim.head, **synced))  # fmt: skip
        if synced["cursor"] != sim.head:
            ok = False
            stopped = _("the national sync stopped at change {n}").format(n=synced["cursor"])
            console.print(f"[red]{stopped}[/red]")
        absent = tour.agency_synced(gw.engine)
        console.print("  • " + _(
            "the agency's {n} people (Sở Nội vụ Hà Nội and one ministry official) came with the sync: {names}"
        ).format(n=len(tour.AGENCY) - len(absent), names=", ".join(st.name for st in tour.AGENCY)))
        if absent:
            ok = False
            console.print("[red]" + _("not synced from the national database: {codes}").format(
                codes=", ".join(absent)) + "[/red]")  # fmt: skip
        today = datetime.now(tour.VN).date()
        month = today.strftime("%Y-%m")
        day = tour.story_day(today)
        images: dict[str, Path] = {}
        if issuers is not None:
            with console.status(_("personalising cards on the virtual encoder…")):
                # issued the day before the story day, so every card is valid on the day the readers play
                before = tour.at(day, "09:00:00") // 1000 - 86400
                issued = tour.issue_cards(gw.engine, work, issuers, master, before)
            for c in issued:
                images[c.name] = c.image
                console.print("  • " + _(
                    "card serial {serial} issued to {who} on a blank DESFire EV3 (UID {uid}) through the "
                    "virtual encoder: personalised, read back as a reader reads it, recorded"
                ).format(serial=c.serial, who=tour.NAMES[tour.ISSUED[c.name][0]], uid=c.uid.hex()))
        logins = tour.console_accounts(gw.engine)
        imported, expect = tour.attendance(gw.engine, today, day)
        console.print("  • " + _(
            "shift {shift} ({sessions}, Mon–Fri) assigned to the agency; {n} punches from the 1st of last "
            "month to the day before {day} imported from the old terminal's file",
            shift=tour.SHIFT, sessions=tour.SHIFT_SESSIONS, n=imported["imported"], day=day))  # fmt: skip
        signing_key = gw.downlink._key if gw.downlink is not None else None
        assert signing_key is not None  # noqa: S101 — type narrowing for mypy, not input validation
        vrs = readers(day)
        link = Link(broker_tls, _free_port())
        cfgs = []
        for vr in vrs:
            door_id, door_name = DOORS[vr.rid]
            door = {"id": door_id, "name": door_name, "site": "hn-snv"}
            api.post("/api/v1/doors", json=door).raise_for_status()
            r = api.post("/api/v1/readers", json={"id": vr.rid, "name": vr.name, "site": "hn-snv",
                                                  "role": vr.role, "door_id": door_id})  # fmt: skip
            r.raise_for_status()
            secret = r.json()
            cfg = reader_files(
                work,
                vr,
                secret,
                link.addr[1] if vr.rid == OFFLINE else broker_tls,
                issuer,
                ca_pem=(data / "broker" / "ca.crt").read_bytes(),
                config_key=data / "config.cose_key",
                images=images,
            )
            (cfg.parent / "reader.cfg").write_bytes(
                host_config.build(reader_config(vr.rid), signing_key, 1, int(time.time()))
            )
            cfgs.append(cfg)
            console.print(
                "  • "
                + _("reader {rid} ({name}, role {role}) at the door {door} registered through the API")
                .format(rid=vr.rid, name=vr.name, role=vr.role, door=f"{door_name} ({door_id})")
            )
        console.print("  • " + _(
            "the story day is {day}: each reader's clock is set to that day's hours, and the gateway's "
            "time sync keeps it there", day=day))  # fmt: skip
        t0, t0_wall = time.monotonic(), time.time()
        plug = threading.Timer(LINK_UP_AFTER_S, link.up)
        plug.start()
        console.print("  • " + _("reader {rid}: network down; it will come back after {s} s").format(
            rid=OFFLINE, s=f"{LINK_UP_AFTER_S:.0f}"))  # fmt: skip
        try:
            with (
                console.status(_("the virtual readers run their day of taps…")),
                ThreadPoolExecutor(len(vrs)) as pool,
            ):
                try:
                    outs = list(pool.map(run_reader, cfgs))
                except BaseException:
                    stop_readers()
                    raise
        finally:
            plug.cancel()
        console.print(
            "  • "
            + _("{n} virtual readers (MicroPython) tapped cards and delivered their events in {s} s").format(
                n=len(vrs), s=f"{time.monotonic() - t0:.1f}"
            )
        )
        for vr, out in zip(vrs, outs, strict=True):
            vr.out = out
            got = [(o["decision"], o["reason"]) for o in out if "decision" in o]
            if got != vr.expect:
                ok = False
                wrong = _("{rid}: decisions {got}, expected {expect}").format(
                    rid=vr.rid, got=got, expect=vr.expect
                )
                console.print(f"[red]{wrong}[/red]")

        gw.fleet.flush()
        events = api.get("/api/v1/events", params={"limit": 100, "order": "asc"}).json()["items"]
        taps = sorted((e for e in events if e["kind"] == "tap"), key=lambda e: str(e["occurred_at"]))
        table = Table(title=_("Events stored at the gateway (read through the API /api/v1/events)"))
        for col in (_("Reader"), _("No."), _("Vietnam time"), _("Decision"), _("Reason"), _("Staff"),
                    _("Door"), _("Attendance punch")):  # fmt: skip
            table.add_column(col)
        vn = timezone(timedelta(hours=7))
        for e in taps:
            at = datetime.fromisoformat(str(e["occurred_at"]).replace("Z", "+00:00")).astimezone(vn)
            table.add_row(
                e["reader_id"],
                str(e["seq"]),
                at.strftime("%H:%M:%S %d/%m"),
                words.decision(e["decision"]),
                words.reason(e["reason"], e["decision"]),
                f"{tour.NAMES[e['staff_code']]} ({e['staff_code']})"
                if e["staff_code"] in tour.NAMES
                else e["staff_code"] or "",
                DOORS[e["reader_id"]][1] if e["reader_id"] in DOORS else e.get("door") or "",
                "✓" if e.get("punch") or e["decision"] == "punch" else "",
            )
        console.print(table)
        exported = api.get("/api/v1/events/export.csv").text  # what an operator opens in Excel
        unnamed = [name for _id, name in DOORS.values() if f"{name} ({_id})" not in exported]
        if unnamed:
            ok = False
            console.print("[red]" + _("the events export does not name the doors {doors}").format(
                doors=", ".join(unnamed)) + "[/red]")  # fmt: skip
        late = sorted((e for e in taps if e["reader_id"] == OFFLINE), key=lambda e: int(e["seq"]))
        tapped = [st["at_ms"] / 1000 for vr in vrs if vr.rid == OFFLINE for st in vr.steps if "present" in st]
        # The reader's clock lives on the story day, so the delay is measured on the host's clock: from
        # the moment its script tapped (at the earliest) to the gateway's receipt.
        lags = [
            datetime.fromisoformat(str(e["received_at"]).replace("Z", "+00:00")).timestamp() - (t0_wall + at)
            for e, at in zip(late, tapped, strict=False) if e.get("received_at")
        ]  # fmt: skip
        if len(lags) == len(late) == 2 and min(lags) >= LINK_UP_AFTER_S - 2:
            console.print("  • " + _(
                "reader {rid} decided {n} taps offline and delivered them when its network came back "
                "({s} s later)").format(rid=OFFLINE, n=len(late), s=f"{min(lags):.0f}–{max(lags):.0f}"))
        else:
            ok = False
            console.print("[red]" + _("reader {rid}: offline taps not caught up as expected ({lags})").format(
                rid=OFFLINE, lags=lags) + "[/red]")
        expected_taps = sum(len(vr.expect) for vr in vrs)
        if len(taps) != expected_taps:
            ok = False
            wrong = _("{n} taps at the gateway, expected {expected}").format(
                n=len(taps), expected=expected_taps
            )
            console.print(f"[red]{wrong}[/red]")
        pairs = [(e["reader_id"], e["seq"]) for e in events]
        if len(pairs) != len(set(pairs)):
            ok = False
            console.print("[red]" + _("an event was stored twice") + "[/red]")
        alarms = [
            a
            for flag in ("true", "false")
            for a in api.get("/api/v1/alarms", params={"active": flag}).json()["items"]
        ]
        kinds = sorted({a["kind"] for a in alarms})
        shown = ", ".join(words.alarm(k) for k in kinds) or _("none")
        console.print("  • " + _("alarms: {alarms}").format(alarms=shown))
        if "forced_open" not in kinds:
            ok = False
            console.print("[red]" + _("the door-forced-open alarm is missing") + "[/red]")
        if "held_open" not in kinds:
            ok = False
            console.print("[red]" + _("the door-held-open alarm is missing") + "[/red]")
        rd = api.get("/api/v1/readers").json()["items"]
        for r in rd:
            line = _("{rid}: firmware {fw}, configuration seq {seq}, {clock}").format(
                rid=r["id"],
                fw=r.get("firmware"),
                seq=r.get("config_seq"),
                clock=words.time_quality(r.get("time_quality")),
            )
            console.print(f"  • {line}")
        quarantined = api.get("/api/v1/quarantine").json()["items"]
        if quarantined:
            ok = False
            console.print("[red]" + _("{n} messages quarantined").format(n=len(quarantined)) + "[/red]")
        last = tour.previous_month(today)
        with console.status(_("computing and rendering the timesheets…")):
            files = tour.timesheet(gw.engine, work, last, lang())
            files += tour.timesheet(gw.engine, work, month, lang(), ("xlsx",))
            sheets = [tour.month_days(gw.engine, m) for m in (last, month)]
        for problem in tour.check_timesheet(sheets, expect, day):
            ok = False
            console.print(f"[red]{problem}[/red]")
        console.print("  • " + _(
            "timesheets computed: {last} (complete: late arrivals, early leavers, absences) and {month} "
            "(so far)").format(last=last, month=month))  # fmt: skip
        live = {code: (tour.LIVE_IN[code][:5], tour.LIVE_OUT[code][:5]) for code in tour.LIVE_FLAGS}
        console.print("  • " + _(
            "{day} from the terminal's live taps: {duc} on time ({duc_t}), {minh} late ({minh_t}), {huong} "
            "left early ({huong_t})",
            day=day, duc=tour.NAMES["CB000000042"], minh=tour.NAMES[tour.LATE],
            huong=tour.NAMES[tour.EARLY], duc_t="–".join(live["CB000000042"]),
            minh_t="–".join(live[tour.LATE]), huong_t="–".join(live[tour.EARLY])))  # fmt: skip
        base = f"http://127.0.0.1:{http_port}"
        hr_page = f"/console/attendance?month={day.strftime('%Y-%m')}"
        for login in logins:
            # the HR officer's timesheet page must show the late arrival of the story day
            page = (hr_page, tour.NAMES[tour.LATE], hr_page.replace("?", "/timesheet.xlsx?"))
            refused = tour.console_login(base, login, page if login.role == "hr" else None)
            if refused is not None:
                ok = False
                console.print(f"[red]{refused}[/red]")
        console.rule("[bold]" + _("Your turn") + "[/bold]")
        for path in files:
            console.print("  • " + _("timesheet: {path}").format(path=path))
        console.print("  • " + _("web console: {url}").format(url=f"{base}/console/"))
        for login in logins:
            console.print("    " + _("login {user} / password {password} (role {role}{scope})").format(
                user=login.username, password=login.password, role=login.role,
                scope=f", {login.scope}" if login.scope else ""))  # fmt: skip
        hr = next(login for login in logins if login.role == "hr")
        console.print("  • " + _("the month's timesheet in the console (sign in as {user}): {url}").format(
            user=hr.username, url=f"{base}{hr_page}"))  # fmt: skip
        console.print("    " + _("download: {url}").format(
            url=f"{base}/console/attendance/timesheet.xlsx?month={day.strftime('%Y-%m')}"))  # fmt: skip
        console.print("  • " + _("API: {url} — admin token: {token}").format(url=f"{base}/docs", token=token))
        console.print(
            "[bold green]" + _("Gateway: every event arrived, exactly once.") + "[/bold green]"
            if ok
            else "[bold red]" + _("Gateway: something went wrong, see above.") + "[/bold red]"
        )
        if serve:
            try:  # the line inside: a Ctrl-C right after it still gets the "stopping" answer
                console.print("[bold]" + _("The demo keeps running until Ctrl-C.") + "[/bold]")
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                bye = _("Stopping the demo: gateway, broker and console; its files are removed unless --out.")
                console.print(bye)
                raise  # after the cleanup below: exit 130 and the one "stopped" line (cbcc.app.main)
    finally:
        if link is not None:
            link.close()
        api.close()
        server.should_exit = True
        thread.join(10)
        gw.stop()
        national_server.should_exit = True
        national_thread.join(10)
    return ok
