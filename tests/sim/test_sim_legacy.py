"""MIFARE Classic 1K/4K and NTAG21x through the simulated MFRC522: MFAuthent with the key
checked against the sector trailer (Crypto1 abstracted), READ/WRITE and access bits; NTAG
GET_VERSION, READ, FAST_READ, WRITE and PWD_AUTH."""

from __future__ import annotations

import sim
from test_sim_pcd import (
    MF_AUTHENT,
    ComIrqReg,
    CommandReg,
    ErrorReg,
    FIFOLevelReg,
    Pcd,
    Status2Reg,
    crc_a,
)

UID4 = bytes.fromhex("a1b2c3d4")
UID7 = bytes.fromhex("04a1b2c3d4e5f6")
FF6 = b"\xff" * 6


def classic(size: int = 1024, uid: bytes = UID4) -> tuple[sim.Rig, Pcd, sim.cards.Classic]:
    rig = sim.Rig(seed=5)
    card = sim.cards.Classic(uid=uid, size=size)
    rig.field.add(card)
    pcd = Pcd(rig)
    pcd.init(timeout_ms=10)
    assert pcd.reqa().status == "ok"
    got, sak = pcd.select()
    assert got == uid and sak == (0x08 if size == 1024 else 0x18)
    return rig, pcd, card


def mf_authent(pcd: Pcd, key_type: int, block: int, key: bytes, uid: bytes) -> str:
    pcd.wr(CommandReg, 0)
    pcd.wr(ComIrqReg, 0x7F)
    pcd.wr(FIFOLevelReg, 0x80)
    pcd.wr_fifo(bytes((key_type, block)) + key + uid[-4:])
    pcd.wr(CommandReg, MF_AUTHENT)
    for _ in range(5000):
        irq = pcd.rd(ComIrqReg)
        if irq & 0x10:
            return "ok" if pcd.rd(Status2Reg) & 0x08 else "no-crypto"
        if irq & 0x01:
            pcd.wr(CommandReg, 0)
            return "timeout"
    return "stuck"


def read_block(pcd: Pcd, block: int) -> bytes | None:
    rx = pcd.send_crc(bytes((0x30, block)))
    return rx.data if rx.status == "ok" else None


def write_block(pcd: Pcd, block: int, data: bytes) -> bool:
    rx = pcd.transceive(bytes((0xA0, block)) + crc_a(bytes((0xA0, block))))
    if rx.status != "ok" or rx.last_bits != 4 or rx.data[0] & 0x0F != 0x0A:
        return False
    rx = pcd.transceive(data + crc_a(data))
    return rx.status == "ok" and rx.last_bits == 4 and rx.data[0] & 0x0F == 0x0A


def test_classic_auth_read_write_with_factory_keys() -> None:
    rig, pcd, card = classic()
    assert mf_authent(pcd, 0x60, 4, FF6, UID4) == "ok"
    assert pcd.rd(Status2Reg) & 0x08                            # MFCrypto1On
    assert read_block(pcd, 4) == bytes(16)
    # trailer: key A reads as zeros, access bits FF 07 80 69, key B readable (transport)
    assert read_block(pcd, 7) == bytes(6) + bytes.fromhex("ff078069") + FF6
    assert write_block(pcd, 5, bytes(range(16)))
    assert read_block(pcd, 5) == bytes(range(16))
    assert bytes(card.blocks[5]) == bytes(range(16))
    assert read_block(pcd, 8) is None                           # other sector: NAK, card idle
    assert card.state == "IDLE"
    b = rig.clock.breakdown()
    assert b["frames"] >= 2


def test_classic_wrong_key_times_out_without_crypto1() -> None:
    rig, pcd, card = classic()
    t0 = rig.clock.us
    assert mf_authent(pcd, 0x60, 4, b"\x00" * 6, UID4) == "timeout"
    assert 10000 <= rig.clock.us - t0 < 12500      # timer restarts after {Nr, Ar}
    assert not pcd.rd(Status2Reg) & 0x08
    assert not pcd.rd(ErrorReg) & 0x1F
    assert card.state == "IDLE"                                 # select again needed
    assert pcd.reqa(wake=True).status == "ok"
    assert pcd.select()[0] == UID4
    assert mf_authent(pcd, 0x61, 4, FF6, UID4) == "ok"          # key B works too


def test_classic_frames_need_crypto_consistency() -> None:
    _, pcd, card = classic()
    assert mf_authent(pcd, 0x60, 4, FF6, UID4) == "ok"
    pcd.wr(Status2Reg, 0x00)                                    # StopCrypto1 too early
    assert read_block(pcd, 4) is None                           # plain frame: noise to the card
    assert card.state == "IDLE"
    assert pcd.reqa(wake=True).status == "ok"
    pcd.select()
    assert mf_authent(pcd, 0x60, 4, FF6, UID4) == "ok"
    assert pcd.reqa(wake=True).status != "ok"                   # enciphered WUPA: no ATQA
    assert card.state == "IDLE"
    pcd.wr(Status2Reg, 0x00)
    pcd.reqa(wake=True)
    pcd.select()
    assert mf_authent(pcd, 0x60, 4, FF6, UID4) == "ok"
    pcd.hlta()                                                  # enciphered HLTA halts the card
    pcd.wr(Status2Reg, 0x00)
    assert card.state == "HALT"
    assert pcd.reqa(wake=True).data == b"\x04\x00"


