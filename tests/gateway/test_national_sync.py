"""National card database sync: the simulator, full and incremental sync against its truth on
SQLite and PostgreSQL, crashes at every stage of a page (exception and kill -9), hostile feeds,
CSV/XLSX import, local locks pushed upstream."""

from __future__ import annotations

import collections
import itertools
import json
import signal
import subprocess
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway import db
from gateway.models import Card
from gateway.national.feed import FeedError, HttpChangeFeed, retry_after
from gateway.national.fileimport import import_file, write_csv
from gateway.national.local import LocalActionError, lock_card, push_pending
from gateway.national.sync import SNAPSHOT_STAGES, STAGES, get_cursor, sync_feed
from simulators import national as simulator
from simulators.national import NationalSim, create_app


def sync_pages(*args: Any, **kw: Any) -> Any:
    """The page path alone (no snapshot for the first load), as before snapshots existed."""
    return sync_feed(*args, snapshot=False, **kw)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SEED = 7


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the reasons matched below (Vietnamese: test_gateway_i18n.py)


@pytest.fixture
def url(db_url: str) -> Iterator[str]:
    """``db_url`` (SQLite and PostgreSQL, tests/conftest.py) migrated to head."""
    db.migrate(db_url)
    yield db_url


def feed_for(sim: NationalSim, page_size: int = 10_000, **kw: Any) -> HttpChangeFeed:
    return HttpChangeFeed("http://testserver", client=TestClient(create_app(sim)), page_size=page_size, **kw)


def db_state(engine: sa.Engine) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
    with engine.connect() as conn:
        staff = {
            r[0]: {"code": r[0], "full_name": r[1], "agency_code": r[2], "unit": r[3], "position": r[4],
                   "active": bool(r[5])}
            for r in conn.execute(sa.text("SELECT staff_code, full_name, agency_code, unit, position, active "
                                          "FROM staffrecord"))
        }  # fmt: skip
        cards = {}
        t = Card.__table__.c  # type: ignore[attr-defined]
        for r in conn.execute(sa.select(t.serial, t.staff_code, t.issuer, t.gen, t.status, t.issued_at,
                                        t.expires_at)):  # fmt: skip
            issued, expires = db.utc(r[5]), db.utc(r[6])
            cards[int(r[0])] = {"serial": int(r[0]), "staff_code": r[1], "issuer": r[2], "gen": r[3],
                                "status": r[4], "issued_at": issued.date().isoformat() if issued else None,
                                "expires_at": expires.date().isoformat() if expires else None}  # fmt: skip
    return staff, cards


def change_count(engine: sa.Engine, source: str = "national") -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM cardchange WHERE source = :s"), {"s": source})
                   .scalar_one())  # fmt: skip


def assert_truth(engine: sa.Engine, sim: NationalSim) -> None:
    staff, cards = sim.truth()
    got_staff, got_cards = db_state(engine)
    assert got_staff == staff
    assert got_cards == cards
    assert change_count(engine) == sim.head
    assert get_cursor(engine) == str(sim.head)


# ---- simulator --------------------------------------------------------------------------------


