"""Card issuance through the virtual encoder (the reader's RF stack over the simulated MFRC522 and a
simulated DESFire EV3): blank card → issued card a reader accepts, recorded in the gateway
database; reissue; the link cut at every exchange of an issuance, then the next run completing it;
refusals that change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from support.issuance import STAFF, STATION, database, make_issuer, new_card, uid_for

from cbcc.issuance import service
from cbcc.issuance.service import IssuanceError, abandon, issue_card
from gateway.models import AuditEntry, Card, CardChange, CardIssuance, Counter
from provisioning import fw
from provisioning.encoders.base import ApduTransport, LinkLost
from provisioning.encoders.rfstack import VirtualEncoder
from provisioning.issuance import card as cardmod
from trustcore import credential


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CBCC_LANG", "en")  # the card refusals matched below (tests/messages: Vietnamese)


def reader_read(enc: VirtualEncoder, issuer: service.Issuer) -> tuple[bytes, bytes]:
    """Read the card exactly as a door reader does (fresh field, reader keys only)."""
    cl = fw.module("card_layout")
    enc.field_off()
    info = enc.detect()
    assert len(info.uid) == 4 and info.uid[0] == 0x08  # random UID on
    cred, uid, details = cl.read_credential(ApduTransport(enc), issuer.layout_keys().reader_keys(), info.uid)
    assert details["anti_clone"]
    return bytes(cred), bytes(uid)


def snapshot(engine: Any) -> dict[str, Any]:
    with Session(engine) as s:
        return {
            "cards": sorted((c.serial, c.staff_code, c.status, c.gen) for c in s.exec(select(Card)).all()),
            "issuances": sorted((r.serial, r.state, r.uid) for r in s.exec(select(CardIssuance)).all()),
            "changes": len(s.exec(select(CardChange)).all()),
            "counters": sorted((c.name, c.value) for c in s.exec(select(Counter)).all()),
            "audit": len(s.exec(select(AuditEntry)).all()),
        }


def test_blank_card_issued_read_and_recorded(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    sim_card = new_card(1)
    enc.place(sim_card)
    got = issue_card(engine, enc, issuer, STAFF[0], STATION)
    assert got.serial == 1000000 and got.gen == 1 and got.uid == uid_for(1) and not got.resumed
    assert got.generation == "DESFire EV3"
    # the layout of docs/card-layout.md, checked on the card model itself
    cl = fw.module("card_layout")
    app = sim_card.apps[0x314356]
    assert app.ks1 == cl.APP_KEY_SETTINGS and app.n_keys == 3
    assert app.keys == [issuer.layout_keys().amk(uid_for(1)), issuer.layout_keys().read(uid_for(1)),
                        issuer.layout_keys().uid_key()]  # fmt: skip
    assert app.key_versions == [1, 1, 1]
    f = app.files[1]
    assert f.comm_mode == 0x03 and f.access == 0x10F0 and f.size == 1028
    assert sim_card.random_uid and sim_card.picc.keys[0] == issuer.layout_keys().picc(uid_for(1))
    cred, uid = reader_read(enc, issuer)
    assert uid == uid_for(1)
    v = credential.verify(cred, issuer.trust(), uid, 1900000000 - 10**8)
    assert v.valid and v.serial == 1000000 and v.staff == STAFF[0].staff_code
    with Session(engine) as s:
        row = s.get(CardIssuance, 1000000)
        assert row is not None and row.state == "done" and row.credential is None
        assert row.uid == uid_for(1).hex() and row.operator == STATION.operator
        assert row.station == STATION.station and row.finished_at is not None
        c = s.get(Card, 1000000)
        assert c is not None and c.status == "issued" and c.staff_code == STAFF[0].staff_code


def test_reissue_revokes_the_old_serial(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    enc.place(new_card(1))
    first = issue_card(engine, enc, issuer, STAFF[0], STATION)
    enc.place(new_card(2))
    with pytest.raises(IssuanceError, match="already holds live card serial 1000000"):
        issue_card(engine, enc, issuer, STAFF[0], STATION)
    second = issue_card(engine, enc, issuer, STAFF[0], STATION, reissue=True)
    assert second.gen == first.gen + 1 and second.replaces == first.serial and second.serial == 1000001
    with Session(engine) as s:
        old, new = s.get(Card, first.serial), s.get(Card, second.serial)
        assert old is not None and old.status == "revoked" and old.pending_upstream
        assert new is not None and new.status == "issued" and new.gen == 2
    _, uid = reader_read(enc, issuer)
    assert uid == uid_for(2)


def _full_run_exchanges() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        engine = database(Path(d))
        enc = VirtualEncoder()
        enc.place(new_card(1))
        issue_card(engine, enc, make_issuer(), STAFF[0], STATION)
        return enc.exchanges


N_EXCHANGES = _full_run_exchanges()


@pytest.mark.parametrize("when", ["card_pulled_before", "answer_lost_after"])
@pytest.mark.parametrize("cut", range(N_EXCHANGES))
def test_link_cut_at_every_exchange_then_next_run_completes(tmp_path: Path, cut: int, when: str) -> None:
    """The card leaves the field before exchange ``cut`` reaches it, or the encoder goes away after
    the card carried it out; the next run sees what the card did and finishes the same issuance."""
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder(seed=cut + 7)
    sim_card = new_card(1)
    enc.place(sim_card)

    def before(n: int) -> None:
        if n == cut:
            enc.take()  # the exchange then meets an empty field: a real RF timeout

    def after(n: int) -> None:
        if n == cut:
            enc.take()
            raise LinkLost("encoder unplugged after the card answered")

    if when == "card_pulled_before":
        enc.before_exchange = before
    else:
        enc.after_exchange = after
    with pytest.raises(LinkLost):
        issue_card(engine, enc, issuer, STAFF[0], STATION)
    enc.before_exchange = enc.after_exchange = None
    enc.place(sim_card)
    pending = service.pending_issuances(engine)
    got = issue_card(engine, enc, issuer, STAFF[0], STATION)
    assert got.serial == 1000000 and got.uid == uid_for(1)
    assert got.resumed == bool(pending)  # a pending row exists iff the card could have been touched
    cred, uid = reader_read(enc, issuer)
    assert uid == uid_for(1) and credential.verify(cred, issuer.trust(), uid, got_now()).valid
    snap = snapshot(engine)
    assert snap["cards"] == [(1000000, STAFF[0].staff_code, "issued", 1)]
    assert snap["issuances"] == [(1000000, "done", uid_for(1).hex())]


def got_now() -> int:
    import time

    return int(time.time())


def test_lost_half_written_card_is_abandoned_and_its_serial_revoked(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    enc.place(new_card(1))
    enc.before_exchange = lambda n: enc.take() if n == 30 else None
    with pytest.raises(LinkLost):
        issue_card(engine, enc, issuer, STAFF[0], STATION)
    enc.before_exchange = None
    enc.place(new_card(2))
    with pytest.raises(IssuanceError, match="unfinished issuance"):
        issue_card(engine, enc, issuer, STAFF[0], STATION)
    abandon(engine, 1000000, STATION, "card lost")
    got = issue_card(engine, enc, issuer, STAFF[0], STATION)
    assert got.serial == 1000001 and got.gen == 2
    with Session(engine) as s:
        lost = s.get(Card, 1000000)
        assert lost is not None and lost.status == "revoked" and lost.pending_upstream
    with pytest.raises(IssuanceError):
        abandon(engine, 1000000, STATION, "again")


def test_card_not_blank_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    enc.place(new_card(1))
    issue_card(engine, enc, issuer, STAFF[0], STATION)
    before = snapshot(engine)
    enc.field_off()
    with pytest.raises(cardmod.CardRefused, match="not blank: it was issued as serial 1000000"):
        issue_card(engine, enc, issuer, STAFF[1], STATION)
    # a card holding someone else's application VC1 (not ours, keys unknown)
    other = new_card(5)
    other.provision_app(0x314356, [bytes(range(16)), bytes(16), bytes(16)])
    enc.place(other)
    with pytest.raises(cardmod.CardRefused, match="not blank"):
        issue_card(engine, enc, issuer, STAFF[1], STATION)
    # a card whose PICC master key is not the factory key
    locked = new_card(6, factory_key=bytes(range(1, 17)))
    locked.picc.key_versions[0] = 3
    enc.place(locked)
    with pytest.raises(cardmod.CardRefused, match="not blank"):
        issue_card(engine, enc, issuer, STAFF[1], STATION)
    assert locked.apps == {}
    assert snapshot(engine) == before


def test_wrong_card_types_are_refused(tmp_path: Path) -> None:
    sim = fw.module("sim")
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    for c in (sim.cards.Classic(uid=bytes.fromhex("C1A55101")), sim.cards.Ntag(model=215, uid=uid_for(9))):
        enc.place(c)
        with pytest.raises(cardmod.CardRefused, match="wrong card type"):
            issue_card(engine, enc, issuer, STAFF[0], STATION)
    assert snapshot(engine)["issuances"] == []


def test_staff_with_live_card_and_exhausted_range_change_nothing(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer(lo=500, hi=502)
    enc = VirtualEncoder()
    enc.place(new_card(1))
    issue_card(engine, enc, issuer, STAFF[0], STATION)
    enc.place(new_card(2))
    issue_card(engine, enc, issuer, STAFF[1], STATION)
    blank = new_card(3)
    enc.place(blank)
    before = snapshot(engine)
    with pytest.raises(IssuanceError, match="already holds live card"):
        issue_card(engine, enc, issuer, STAFF[0], STATION)
    with pytest.raises(service.SerialRangeExhausted, match="exhausted"):
        issue_card(engine, enc, issuer, STAFF[2], STATION)
    assert snapshot(engine) == before
    assert blank.apps == {} and blank.picc.key_versions == [0] and not blank.random_uid


def test_serials_skip_those_the_national_database_already_holds(tmp_path: Path) -> None:
    from gateway.models import now_utc

    engine = database(tmp_path)
    with Session(engine) as s:
        s.add(Card(serial=1000000, staff_code="x", issuer="000.00.01.H26", status="issued",
                   updated_at=now_utc()))
        s.commit()
    enc = VirtualEncoder()
    enc.place(new_card(1))
    assert issue_card(engine, enc, make_issuer(), STAFF[0], STATION).serial == 1000001


def test_random_uid_blank_card_is_issued(tmp_path: Path) -> None:
    """A blank card that already hides its UID: the factory PICC key opens GetCardUID."""
    engine = database(tmp_path)
    issuer = make_issuer()
    enc = VirtualEncoder()
    enc.place(new_card(4, random_uid=True))
    got = issue_card(engine, enc, issuer, STAFF[0], STATION)
    assert got.uid == uid_for(4)
    assert reader_read(enc, issuer)[1] == uid_for(4)