def test_classic_access_bits_and_key_b_only_block() -> None:
    _, pcd, card = classic()
    ka, kb = bytes.fromhex("a0a1a2a3a4a5"), bytes.fromhex("b0b1b2b3b4b5")
    # sector 2: data blocks read/write with key B only (C1C2C3 = 011), trailer 011
    from sim.classic_card import access_bytes
    card.set_keys(2, ka, kb, access_bytes([(0, 1, 1)] * 3 + [(0, 1, 1)]))
    assert mf_authent(pcd, 0x60, 8, ka, UID4) == "ok"
    assert read_block(pcd, 8) is None                           # NAK: card back to IDLE
    pcd.wr(Status2Reg, 0x00)                                    # StopCrypto1 before WUPA
    pcd.reqa(wake=True)
    pcd.select()
    assert mf_authent(pcd, 0x61, 8, kb, UID4) == "ok"
    assert read_block(pcd, 8) == bytes(16)
    assert read_block(pcd, 11) == bytes(6) + bytes(card.blocks[11][6:10]) + bytes(6)


def test_classic_4k_big_sector_and_7_byte_uid() -> None:
    _, pcd, card = classic(4096, UID7)
    block = 128 + 16 * 3 + 7                                    # sector 35, block 7 of 16
    card.write_block(block, b"\x42" * 16)
    assert mf_authent(pcd, 0x60, block, FF6, UID7) == "ok"
    assert read_block(pcd, block) == b"\x42" * 16
    assert read_block(pcd, 128 + 16 * 3 + 15)[6:10] == bytes.fromhex("ff078069")


def ntag(model: int = 213) -> tuple[sim.Rig, Pcd, sim.cards.Ntag]:
    rig = sim.Rig(seed=6)
    card = sim.cards.Ntag(model, uid=UID7)
    rig.field.add(card)
    pcd = Pcd(rig)
    pcd.init(timeout_ms=10)
    pcd.reqa()
    assert pcd.select() == (UID7, 0x00)
    return rig, pcd, card


def test_ntag_version_read_fast_read_and_write() -> None:
    _, pcd, card = ntag(215)
    assert pcd.send_crc(b"\x60").data == bytes.fromhex("0004040201001103")
    page0 = pcd.send_crc(b"\x30\x00").data
    assert page0[0:3] == UID7[0:3] and page0[3] == 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2
    assert page0[4:8] == UID7[3:7] and page0[12:16] == bytes.fromhex("e1103e00")
    card.write_user(b"hello, simulator")
    assert pcd.send_crc(b"\x3a\x04\x07").data == b"hello, simulator"
    rx = pcd.transceive(b"\xa2\x05WXYZ" + crc_a(b"\xa2\x05WXYZ"))
    assert rx.last_bits == 4 and rx.data[0] == 0x0A
    assert pcd.send_crc(b"\x30\x04").data == b"hellWXYZimulator"
    last = card.n_pages - 1
    rx = pcd.send_crc(bytes((0x30, last)))                      # rolls over to page 0
    assert rx.data[4:8] == page0[0:4]
    rx = pcd.transceive(b"\x30\xff" + crc_a(b"\x30\xff"))       # beyond memory: NAK 0h
    assert rx.last_bits == 4 and rx.data[0] == 0x00


def test_ntag_password_protection() -> None:
    _, pcd, card = ntag(213)
    card.set_password(b"\x11\x22\x33\x44", b"\xab\xcd", auth0=0x10, prot=True)
    assert pcd.send_crc(b"\x30\x04").status == "ok"
    rx = pcd.transceive(b"\x30\x10" + crc_a(b"\x30\x10"))
    assert rx.last_bits == 4 and rx.data[0] == 0x00             # protected: NAK
    pcd.reqa(wake=True)
    pcd.select()
    rx = pcd.transceive(b"\x1b\x00\x00\x00\x00" + crc_a(b"\x1b\x00\x00\x00\x00"))
    assert rx.last_bits == 4                                    # wrong password: NAK
    pcd.reqa(wake=True)
    pcd.select()
    assert pcd.send_crc(b"\x1b\x11\x22\x33\x44").data == b"\xab\xcd"   # PACK
    assert pcd.send_crc(b"\x30\x10").status == "ok"
    pwd_page = pcd.send_crc(bytes((0x30, card.pwd_page))).data
    assert pwd_page[0:4] == bytes(4)                            # PWD reads as zeros


def test_long_frame_overflows_the_fifo_unless_drained() -> None:
    _, pcd, card = ntag(213)
    rx = pcd.send_crc(b"\x3a\x00\x2c")                          # 45 pages = 180 bytes + CRC
    assert rx.error & 0x10 and len(rx.data) == 64               # BufferOvfl
    pcd.hlta()
    assert pcd.reqa(wake=True).status == "ok"
    assert pcd.select()[0] == UID7
    # drain on HiAlert while the frame is still arriving
    cmd = b"\x3a\x00\x2c" + crc_a(b"\x3a\x00\x2c")
    pcd.wr(0x01, 0)
    pcd.wr(ComIrqReg, 0x7F)
    pcd.wr(FIFOLevelReg, 0x80)
    pcd.wr_fifo(cmd)
    pcd.wr(0x0D, 0x00)
    pcd.wr(CommandReg, 0x0C)
    pcd.wr(0x0D, 0x80)
    got = b""
    while True:
        irq = pcd.rd(ComIrqReg)
        assert not irq & 0x01, "timeout"
        if irq & 0x08:
            got += pcd.rd_fifo(pcd.rd(FIFOLevelReg))
            pcd.wr(ComIrqReg, 0x08)
        if irq & 0x20:
            got += pcd.rd_fifo(pcd.rd(FIFOLevelReg))
            break
    assert not pcd.rd(ErrorReg) & 0x10
    assert got[:-2] == bytes(card.memory[:172]) + bytes(8)      # PWD, PACK read as zeros
