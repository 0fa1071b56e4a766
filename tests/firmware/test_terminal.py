"""The terminal's decision pipeline end to end on the unix side of the hardware layer: a DESFire
card personalised in the RF simulator, the reader's own driver, trust core, door policy, door
I/O, event records and the flash journal. (The same pipeline runs against a real broker in the
virtual-reader tests.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import card_reader
import clock
import cose_key
import events
import hmac_sha256
import pytest
import reader_config
import revocation as fw_revocation
import terminal
import trust as fw_trust
from journal import Journal
from sim.board import SimBoard
from sim.nor_flash import NorFlash
from support import host as hs
from test_rf_support import ISSUER, UID7, desfire, reinsert, rig_chip

from trustcore import keys, revocation
from trustcore import reader_config as host_config

CONFIG_SRC: dict[str, Any] = {
    "reader_id": "hn-snv-t3-01",
    "site": "Sở Nội vụ – thử nghiệm",
    "timezone": "UTC+07:00",
    "group": [
        {"id": "so-noi-vu", "agency": ["000.00.36"]},
        {"id": "bao-ve", "card_groups": ["bao-ve"]},
    ],
    "schedule": [{"id": "ca-ngay", "weekly": ["Mon-Sun 06:00-20:00"]}],
    "door": [{"id": "cong-chinh", "name": "Cổng chính", "requires_anti_clone": True, "retap_seconds": 3,
              "unlock_seconds": 5, "held_open_seconds": 20}],
    "rule": [{"groups": ["so-noi-vu"], "doors": ["cong-chinh"], "schedule": "ca-ngay"}],
}  # fmt: skip


class ManualClock:
    def __init__(self) -> None:
        self.t = 0

    def __call__(self) -> int:
        return self.t


def _fw_key(private: Any) -> Any:
    return cose_key.load(keys.cose_key_bytes(private.public_key()))


@pytest.fixture
def env() -> SimpleNamespace:
    s = hs.setup()
    root = _fw_key(s.root)
    tl = fw_trust.TrustList(root)
    assert tl.update(s.trust_blob) == "ok"
    crl = fw_revocation.RevocationList(root)
    assert crl.update(revocation.build(s.root, 1, hs.NOW, [1005])) == "ok"
    cfg_key = hs.rsa_key("config")
    rc = reader_config.ReaderConfig(_fw_key(cfg_key), "hn-snv-t3-01")
    assert rc.update(host_config.build(CONFIG_SRC, cfg_key, 1, hs.NOW)) == "ok"

    rig, chip = rig_chip()
    manual = ManualClock()
    board = SimBoard(rig, clock_ms=manual)
    clk = clock.Clock()
    clk.set_from_gateway(hs.NOW * 1000)  # 2026-06-01 00:00 UTC = 07:00 in Hà Nội, a Monday
    flash = NorFlash(blocks=16, block_size=4096)
    journal = Journal(flash)
    reader = card_reader.CardReader(chip, keys=ISSUER.reader_keys())
    kicks: list[int] = []
    settings = {"reader_id": "hn-snv-t3-01", "role": terminal.ROLE_DOOR, "boot_count": 1}
    term = terminal.Terminal(board, settings,
                             {"trust": tl, "revocation": crl, "config": rc}, journal, clk, reader,
                             kick=lambda: kicks.append(1))  # fmt: skip
    return SimpleNamespace(term=term, rig=rig, chip=chip, board=board, manual=manual, journal=journal,
                           kicks=kicks)


def _tap(term: terminal.Terminal, rig: Any, card: Any) -> Any:
    reinsert(rig, card)
    return term.on_read(term.reader.read())


def _records(journal: Journal) -> list[dict[int, Any]]:
    mac = hmac_sha256.Hmac(bytes(32))
    out = []
    for seq, payload in journal.peek(100):
        sealed = events.seal(mac, "hn-snv-t3-01", seq, bytes(payload))
        out.append(events.open_sealed(mac, "hn-snv-t3-01", sealed)[1])
    return out


def test_relay_is_off_until_a_granted_tap(env: SimpleNamespace) -> None:
    for t in range(0, 2000, 10):
        env.manual.t = t
        env.term.door_step()
    assert env.board.relay_history == []
    assert env.journal.depth() == 0


def test_granted_tap_unlocks_journals_and_wakes_the_uplink(env: SimpleNamespace) -> None:
    cred = hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1001))
    card = desfire(env.rig, env.chip, cred)
    env.manual.t = 1000
    fields = _tap(env.term, env.rig, card)
    assert fields[events.DECISION] == "grant", fields
    assert env.board.relay_on and env.board.relay_history == [(1000, True)]
    assert env.kicks == [1]
    rec = _records(env.journal)[-1]
    assert rec[events.KIND] == "tap" and rec[events.SERIAL] == 1001 and rec[events.ANTI_CLONE] is True
    assert rec[events.TIME_QUALITY] == events.TQ_SYNCED
    assert events.STAFF in rec and "Nguyễn Thị Hương" not in rec.values()  # never the name (Decree 13)
    # Relocks after the configured 5 s.
    for t in range(1000, 7000, 10):
        env.manual.t = t
        env.term.door_step()
    assert not env.board.relay_on


def test_revoked_and_tampered_cards_are_refused_and_journalled(env: SimpleNamespace) -> None:
    revoked = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1005)))
    assert _tap(env.term, env.rig, revoked)[events.REASON] == "revoked"
    env.rig.field.remove(revoked)
    blob = bytearray(hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1002)))
    blob[40] ^= 1
    forged = desfire(env.rig, env.chip, bytes(blob))
    assert _tap(env.term, env.rig, forged)[events.DECISION] == "deny"
    assert not env.board.relay_history
    assert [r[events.DECISION] for r in _records(env.journal)] == ["deny", "deny"]


def test_repeat_tap_uses_the_verified_cache_and_duplicates_are_one_event(env: SimpleNamespace) -> None:
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1003)))
    env.manual.t = 100
    assert _tap(env.term, env.rig, card)[events.DECISION] == "grant"
    env.manual.t = 600
    second = _tap(env.term, env.rig, card)  # within the 3 s re-tap window
    assert second[events.REASON] == "duplicate"
    assert env.term.cache.hits == 1
    assert env.journal.depth() == 1


def test_attendance_punch_once_per_minute(env: SimpleNamespace) -> None:
    env.term.role = terminal.ROLE_ATTENDANCE
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1004)))
    assert _tap(env.term, env.rig, card)[events.DECISION] == "punch"
    assert _tap(env.term, env.rig, card)[events.REASON] == "duplicate"
    assert env.journal.depth() == 1 and not env.board.relay_history  # attendance never drives a lock
    assert env.board.feedback_log[0][2][0] == "Nguyễn Thị Hương"


def test_forced_door_is_an_alarm_event(env: SimpleNamespace) -> None:
    env.board.door_open = True
    for t in range(0, 500, 10):
        env.manual.t = t
        env.term.door_step()
    kinds = [(r[events.KIND], r.get(events.ALARM), r.get(events.DETAIL)) for r in _records(env.journal)]
    assert ("alarm", "forced_open", None) in kinds
    assert not env.board.relay_history


def test_a_card_that_fails_to_read_is_not_an_event(env: SimpleNamespace) -> None:
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1006)))
    reinsert(env.rig, card)
    card.remove_after_frames(3)
    assert env.term.on_read(env.term.reader.read()) is None
    assert env.term.stats["read_failed"] == 1 and env.journal.depth() == 0
    assert env.board.feedback_log[-1][1] == "error"


def test_repeat_tap_skips_the_credential_read_after_the_chip_proves_its_key(env: SimpleNamespace) -> None:
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1007)))
    env.manual.t = 1000
    assert _tap(env.term, env.rig, card)[events.DECISION] == "grant"
    reinsert(env.rig, card)
    env.manual.t = 20_000  # beyond the re-tap window: a new event
    result = env.term.reader.read()
    assert result.ok and result.details.get("cached") is True and result.details["reads"] == 0
    assert env.term.on_read(result)[events.DECISION] == "grant"
    # A changed trust list forgets every chip: the next tap reads the card again.
    env.term.trust.seq = (env.term.trust.seq or 0) + 1
    env.term.lists_changed()
    reinsert(env.rig, card)
    assert not env.term.reader.read().details.get("cached")


def test_a_cached_chip_is_still_checked_for_revocation(env: SimpleNamespace) -> None:
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1008)))
    assert _tap(env.term, env.rig, card)[events.DECISION] == "grant"
    env.term.revocation.packed = (1008).to_bytes(7, "big")  # the card is locked meanwhile
    env.manual.t = 20_000
    reinsert(env.rig, card)
    result = env.term.reader.read()
    assert result.details.get("cached") is True
    assert env.term.on_read(result)[events.REASON] == "revoked"


def test_both_role_opens_and_clocks_in_with_one_tap(env: SimpleNamespace) -> None:
    env.term.role = terminal.ROLE_BOTH
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1009)))
    fields = _tap(env.term, env.rig, card)
    assert fields[events.DECISION] == "grant" and fields[events.PUNCH] is True
    assert env.board.relay_on
    assert _records(env.journal)[-1][events.PUNCH] is True


def test_attendance_terminal_shows_the_name_with_diacritics(env: SimpleNamespace) -> None:
    import ssd1306
    from sim.i2c_bus import SimI2C
    from sim.ssd1306_model import SSD1306Model

    bus = SimI2C()
    model = SSD1306Model()
    bus.add(0x3C, model)
    env.board.display = ssd1306.SSD1306(bus)
    env.term.role = terminal.ROLE_ATTENDANCE
    card = desfire(env.rig, env.chip, hs.mint_raw(hs.setup().issuer, hs.claims(k11=UID7, k2=1010)))
    assert _tap(env.term, env.rig, card)[events.DECISION] == "punch"
    # The screen matches what the layout module draws for this punch at 07:00 local (UTC+7).
    import terminal_display

    expected = SSD1306Model()
    bus2 = SimI2C()
    bus2.add(0x3C, expected)
    terminal_display.show_tap(ssd1306.SSD1306(bus2), "Nguyễn Thị Hương", True, "Đã chấm công",
                              "07:00 · 01/06")  # fmt: skip
    assert model.visible()
    assert model.to_ascii() == expected.to_ascii() and "#" in model.to_ascii()