def test_simulator_is_deterministic_and_realistic() -> None:
    a, b = NationalSim(SEED, 20_000, 2_000), NationalSim(SEED, 20_000, 2_000)
    assert a.page(0, 500) == b.page(0, 500)
    assert a.page(20_000, 2_000) == b.page(20_000, 2_000)
    assert NationalSim(SEED + 1, 20_000, 2_000).page(0, 500) != a.page(0, 500)
    issuers = a.u.issuers
    assert len(issuers) == 96
    assert sum(i.letter == "G" for i in issuers) == 33 and sum(i.letter == "H" for i in issuers) == 63
    assert sum(i.size for i in issuers) == 20_000
    for x, y in itertools.pairwise(issuers):  # disjoint serial blocks, in order
        assert x.base + x.block <= y.base
    changes = list(a.changes())
    assert [c["id"] for c in changes] == list(range(1, a.head + 1))
    names = [c["staff"]["full_name"] for c in changes[:20_000]]
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    family = collections.Counter(n.split()[0] for n in names)
    assert 0.34 < family["Nguyễn"] / len(names) < 0.42
    assert {"Trần", "Lê", "Phạm", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý"} <= set(family)
    assert family["Hoàng"] and family["Huỳnh"] and family["Vũ"] and family["Võ"]
    # each issuer's first cards are a dense range from its base
    serials = collections.defaultdict(list)
    for c in changes[:20_000]:
        serials[c["card"]["issuer"]].append(c["card"]["serial"])
    for iss in issuers:
        assert serials[iss.code] == list(range(iss.base, iss.base + iss.size))
    kinds = collections.Counter(c["kind"] for c in changes[20_000:])
    assert set(kinds) >= {
        "staff.created",
        "staff.transferred",
        "staff.retired",
        "staff.updated",
        "card.locked",
        "card.unlocked",
        "card.revoked",
        "card.replaced",
        "card.reissued",
    }
    for c in changes:
        if c["kind"] == "card.reissued":
            assert c["card"]["gen"] >= 2
    assert all(c["staff"]["agency_code"][:7] == "000.00." for c in changes if c.get("staff"))


def test_simulator_generates_two_million_lazily() -> None:
    sim = NationalSim(1, simulator.RECORDS, 1_000)
    assert sim.head == simulator.RECORDS + 1_000
    last = json.loads(sim.page(simulator.RECORDS - 1, 1))["changes"][0]
    assert last["id"] == simulator.RECORDS and last["card"]["issuer"] == "000.00.00.H63"


# ---- full and incremental sync ------------------------------------------------------------------


def test_full_then_incremental_equals_truth(url: str) -> None:
    sim = NationalSim(SEED, 20_000, 4_000, reveal=2_000)
    engine = db.make_engine(url)
    seen: list[int] = []
    report = sync_pages(engine, feed_for(sim, 5_000), on_change=seen.extend)
    assert report.applied == sim.head == 22_000 and report.duplicates == 0
    assert_truth(engine, sim)
    denied = {s for s, c in sim.truth()[1].items() if c["status"] != "issued"}
    assert denied <= set(seen)
    before = {s: c["status"] != "issued" for s, c in sim.truth()[1].items()}
    sim.advance(2_000)
    seen.clear()
    report = sync_pages(engine, feed_for(sim, 5_000), on_change=seen.extend)
    assert report.applied == 2_000 and report.pages == 1
    assert_truth(engine, sim)
    after = {s: c["status"] != "issued" for s, c in sim.truth()[1].items()}
    net = {s for s in after if after[s] != before.get(s, False)}
    assert net <= set(seen)
    again = sync_pages(engine, feed_for(sim, 5_000))  # nothing new
    assert again.applied == 0 and again.cursor == str(sim.head)


# ---- crashes ------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_crash_at_every_stage_then_restart(url: str) -> None:
    sim = NationalSim(SEED, 6_000, 1_500)
    engine = db.make_engine(url)
    for n, stage in enumerate(STAGES):
        pages = {"n": 0}

        def fault(s: str, stage: str = stage, pages: dict[str, int] = pages) -> None:
            if s == "filtered":
                pages["n"] += 1
            if s == stage and pages["n"] == 2:
                raise Boom(stage)

        cursor = get_cursor(engine)
        with pytest.raises(Boom):
            sync_pages(engine, feed_for(sim, 500 + 17 * n), fault=fault)
        # The invariant of the feed: changes 1..cursor are applied, each once, and no other.
        done = get_cursor(engine)
        assert change_count(engine) == int(done)
        expected_pages = 2 if stage == "committed" else 1
        assert int(done) == int(cursor or 0) + sum(1 for _ in range(expected_pages)) * (500 + 17 * n)
    report = sync_pages(engine, feed_for(sim, 1_000))
    assert report.duplicates == 0
    assert_truth(engine, sim)


KILLER = """
import os, signal, sys, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from gateway import db
from gateway.models import Card
from gateway.national.feed import HttpChangeFeed
from simulators.national import NationalSim, create_app
from gateway.national.sync import sync_feed
url, stage, page = sys.argv[1], sys.argv[2], int(sys.argv[3])
sim = NationalSim(7, 6_000, 1_500)
feed = HttpChangeFeed("http://testserver", client=TestClient(create_app(sim)), page_size=700)
n = [0]
def fault(s):
    if s == "filtered":
        n[0] += 1
    if s == stage and n[0] == page:
        os.kill(os.getpid(), signal.SIGKILL)
sync_feed(db.make_engine(url), feed, fault=fault, snapshot=False)
"""


def test_killed_mid_page_and_between_pages(url: str) -> None:
    sim = NationalSim(SEED, 6_000, 1_500)
    engine = db.make_engine(url)
    for stage, page in (("cards", 2), ("committed", 4), ("changes", 6)):
        proc = subprocess.run([sys.executable, "-c", KILLER, url, stage, str(page)], cwd=ROOT,
                              capture_output=True, timeout=120)  # fmt: skip
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        assert change_count(engine) == int(get_cursor(engine))
    # run 1 kept page 1, run 2 committed 4 pages, run 3 died in its 6th: 1 + 4 + 5 pages of 700
    assert int(get_cursor(engine)) == 700 * 10
    report = sync_pages(engine, feed_for(sim, 2_000))
    assert report.duplicates == 0
    assert_truth(engine, sim)


# ---- hostile feeds ------------------------------------------------------------------------------


Handler = Callable[[httpx.Request], httpx.Response]


def mock_feed(handler: Handler, **kw: Any) -> tuple[HttpChangeFeed, list[float]]:
    sleeps: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://national")
    feed = HttpChangeFeed("http://national", client=client, sleep=sleeps.append, prefetch=False, **kw)
    return feed, sleeps


def json_response(body: Any, status: int = 200) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def small_sim() -> NationalSim:
    return NationalSim(SEED, 2_000, 300)


def serve_pages(sim: NationalSim, mutate: Callable[[int, dict[str, Any]], Any] | None = None,
                size: int = 500) -> Callable[[httpx.Request], httpx.Response]:  # fmt: skip
    def handler(req: httpx.Request) -> httpx.Response:
        after = int(req.url.params["after"])
        page = json.loads(sim.page(after, size))
        if mutate is not None:
            page = mutate(after, page)
        return page if isinstance(page, httpx.Response) else json_response(page)

    return handler


def nothing_applied_after(engine: sa.Engine, cursor: int) -> None:
    assert change_count(engine) == cursor and get_cursor(engine) == (str(cursor) if cursor else "")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM staffrecord")).scalar_one() <= cursor


def bad_change(after: int, page: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    if after == 500:
        target = page["changes"][250]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return page


HOSTILE: dict[str, tuple[Callable[[int, dict[str, Any]], Any], str]] = {
    "bad JSON": (
        lambda a, p: (
            httpx.Response(200, content=b'{"changes": [', headers={"content-type": "application/json"})
            if a == 500
            else p
        ),
        "not JSON",
    ),
    "not JSON at all": (
        lambda a, p: (
            httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"}) if a == 500 else p
        ),
        "content type",
    ),
    "agency code": (lambda a, p: bad_change(a, p, ("staff", "agency_code"), "H26"), "schema"),
    "unknown field": (lambda a, p: bad_change(a, p, ("card", "colour"), "red"), "schema"),
    "serial as text": (lambda a, p: bad_change(a, p, ("card", "serial"), "1000001"), "schema"),
    "control char": (lambda a, p: bad_change(a, p, ("staff", "unit"), "Sở\u0000Nội vụ"), "schema"),
    "status vs kind": (lambda a, p: bad_change(a, p, ("kind",), "card.revoked"), "inconsistent"),
    "naive time": (lambda a, p: bad_change(a, p, ("at",), "2025-01-01T00:00:00"), "schema"),
    "repeated page": (lambda a, p: json.loads(_first_page) if a == 500 else p, "not after cursor"),
    "ids out of order": (lambda a, p: bad_change(a, p, ("id",), 502), "not strictly increasing"),
    "cursor backwards": (lambda a, p: {**p, "next_cursor": "400"} if a == 500 else p, "next_cursor"),
    "empty but more": (
        lambda a, p: {"changes": [], "next_cursor": "500", "has_more": True} if a == 500 else p,
        "never end",
    ),
}
_first_page = NationalSim(SEED, 2_000, 300).page(0, 500)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_page_rejected_nothing_half_applied(
    case: str, small_sim: NationalSim, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    mutate, reason = HOSTILE[case]
    feed, _ = mock_feed(serve_pages(small_sim, mutate))
    with pytest.raises(FeedError) as err:
        sync_pages(engine, feed)
    assert reason in err.value.reason
    nothing_applied_after(engine, 500)  # the first page applied, the bad second one not at all
    # once the feed is sane again, the sync completes exactly
    feed, _ = mock_feed(serve_pages(small_sim))
    sync_pages(engine, feed)
    assert_truth(engine, small_sim)


def test_hostile_page_rejected_on_postgresql(small_sim: NationalSim, pg_url: str) -> None:
    db.migrate(pg_url)
    engine = db.make_engine(pg_url)
    feed, _ = mock_feed(serve_pages(small_sim, HOSTILE["status vs kind"][0]))
    with pytest.raises(FeedError):
        sync_pages(engine, feed)
    nothing_applied_after(engine, 500)


def test_timeouts_and_5xx_retried_with_backoff(small_sim: NationalSim, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    calls = collections.Counter[int]()
    inner = serve_pages(small_sim)

    def flaky(req: httpx.Request) -> httpx.Response:
        after = int(req.url.params["after"])
        calls[after] += 1
        if after == 500 and calls[after] <= 2:
            raise httpx.ReadTimeout("slow", request=req)
        if after == 1000 and calls[after] <= 2:
            return httpx.Response(503)
        if after == 1500 and calls[after] == 1:
            return httpx.Response(429, headers={"retry-after": "3"})
        return inner(req)

    feed, sleeps = mock_feed(flaky, backoff=1.0)
    sync_pages(engine, feed)
    assert_truth(engine, small_sim)
    assert feed.retries == 5
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # exponential, with jitter
    assert 3.0 in sleeps  # Retry-After honoured


def test_persistent_failures_give_up_with_reason(small_sim: NationalSim, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)

    def timeout(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("down", request=req)

    feed, sleeps = mock_feed(timeout, max_attempts=4)
    with pytest.raises(FeedError, match="timeout after 4 attempts"):
        sync_pages(engine, feed)
    assert len(sleeps) == 3
    feed, sleeps = mock_feed(lambda r: httpx.Response(401))
    with pytest.raises(FeedError, match="not authorised"):
        sync_pages(engine, feed)
    assert sleeps == []
    feed, _ = mock_feed(lambda r: httpx.Response(429, headers={"retry-after": "3600"}))
    with pytest.raises(FeedError, match="rate limited"):
        sync_pages(engine, feed)
    nothing_applied_after(engine, 0)
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_bearer_token_sent_and_required(small_sim: NationalSim, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    app = create_app(small_sim, token="s3cret")
    with pytest.raises(FeedError, match="not authorised"):
        sync_pages(db.make_engine(url), HttpChangeFeed("http://testserver", client=TestClient(app)))
    feed = HttpChangeFeed("http://testserver", client=TestClient(app), token="s3cret")
    sync_pages(db.make_engine(url), feed)
    assert_truth(db.make_engine(url), small_sim)


# ---- snapshot (first load) ---------------------------------------------------------------------


def snapshot_lines(sim: NationalSim) -> list[bytes]:
    return b"".join(sim.snapshot()[3]).split(b"\n")[:-1]


def serve_snapshot(sim: NationalSim, mutate: Callable[[list[bytes]], list[bytes]] | None = None,
                   status: int = 200) -> Handler:  # fmt: skip
    """The simulator's snapshot (optionally mutated) and its pages, over a mock transport."""
    pages = serve_pages(sim)

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path != "/v1/snapshot":
            return pages(req)
        if status != 200:
            return httpx.Response(status)
        lines = snapshot_lines(sim)
        if mutate is not None:
            lines = mutate(lines)
        body = b"".join(line + b"\n" for line in lines)
        return httpx.Response(200, content=body, headers={"content-type": "application/x-ndjson"})

    return handler


def assert_snapshot_truth(engine: sa.Engine, sim: NationalSim, as_of: int) -> None:
    """State = the simulator's truth; one CardChange for the snapshot and one per later change."""
    staff, cards = sim.truth()
    got_staff, got_cards = db_state(engine)
    assert got_staff == staff
    assert got_cards == cards
    assert get_cursor(engine) == str(sim.head)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT change_id, kind, detail FROM cardchange WHERE kind = 'snapshot'")
        ).all()
        later = conn.execute(sa.text("SELECT count(*) FROM cardchange WHERE source = 'national' "
                                     "AND kind <> 'snapshot'")).scalar_one()  # fmt: skip
    assert [(r[0], r[1]) for r in rows] == [(f"snapshot:{as_of}", "snapshot")]
    assert json.loads(rows[0][2])["as_of"] == as_of
    assert later == sim.head - as_of
    assert_indexes(engine)


def assert_indexes(engine: sa.Engine) -> None:
    """The secondary indexes dropped for the load are back (or were never gone)."""
    insp = sa.inspect(engine)
    names = {ix["name"] for t in ("card", "staffrecord") for ix in insp.get_indexes(t)}
    assert names >= {"ix_card_issuer", "ix_card_pending_upstream", "ix_card_staff_code", "ix_card_status",
                     "ix_card_updated_at", "ix_staffrecord_agency_code"}  # fmt: skip


def test_snapshot_then_feed_equals_truth(url: str) -> None:
    sim = NationalSim(SEED, 20_000, 4_000, reveal=2_000)
    engine = db.make_engine(url)
    seen: list[int] = []
    report = sync_feed(engine, feed_for(sim, 3_000), on_change=seen.extend)
    as_of = sim.head
    assert report.snapshot == as_of and report.pages == 1 and report.applied == 1  # the page is empty
    assert report.snapshot_staff == len(sim.truth()[0]) and report.snapshot_cards == len(sim.truth()[1])
    assert_snapshot_truth(engine, sim, as_of)
    assert set(seen) == {s for s, c in sim.truth()[1].items() if c["status"] != "issued"}
    # then the feed from as_of: history and a gateway's posted lock
    sim.advance(1_500)
    serial = sim.u.issuers[5].base + 1
    sim.post(serial, "lock", sim.u.staff_code(sim.u.issuers[5].first_person + 1), "local:99")
    sim.advance(500)
    seen.clear()
    report = sync_feed(engine, feed_for(sim, 700), on_change=seen.extend)
    assert report.snapshot is None and report.applied == 2_001 and report.duplicates == 0
    assert serial in seen
    assert_snapshot_truth(engine, sim, as_of)
    again = sync_feed(engine, feed_for(sim))
    assert again.applied == 0 and again.snapshot is None


def test_snapshot_streamed_over_http_from_the_simulator(tmp_path: Path) -> None:
    """The real endpoint (StreamingResponse) through HttpChangeFeed, with a token."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    sim = NationalSim(SEED, 5_000, 800)
    app = create_app(sim, token="t0k")
    with pytest.raises(FeedError, match="not authorised"):
        sync_feed(db.make_engine(url), HttpChangeFeed("http://testserver", client=TestClient(app)))
    assert get_cursor(db.make_engine(url)) == ""
    feed = HttpChangeFeed("http://testserver", client=TestClient(app), token="t0k", page_size=999)
    report = sync_feed(db.make_engine(url), feed)
    assert report.snapshot == sim.head
    assert_snapshot_truth(db.make_engine(url), sim, sim.head)


def test_no_snapshot_endpoint_falls_back_to_pages(small_sim: NationalSim, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    feed, _ = mock_feed(serve_snapshot(small_sim, status=404))
    report = sync_feed(engine, feed)
    assert report.snapshot is None and report.applied == small_sim.head
    assert_truth(engine, small_sim)


def test_crash_at_every_snapshot_stage_then_restart(url: str) -> None:
    sim = NationalSim(SEED, 6_000, 1_500, reveal=1_000)
    engine = db.make_engine(url)
    for stage in SNAPSHOT_STAGES[:-1]:
        batches = {"n": 0}

        def fault(s: str, stage: str = stage, batches: dict[str, int] = batches) -> None:
            if s == "snapshot.batch":
                batches["n"] += 1
            if s == stage and (s != "snapshot.batch" or batches["n"] == 3):
                raise Boom(stage)

        with pytest.raises(Boom):
            sync_feed(engine, feed_for(sim, 1_000), fault=fault)
        # nothing of the snapshot: no cursor, no rows, the indexes dropped for the load are back
        assert get_cursor(engine) == "" and change_count(engine) == 0
        assert db_state(engine) == ({}, {})
        assert_indexes(engine)
    committed = {"n": 0}

    def after_commit(s: str) -> None:
        if s == "committed" and not committed["n"]:
            committed["n"] += 1
            raise Boom(s)

    with pytest.raises(Boom):  # the snapshot committed, the feed not started
        sync_feed(engine, feed_for(sim, 1_000), fault=after_commit)
    as_of = sim.head
    assert get_cursor(engine) == str(as_of) and change_count(engine) == 1
    sim.advance(500)
    report = sync_feed(engine, feed_for(sim, 1_000))
    assert report.snapshot is None and report.applied == 500
    assert_snapshot_truth(engine, sim, as_of)


SNAPSHOT_KILLER = """
import os, signal, sys, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from gateway import db
from gateway.national.feed import HttpChangeFeed
from simulators.national import NationalSim, create_app
from gateway.national.sync import sync_feed
url, stage, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
sim = NationalSim(7, 6_000, 1_500)
feed = HttpChangeFeed("http://testserver", client=TestClient(create_app(sim)), page_size=900)
n = [0]
def fault(s):
    if s == "snapshot.batch":
        n[0] += 1
    if s == stage and (s != "snapshot.batch" or n[0] == batch):
        os.kill(os.getpid(), signal.SIGKILL)
sync_feed(db.make_engine(url), feed, fault=fault)
"""


def test_killed_mid_snapshot_then_restart(url: str) -> None:
    sim = NationalSim(SEED, 6_000, 1_500)
    engine = db.make_engine(url)
    for stage, batch in (("snapshot.batch", 4), ("snapshot.indexed", 0), ("cursor", 0)):
        proc = subprocess.run([sys.executable, "-c", SNAPSHOT_KILLER, url, stage, str(batch)], cwd=ROOT,
                              capture_output=True, timeout=120)  # fmt: skip
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        assert get_cursor(engine) == "" and change_count(engine) == 0
        assert db_state(engine) == ({}, {})
        assert_indexes(engine)
    report = sync_feed(engine, feed_for(sim, 2_000))
    assert report.snapshot == sim.head
    assert_snapshot_truth(engine, sim, sim.head)


def test_snapshot_into_tables_that_hold_rows_keeps_local_locks(url: str, tmp_path: Path) -> None:
    """A file import and a local lock before the first national sync: the snapshot upserts."""
    sim = NationalSim(SEED, 3_000, 400)
    engine = db.make_engine(url)
    path = tmp_path / "pre.csv"
    path.write_text(write_csv(ROWS[:2]), encoding="utf-8")
    assert import_file(engine, path).applied == 2
    serial = sim.u.issuers[40].base + 3
    staff = json.loads(sim.page(0, 3_000))["changes"]
    code = next(c["card"]["staff_code"] for c in staff if c["card"]["serial"] == serial)
    row = {"staff_code": code, "full_name": "Lê Văn Bình", "agency_code": "000.00.01.H01",
           "serial": str(serial), "issuer": "000.00.00.H01"}  # fmt: skip
    path.write_text(write_csv([row]), encoding="utf-8")
    import_file(engine, path)
    lock_card(engine, serial, actor="facility", reason="mất thẻ")
    seen: list[int] = []
    report = sync_feed(engine, feed_for(sim), on_change=seen.extend)
    assert report.snapshot == sim.head
    got_staff, got_cards = db_state(engine)
    truth_staff, truth_cards = sim.truth()
    assert got_cards.pop(serial)["status"] == "locked"  # local wins until pushed
    truth_cards.pop(serial)
    assert {k: v for k, v in got_cards.items() if k in truth_cards} == truth_cards
    assert {k: v for k, v in got_staff.items() if k in truth_staff} == truth_staff
    assert {9000001, 9000002} <= set(got_cards)  # the imported cards stay
    assert serial not in seen  # still denied: no revocation change
    assert_indexes(engine)


def _swap(lines: list[bytes], i: int, j: int) -> list[bytes]:
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def _edit(n: int, f: Callable[[Any], Any]) -> Callable[[list[bytes]], list[bytes]]:
    """Change line ``n`` (counted from the end when negative) through its JSON value."""

    def mutate(lines: list[bytes]) -> list[bytes]:
        lines[n] = json.dumps(f(json.loads(lines[n])), ensure_ascii=False).encode()
        return lines

    return mutate


def _set(row: list[Any], i: int, v: Any) -> list[Any]:
    row[i] = v
    return row


STAFF_AT, CARD_AT = 1500, -300  # a staff row and a card row of small_sim's snapshot (3 batches of 500 in)
HOSTILE_SNAPSHOTS: dict[str, tuple[Callable[[list[bytes]], list[bytes]], str]] = {
    "not JSON": (lambda ls: [*ls[:STAFF_AT], b"[\"CB1\",", *ls[STAFF_AT:]], "schema"),
    "truncated": (lambda ls: ls[:-400], "truncated"),
    "no trailer": (lambda ls: ls[:-1], "truncated"),
    "trailer differs": (_edit(-1, lambda e: {"end": {**e["end"], "cards": e["end"]["cards"] + 1}}),
                        "trailer"),
    "data after trailer": (lambda ls: [*ls, ls[-2]], "after the trailer"),
    "header lies": (_edit(0, lambda h: {"snapshot": {**h["snapshot"], "staff": h["snapshot"]["staff"] - 1}}),
                    "schema"),
    "fields reordered": (_edit(0, lambda h: {"snapshot": {**h["snapshot"], "card_fields": [
                         "staff_code", "serial", "issuer", "gen", "status", "issued_at", "expires_at"]}}),
                         "fields"),
    "header unknown key": (_edit(0, lambda h: {"snapshot": {**h["snapshot"], "x": 1}}), "schema"),
    "staff out of order": (lambda ls: _swap(ls, STAFF_AT, STAFF_AT + 1), "not after"),
    "duplicate serial": (lambda ls: _edit(CARD_AT, lambda r: _set(r, 0, json.loads(ls[CARD_AT - 1])[0]))(ls),
                         "not after"),
    "agency code": (_edit(STAFF_AT, lambda r: _set(r, 2, "H26")), "schema"),
    "control char": (_edit(STAFF_AT, lambda r: _set(r, 3, "Sở\u0000Nội vụ")), "schema"),
    "name with digits": (_edit(STAFF_AT, lambda r: _set(r, 1, "Hồ Văn 3")), "schema"),
    "serial as text": (_edit(CARD_AT, lambda r: _set(r, 0, str(r[0]))), "schema"),
    "unknown status": (_edit(CARD_AT, lambda r: _set(r, 4, "lost")), "schema"),
    "expires first": (_edit(CARD_AT, lambda r: _set(r, 6, "2020-01-01")), "expires_at"),
    "extra column": (_edit(CARD_AT, lambda r: [*r, "x"]), "schema"),
    "two rows on a line": (lambda ls: [*ls[:STAFF_AT], ls[STAFF_AT] + b"," + ls[STAFF_AT + 1],
                                       *ls[STAFF_AT + 2:]], "rows"),
    "line too long": (_edit(STAFF_AT, lambda r: _set(r, 4, "x" * 70_000)), "longer than"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE_SNAPSHOTS))
def test_hostile_snapshot_rejected_nothing_applied(case: str, small_sim: NationalSim, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    mutate, reason = HOSTILE_SNAPSHOTS[case]
    feed, _ = mock_feed(serve_snapshot(small_sim, mutate), page_size=500)
    with pytest.raises(FeedError) as err:
        sync_feed(engine, feed)
    assert reason in err.value.reason, err.value.reason
    assert get_cursor(engine) == "" and change_count(engine) == 0 and db_state(engine) == ({}, {})
    assert_indexes(engine)
    feed, _ = mock_feed(serve_snapshot(small_sim), page_size=500)
    assert sync_feed(engine, feed).snapshot == small_sim.head
    assert_snapshot_truth(engine, small_sim, small_sim.head)


@pytest.mark.parametrize("case", ["truncated", "duplicate serial", "control char"])
def test_hostile_snapshot_rejected_on_postgresql(case: str, small_sim: NationalSim, pg_url: str) -> None:
    db.migrate(pg_url)
    engine = db.make_engine(pg_url)
    feed, _ = mock_feed(serve_snapshot(small_sim, HOSTILE_SNAPSHOTS[case][0]), page_size=500)
    with pytest.raises(FeedError):
        sync_feed(engine, feed)
    assert get_cursor(engine) == "" and change_count(engine) == 0 and db_state(engine) == ({}, {})
    assert_indexes(engine)


def test_snapshot_texts_normalised_like_pages(small_sim: NationalSim, tmp_path: Path) -> None:
    """NFD names and doubled spaces take the full (normalising) rules, as in pages."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    engine = db.make_engine(url)
    code = "CB00000011"

    def mutate(lines: list[bytes]) -> list[bytes]:
        i = next(n for n, line in enumerate(lines) if line.startswith(f'["{code}"'.encode()))
        return _edit(i, lambda r: _set(_set(r, 1, nfd(r[1]).replace(" ", "  ")), 3, nfd(r[3])))(lines)

    feed, _ = mock_feed(serve_snapshot(small_sim, mutate), page_size=500)
    sync_feed(engine, feed)
    assert db_state(engine) == small_sim.truth()  # stored NFC, single spaces


def test_fast_snapshot_alphabet_is_letters_and_printable() -> None:
    """The fast path's alphabet: every character is a letter for the name rule, and printable,
    non-space, not a control or format character for the text rule (so the full rules would
    accept what the fast patterns accept, unchanged)."""
    import re

    from gateway.national import feed as f

    for lo, hi in re.findall(r"(.)-(.)", f._LATIN):
        for cp in range(ord(lo), ord(hi) + 1):
            ch = chr(cp)
            assert f.normalise_name(ch) == ch, hex(cp)
            assert f._nfc_text(ch) == ch and not ch.isspace(), hex(cp)
    for cp in range(0x21, 0x7F):
        assert f._nfc_text(chr(cp)) == chr(cp)


# ---- file import --------------------------------------------------------------------------------


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


ROWS = [
    {"staff_code": "CB90000001", "full_name": nfd("Nguyễn Thị Hương"), "agency_code": "000.00.31.H26",
     "unit": nfd("Sở Nội vụ"), "position": nfd("Chuyên viên"), "active": "1", "serial": "9000001",
     "issuer": "000.00.00.H26", "gen": "1", "status": "issued", "issued_at": "2024-01-15",
     "expires_at": "15/01/2029"},
    {"staff_code": "CB90000002", "full_name": nfd("Trần  Văn Đức "), "agency_code": "000.00.02.G05",
     "unit": "", "position": "", "active": "có", "serial": "9000002", "issuer": "000.00.00.G05",
     "gen": "2", "status": "khóa", "issued_at": "", "expires_at": ""},
    {"staff_code": "CB90000003", "full_name": "Lê Văn Bình", "agency_code": "H26", "serial": ""},
    {"staff_code": "CB90000004", "full_name": "Phạm Thị Mai", "agency_code": "000.00.01.H01",
     "serial": "9000004", "issued_at": "31/02/2024"},
    {"staff_code": "CB90000005", "full_name": "Hồ Văn 3", "agency_code": "000.00.01.H01"},
    {"staff_code": "CB90000006", "full_name": "Đỗ Thị Lan", "agency_code": "000.00.01.H01", "active": "0"},
]  # fmt: skip


def test_csv_import_nfc_and_bad_rows(url: str, tmp_path: Path) -> None:
    engine = db.make_engine(url)
    path = tmp_path / "staff.csv"
    path.write_text(write_csv(ROWS), encoding="utf-8")
    report = import_file(engine, path)
    assert report.rows == 6 and report.bad == 3 and report.applied == 0
    assert [e.split(":")[0] for e in report.errors] == ["row 4", "row 5", "row 6"]
    assert "agency_code" in report.errors[0] and "not a date" in report.errors[1]
    assert "full_name" in report.errors[2]
    assert change_count(engine, "file") == 0
    seen: list[int] = []
    report = import_file(engine, path, allow_partial=True, on_change=seen.extend)
    assert report.applied == 3 and seen == [9000002]
    staff, cards = db_state(engine)
    assert staff["CB90000001"]["full_name"] == "Nguyễn Thị Hương"
    assert unicodedata.is_normalized("NFC", staff["CB90000001"]["unit"])
    assert staff["CB90000002"]["full_name"] == "Trần Văn Đức"
    assert staff["CB90000006"]["active"] is False
    assert cards[9000001]["expires_at"] == "2029-01-15" and cards[9000002]["status"] == "locked"
    assert cards[9000002]["gen"] == 2
    again = import_file(engine, path, allow_partial=True)
    assert again.applied == 0 and again.duplicates == 3


def test_xlsx_import_with_vietnamese_headers(tmp_path: Path) -> None:
    import openpyxl  # type: ignore[import-untyped]

    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.migrate(url)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Mã cán bộ", "Họ và tên", "Mã cơ quan", "Đơn vị", "Chức vụ", "Số thẻ", "Cơ quan cấp",
               "Trạng thái", "Ngày cấp", "Ngày hết hạn"])  # fmt: skip
    ws.append(["CB91000001", nfd("Vũ Hoàng Yến"), "000.00.05.H30", nfd("Sở Y tế"), "Bác sĩ", 9100001,
               "000.00.00.H30", "thu hồi", date(2024, 3, 1), "2029-03-01"])  # fmt: skip
    ws.append([None] * 10)
    ws.append(["CB91000002", "Ngô Minh Khoa", "000.00.05.H30", "", "", 9100002.0, None, None, None, None])
    ws.append(["bad code!", "Ngô Minh Khoa", "000.00.05.H30"])
    path = tmp_path / "cards.xlsx"
    wb.save(path)
    engine = db.make_engine(url)
    report = import_file(engine, path)
    assert report.rows == 3 and report.errors and report.errors[0].startswith("row 5: staff_code")
    report = import_file(engine, path, allow_partial=True)
    assert report.applied == 2
    staff, cards = db_state(engine)
    assert staff["CB91000001"]["full_name"] == "Vũ Hoàng Yến" == unicodedata.normalize("NFC", "Vũ Hoàng Yến")
    assert cards[9100001]["status"] == "revoked" and cards[9100001]["issued_at"] == "2024-03-01"
    assert cards[9100002]["issuer"] == "000.00.05.H30" and cards[9100002]["status"] == "issued"


# ---- local actions ------------------------------------------------------------------------------


def test_local_lock_at_once_then_pushed_upstream(url: str) -> None:
    sim = NationalSim(SEED, 3_000, 0)
    engine = db.make_engine(url)
    sync_feed(engine, feed_for(sim))
    serial = sim.u.issuers[40].base + 3
    seen: list[int] = []
    change = lock_card(engine, serial, actor="facility-hn", reason="báo mất thẻ", on_change=seen.extend)
    assert change == "local:1" and seen == [serial]
    with engine.connect() as conn:
        status, pending = conn.execute(sa.text("SELECT status, pending_upstream FROM card WHERE serial = :s"),
                                       {"s": serial}).one()  # fmt: skip
        audit = conn.execute(sa.text("SELECT count(*) FROM auditentry WHERE action = 'card.lock'")).scalar()
    assert status == "locked" and pending and audit == 1
    with pytest.raises(LocalActionError, match="already locked"):
        lock_card(engine, serial, actor="x")
    # The national side has not heard of it yet: a national "issued" state does not unlock it.
    sim.u.history.append((simulator.K["card.unlocked"], 900, None, sim.u.card_by_serial(serial), None))
    sim.advance(1)
    sync_feed(engine, feed_for(sim))
    assert db_state(engine)[1][serial]["status"] == "locked"
    # The push fails (service down): still pending.
    down = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503)), base_url="http://n")
    assert push_pending(down, engine).failed == {serial: "HTTP 503"}
    client = TestClient(create_app(sim))
    report = push_pending(client, engine)
    assert report.pushed == [serial] and not report.failed, report.failed
    assert push_pending(client, engine).pushed == []  # nothing left
    with engine.connect() as conn:
        assert not conn.execute(sa.text("SELECT pending_upstream FROM card WHERE serial = :s"),
                                {"s": serial}).scalar()  # fmt: skip
    # The lock now comes back in the national feed, acknowledging the local reference.
    last = next(iter(sim.changes(sim.head - 1)))
    assert last["kind"] == "card.locked" and last["ref"] == "local:1" and last["card"]["serial"] == serial
    assert sim.post(serial, "lock", last["card"]["staff_code"], "local:1") == last["id"]  # idempotent
    sync_feed(engine, feed_for(sim))
    assert db_state(engine)[1][serial]["status"] == "locked"
    assert change_count(engine, "local") == 1
