"""ISO/IEC 14443-3 and -4 through the simulated chip: REQA/WUPA/ATQA, anticollision with 4-, 7-
and 10-byte UIDs, two cards colliding, HLTA, RATS/ATS, PPS and bit rates, I-block chaining both
ways, R(NAK) re-transmission, S(WTX), S(DESELECT), card removal and corrupted answers."""

from __future__ import annotations

import sim
from sim.picc14443a import Picc14443A
from test_sim_pcd import CollReg, Desfire, ErrorReg, IsoDep, Pcd, activate, crc_a

UID7 = bytes.fromhex("04112233445566")


def field_with(*cards: object) -> tuple[sim.Rig, Pcd]:
    rig = sim.Rig(seed=3)
    for c in cards:
        rig.field.add(c)
    pcd = Pcd(rig)
    pcd.init(timeout_ms=10)
    return rig, pcd


def test_reqa_atqa_per_card_type() -> None:
    for card, atqa in (
        (sim.cards.DesfireEV3(uid=UID7), b"\x44\x03"),
        (sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4")), b"\x04\x00"),
        (sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"), size=4096), b"\x02\x00"),
        (sim.cards.Ntag(216, uid=UID7), b"\x44\x00"),
    ):
        _, pcd = field_with(card)
        rx = pcd.reqa()
        assert rx.status == "ok" and rx.data == atqa and rx.last_bits == 0


def test_anticollision_of_a_7_byte_uid_uses_the_cascade_tag() -> None:
    _, pcd = field_with(sim.cards.Ntag(213, uid=UID7))
    pcd.reqa()
    rx = pcd.transceive(b"\x93\x20")
    assert rx.data == bytes.fromhex("88041122") + bytes((0x88 ^ 0x04 ^ 0x11 ^ 0x22,))
    uid, sak = pcd.select()                   # READY accepts anticollision again
    assert uid == UID7 and sak == 0x00


def test_anticollision_of_4_and_10_byte_uids() -> None:
    _, pcd = field_with(sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4")))
    pcd.reqa()
    assert pcd.select() == (bytes.fromhex("a1b2c3d4"), 0x08)
    uid10 = bytes.fromhex("0102030405060708090a")
    _, pcd = field_with(Picc14443A(uid10, b"\x84\x00", 0x00))
    assert pcd.reqa().data == b"\x84\x00"
    assert pcd.select() == (uid10, 0x00)


def test_two_cards_collide_and_are_resolved_one_after_the_other() -> None:
    a = sim.cards.Classic(uid=bytes.fromhex("10203040"))
    b = sim.cards.Classic(uid=bytes.fromhex("10213040"))   # differs in bit 8 (byte 1, bit 0)
    _, pcd = field_with(a, b)
    rx = pcd.reqa()
    assert rx.status == "ok" and rx.data == b"\x04\x00"    # same ATQA: no collision
    pcd.wr(CollReg, 0x00)
    rx = pcd.transceive(b"\x93\x20")
    assert rx.error & 0x08                                 # CollErr
    assert rx.coll & 0x20 == 0 and rx.coll & 0x1F == 9     # first collision in the 9th bit
    assert rx.data[0] == 0x10 and rx.data[1] == 0x01       # values after the collision cleared
    assert pcd.select() == (bytes.fromhex("10213040"), 0x08)   # the 1-branch wins
    pcd.hlta()
    rx = pcd.reqa()
    assert rx.status == "ok"
    assert pcd.select() == (bytes.fromhex("10203040"), 0x08)


def test_collision_with_rx_align_counts_the_aligned_bits() -> None:
    a = sim.cards.Classic(uid=bytes.fromhex("f0000000"))
    b = sim.cards.Classic(uid=bytes.fromhex("f4000000"))   # differs in bit 2
    _, pcd = field_with(a, b)
    pcd.reqa()
    pcd.wr(CollReg, 0x00)
    # send 1 known bit (bit 0 = 0) and receive the rest aligned at bit 1
    rx = pcd.transceive(b"\x93\x21\x00", tx_last=1, rx_align=1)
    assert rx.error & 0x08 and rx.coll & 0x1F == 3         # RxAlign (1) + 2nd received bit
    assert rx.data[0] & 0x01 == 0                          # bits below RxAlign left at 0


def test_hlta_wupa_and_reqa_in_active_state() -> None:
    card = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
    _, pcd = field_with(card)
    pcd.reqa()
    pcd.select()
    assert card.state == "ACTIVE"
    assert pcd.reqa().status == "timeout"       # REQA in ACTIVE: back to IDLE, silently
    assert card.state == "IDLE"
    assert pcd.reqa().status == "ok"
    pcd.select()
    assert pcd.hlta().status == "timeout"       # HLTA is not answered
    assert card.state == "HALT"
    assert pcd.reqa().status == "timeout"       # REQA does not wake a halted card
    assert pcd.reqa(wake=True).data == b"\x04\x00"


def test_rats_ats_and_fsd_limits_the_card_frames() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, uid, ats = activate(rig, fsdi=0)      # FSD = 16 bytes
    assert uid == UID7
    assert ats == bytes.fromhex("067577810280")    # TL T0(FSCI 5) TA TB(FWI 8, SFGI 1) TC hist
    dep = IsoDep(pcd, fsc=64, fsd=16)
    status, version = Desfire(dep).cmd(0x60)
    assert status == 0 and len(version) == 28
    sizes = [len(rx.data) for _, rx in dep.log]
    assert max(sizes) <= 16 - 2                # card frames (CRC stripped) fit FSD
    assert any(frame[0] & 0xF6 == 0xA2 for frame, _ in dep.log)   # we acknowledged chains


def test_pps_switches_both_directions_to_424() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    rx = pcd.send_crc(b"\xd0\x11\x0a")         # PPS1: DSI=2, DRI=2 (424 kbit/s)
    assert rx.status == "ok" and rx.data == b"\xd0"
    assert pcd.send_crc(b"\x02\x60").status == "timeout"   # still at 106: the card hears nothing
    pcd.speed(2, crc=True)
    rig.clock.reset()
    status, _ = Desfire(IsoDep(pcd)).cmd(0x60)
    assert status == 0
    fast = rig.clock.breakdown()["air_us"]
    rig2 = sim.Rig(seed=1)
    rig2.field.add(sim.cards.DesfireEV3(uid=UID7))
    pcd2, _, _ = activate(rig2)
    rig2.clock.reset()
    Desfire(IsoDep(pcd2)).cmd(0x60)
    slow = rig2.clock.breakdown()["air_us"]
    assert fast < slow / 3


def test_pps_to_an_unsupported_rate_is_ignored_and_bitrate_max_limits_the_rig() -> None:
    card = sim.cards.DesfireEV3(uid=UID7, ta=0x11)   # only 212 both ways
    rig = sim.Rig(seed=1, bitrate_max=212)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    assert pcd.send_crc(b"\xd0\x11\x0f").status == "timeout"
    activate(rig)
    assert pcd.send_crc(b"\xd0\x11\x05").data == b"\xd0"
    pcd.speed(1, crc=True)
    assert Desfire(IsoDep(pcd)).cmd(0x60)[0] == 0


def test_chaining_towards_the_card_and_back() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    app = card.provision_app(0x010203, [bytes(16)], files=[(1, 0x00, 0xEEEE, bytes(300))])
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    dep = IsoDep(pcd)
    df = Desfire(dep)
    assert df.cmd(0x5A, b"\x03\x02\x01")[0] == 0
    payload = bytes(range(200))
    hdr = b"\x01" + b"\x00\x00\x00" + bytes((200, 0, 0))
    status, _ = df.cmd(0x3D, hdr + payload)            # 208 bytes: I-block chaining to the card
    assert status == 0
    assert bytes(app.files[1].data[:200]) == payload
    chained = [f for f, _ in dep.log if f[0] & 0x10 and f[0] & 0xE2 == 0x02]
    assert len(chained) == 3
    status, back = Desfire(dep, iso_wrap=True).cmd(0xBD, b"\x01\x00\x00\x00\xc8\x00\x00")
    assert status == 0 and back == payload


def test_r_nak_makes_the_card_resend_its_last_block() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    card.corrupt_next(1, "crc")
    rx = pcd.send_crc(b"\x02\x60")                     # I(0) GetVersion
    assert rx.status == "crc"
    rx = pcd.send_crc(b"\xb2")                         # R(NAK) with our block number 0
    assert rx.status == "ok" and rx.data[0] == 0x02 and rx.data[1] == 0xAF
    rx = pcd.send_crc(b"\xb3")                         # R(NAK) with the other number: R(ACK)
    assert rx.data == b"\xa2"
    rx = pcd.send_crc(b"\x03\xaf")                     # I(1) continues
    assert rx.data[0] == 0x03 and rx.data[1] == 0xAF


def test_wtx_requests_then_answer() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    card.wtx(2)
    dep = IsoDep(pcd)
    rig.clock.reset()
    status, data = Desfire(dep).cmd(0x60)
    assert status == 0 and len(data) == 28
    assert dep.wtx_seen == 2
    assert rig.clock.breakdown()["card_us"] > 2 * card.fwt_us() / 2


def test_deselect_halts_and_wupa_reactivates() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    rx = pcd.send_crc(b"\xc2")
    assert rx.data == b"\xc2" and card.state == "HALT"
    assert pcd.reqa().status == "timeout"
    assert pcd.reqa(wake=True).data == b"\x44\x03"


def test_card_removed_mid_transaction() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig = sim.Rig(seed=1)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    card.remove_after_frames(1)
    rx = pcd.send_crc(b"\x02\x60")
    assert rx.status == "ok"                           # it answered the last frame it heard
    assert card not in rig.field.cards and card.state == "POWER-OFF"
    assert pcd.send_crc(b"\x03\xaf").status == "timeout"
    assert pcd.reqa(wake=True).status == "timeout"


def test_corrupted_answers_set_crc_and_parity_errors() -> None:
    card = sim.cards.Ntag(213, uid=UID7)
    _, pcd = field_with(card)
    pcd.reqa()
    pcd.select()
    card.corrupt_next(1, "parity")
    rx = pcd.transceive(b"\x30\x00" + crc_a(b"\x30\x00"))
    assert rx.error & 0x02                              # ParityErr
    card.corrupt_next(1, "crc")
    pcd.wr(0x13, 0x80)                                 # RxCRCEn: the chip checks the CRC
    rx = pcd.transceive(b"\x30\x00" + crc_a(b"\x30\x00"))
    assert rx.error & 0x04 and len(rx.data) == 16      # CRCErr; CRC bytes not in the FIFO
    assert pcd.rd(ErrorReg) & 0x04
