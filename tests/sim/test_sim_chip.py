"""The simulated MFRC522 on its own, at register level through rig.spi / rig.cs: reset values,
SPI framing, FIFO, CRC coprocessor, self test, timer, IRQ pin, power-down, hang and recovery,
and the timing model. Facts checked are the MFRC522 data sheet's (rev. 3.9) and ISO/IEC 14443-3
Annex B's."""

from __future__ import annotations

import sim
from test_sim_pcd import (
    CALC_CRC,
    MEM,
    SOFT_RESET,
    AutoTestReg,
    BitFramingReg,
    CollReg,
    ComIEnReg,
    ComIrqReg,
    CommandReg,
    ControlReg,
    DivIrqReg,
    ErrorReg,
    FIFODataReg,
    FIFOLevelReg,
    ModeReg,
    Pcd,
    Status1Reg,
    Status2Reg,
    TCounterValRegH,
    TCounterValRegL,
    TModeReg,
    TPrescalerReg,
    TReloadRegH,
    TReloadRegL,
    TxASKReg,
    VersionReg,
    WaterLevelReg,
)

# Register reset values from the data sheet's register overview (address: value).
DATASHEET_RESET = {
    0x01: 0x20, 0x02: 0x80, 0x03: 0x00, 0x04: 0x14, 0x05: 0x00, 0x06: 0x00, 0x07: 0x21,
    0x08: 0x00, 0x0A: 0x00, 0x0B: 0x08, 0x0C: 0x10, 0x0D: 0x00, 0x11: 0x3F, 0x12: 0x00,
    0x13: 0x00, 0x14: 0x80, 0x15: 0x00, 0x16: 0x10, 0x17: 0x84, 0x18: 0x84, 0x19: 0x4D,
    0x1C: 0x62, 0x1D: 0x00, 0x1F: 0xEB, 0x21: 0xFF, 0x22: 0xFF, 0x24: 0x26, 0x26: 0x48,
    0x27: 0x88, 0x28: 0x20, 0x29: 0x20, 0x2A: 0x00, 0x2B: 0x00, 0x2C: 0x00, 0x2D: 0x00,
    0x31: 0x00, 0x32: 0x00, 0x33: 0x80, 0x34: 0x00, 0x36: 0x40, 0x38: 0x00,
}

SELFTEST_V2 = bytes.fromhex(
    "00eb66ba57bf2395d0e30d3d27895cde9d3ba700215b8982513aeb020ca50049"
    "7c844db3ccd21b815d4876d5716121a9869683 38cf9d5b6ddc15ba3e7d953b2f".replace(" ", "")
)


def crc_ref(data: bytes, preset: int) -> bytes:
    crc = preset
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


def test_reset_values_match_the_datasheet() -> None:
    pcd = Pcd(sim.Rig(seed=1))
    for addr, value in DATASHEET_RESET.items():
        assert pcd.rd(addr) == value, hex(addr)
    assert pcd.rd(CollReg) & 0xE0 == 0xA0     # 101x xxxx
    assert pcd.rd(VersionReg) == 0x92
    assert Pcd(sim.Rig(seed=1, version=0x91)).rd(VersionReg) == 0x91


def test_spi_multi_byte_read_returns_previous_address_and_writes_stay_on_one_address() -> None:
    rig = sim.Rig(seed=1)
    pcd = Pcd(rig)
    pcd.wr(WaterLevelReg, 0x21)
    # MOSI: addr(VersionReg), addr(WaterLevelReg), 00 -> MISO: X, version, waterlevel
    buf = bytearray(3)
    rig.cs(0)
    rig.spi.write_readinto(bytes((0x80 | (VersionReg << 1), 0x80 | (WaterLevelReg << 1), 0)), buf)
    rig.cs(1)
    assert buf[1:] == bytes((0x92, 0x21))
    # one address byte, then several data bytes: all go to FIFODataReg
    rig.cs(0)
    rig.spi.write(bytes((FIFODataReg << 1, 1, 2, 3, 4)))
    rig.cs(1)
    assert pcd.rd(FIFOLevelReg) == 4
    assert pcd.rd_fifo(4) == b"\x01\x02\x03\x04"
    # the closing 00h names no register: a plain read(2) after the address gives one value
    rig.cs(0)
    rig.spi.write(bytes((0x80 | (VersionReg << 1),)))
    got = rig.spi.read(2)
    rig.cs(1)
    assert got == b"\x92\x00"
    # with NSS high the chip does not drive MISO
    assert rig.spi.read(2, 0x80 | (VersionReg << 1)) == b"\xff\xff"


def test_fifo_level_overflow_flush_and_water_level_alerts() -> None:
    pcd = Pcd(sim.Rig(seed=1))
    assert pcd.rd(Status1Reg) & 0x03 == 0x01          # LoAlert, not HiAlert
    pcd.wr(ComIrqReg, 0x7F)
    pcd.wr_fifo(bytes(range(60)))
    assert pcd.rd(FIFOLevelReg) == 60
    st = pcd.rd(Status1Reg)
    assert st & 0x02 and not st & 0x01                 # 64 - 60 <= 8: HiAlert
    assert pcd.rd(ComIrqReg) & 0x08                    # HiAlertIRq latched
    pcd.wr_fifo(bytes(10))
    assert pcd.rd(FIFOLevelReg) == 64
    assert pcd.rd(ErrorReg) & 0x10                     # BufferOvfl
    assert pcd.rd(ComIrqReg) & 0x02                    # ErrIRq
    assert pcd.rd_fifo(3) == b"\x00\x01\x02"
    pcd.wr(FIFOLevelReg, 0x80)                         # FlushBuffer
    assert pcd.rd(FIFOLevelReg) == 0
    assert not pcd.rd(ErrorReg) & 0x10
    pcd.wr(ComIrqReg, 0x04)
    pcd.wr(WaterLevelReg, 0x00)
    pcd.wr_fifo(b"\x01")
    assert pcd.rd_fifo(1) == b"\x01"
    assert pcd.rd(ComIrqReg) & 0x04                    # LoAlertIRq on reaching the level


def test_set1_semantics_of_irq_registers() -> None:
    pcd = Pcd(sim.Rig(seed=1))
    pcd.wr(ComIrqReg, 0x7F)
    assert pcd.rd(ComIrqReg) == 0x00
    pcd.wr(ComIrqReg, 0x80 | 0x21)
    assert pcd.rd(ComIrqReg) == 0x21
    pcd.wr(ComIrqReg, 0x01)
    assert pcd.rd(ComIrqReg) == 0x20
    pcd.wr(DivIrqReg, 0x80 | 0x04)
    assert pcd.rd(DivIrqReg) == 0x04


def test_calc_crc_matches_crc_a_vectors_and_honours_crc_preset() -> None:
    pcd = Pcd(sim.Rig(seed=1))
    pcd.wr(ModeReg, 0x3D)                              # CRCPreset 01: 6363h (CRC_A)
    assert pcd.calc_crc(b"\x00\x00") == bytes.fromhex("a01e")   # ISO/IEC 14443-3 Annex B
    assert pcd.calc_crc(b"\x12\x34") == bytes.fromhex("26cf")
    assert pcd.calc_crc(b"\x93\x70\x88\x04\x11\x22\xbf") == crc_ref(b"\x93\x70\x88\x04\x11\x22\xbf",
                                                                   0x6363)
    assert pcd.rd(Status1Reg) & 0x20                   # CRCReady
    pcd.wr(ModeReg, 0x3F)                              # reset value: preset FFFFh
    assert pcd.calc_crc(b"\x12\x34") == crc_ref(b"\x12\x34", 0xFFFF)


def test_digital_self_test_gives_the_datasheet_bytes() -> None:
    pcd = Pcd(sim.Rig(seed=1))
    pcd.wr(CommandReg, SOFT_RESET)
    pcd.wr_fifo(bytes(25))
    pcd.wr(CommandReg, MEM)
    pcd.wr(AutoTestReg, 0x09)
    pcd.wr_fifo(b"\x00")
    pcd.wr(CommandReg, CALC_CRC)
    n = 0
    while pcd.rd(FIFOLevelReg) < 64 and n < 100:
        n += 1
    assert pcd.rd_fifo(64) == SELFTEST_V2
    pcd.wr(CommandReg, 0)
    pcd.wr(AutoTestReg, 0x00)


def test_mem_buffer_survives_soft_reset_and_generate_random_id_is_seeded() -> None:
    def random_id(seed: int) -> bytes:
        pcd = Pcd(sim.Rig(seed=seed))
        pcd.wr(CommandReg, 0x02)
        pcd.wr(CommandReg, MEM)                        # empty FIFO: buffer -> FIFO
        return pcd.rd_fifo(pcd.rd(FIFOLevelReg))

    pcd = Pcd(sim.Rig(seed=1))
    pcd.wr_fifo(bytes(range(1, 26)))
    pcd.wr(CommandReg, MEM)
    assert pcd.rd(ComIrqReg) & 0x10                    # IdleIRq: Mem terminates by itself
    pcd.wr(CommandReg, SOFT_RESET)
    pcd.wr(CommandReg, MEM)
    assert pcd.rd_fifo(pcd.rd(FIFOLevelReg)) == bytes(range(1, 26))
    a, b = random_id(7), random_id(7)
    assert a == b and len(a) == 25 and a[:10] != bytes(10)
    assert random_id(8)[:10] != a[:10]


def test_timer_fires_after_the_programmed_time() -> None:
    rig = sim.Rig(seed=1)
    pcd = Pcd(rig)
    # TPrescaler = 0x0A9: f_timer = 13.56 MHz / 339 = 40 kHz; TReload 399 -> 400 ticks = 10 ms
    pcd.wr(TModeReg, 0x00)
    pcd.wr(TPrescalerReg, 0xA9)
    pcd.wr(TReloadRegH, 0x01)
    pcd.wr(TReloadRegL, 0x8F)
    pcd.wr(ComIrqReg, 0x7F)
    start = rig.clock.us
    pcd.wr(ControlReg, 0x40)                           # TStartNow
    assert pcd.rd(Status1Reg) & 0x08                   # TRunning
    first = (pcd.rd(TCounterValRegH) << 8) | pcd.rd(TCounterValRegL)
    assert 390 <= first <= 399
    while not pcd.rd(ComIrqReg) & 0x01:
        assert rig.clock.us - start < 20000
    elapsed = rig.clock.us - start
    assert 10000 <= elapsed < 10100
    assert not pcd.rd(Status1Reg) & 0x08
    # TAutoRestart: fires again one period later
    pcd.wr(TModeReg, 0x10)
    pcd.wr(ComIrqReg, 0x01)
    t0 = rig.clock.us
    pcd.wr(ControlReg, 0x40)
    while not pcd.rd(ComIrqReg) & 0x01:
        pass
    pcd.wr(ComIrqReg, 0x01)
    while not pcd.rd(ComIrqReg) & 0x01:
        pass
    assert 20000 <= rig.clock.us - t0 < 20200
    assert pcd.rd(Status1Reg) & 0x08
    pcd.wr(ControlReg, 0x80)                           # TStopNow
    assert not pcd.rd(Status1Reg) & 0x08


def test_no_card_and_muted_card_end_in_timer_irq_after_the_timeout() -> None:
    for muted in (False, True):
        rig = sim.Rig(seed=1)
        card = sim.cards.Ntag(215, uid=bytes.fromhex("04a1b2c3d4e5f6"))
        if muted:
            rig.field.add(card)
            card.mute()
        pcd = Pcd(rig)
        pcd.init(timeout_ms=25)
        t0 = rig.clock.us
        rx = pcd.reqa()
        assert rx.status == "timeout" and rx.irq & 0x01 and not rx.irq & 0x20
        assert 25000 <= rig.clock.us - t0 < 26000
        assert rig.clock.breakdown()["timeout_us"] > 24000
        card.unmute()
        if muted:
            assert pcd.reqa().data == b"\x44\x00"


def test_antenna_off_means_no_field() -> None:
    rig = sim.Rig(seed=1)
    card = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
    rig.field.add(card)
    pcd = Pcd(rig)
    pcd.init()
    assert card.state == "IDLE"
    pcd.antenna(False)
    assert card.state == "POWER-OFF" and not rig.field.powered
    assert pcd.reqa().status == "timeout"
    pcd.antenna(True)
    assert pcd.reqa().data == b"\x04\x00"


def test_irq_pin_follows_enable_bits_and_irqinv_and_calls_handlers() -> None:
    rig = sim.Rig(seed=1)
    rig.field.add(sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4")))
    pcd = Pcd(rig)
    pcd.init()
    edges: list[int] = []
    rig.irq.init(rig.irq.IN)
    rig.irq.irq(handler=lambda p: edges.append(p.value()), trigger=rig.irq.IRQ_FALLING)
    pcd.wr(ComIEnReg, 0x80 | 0x20)                     # IRqInv, RxIEn
    pcd.wr(ComIrqReg, 0x7F)
    assert rig.irq.value() == 1
    assert pcd.reqa().status == "ok"
    assert rig.irq.value() == 0                        # active low while RxIRq pending
    assert edges == [0]
    pcd.wr(ComIrqReg, 0x20)
    assert rig.irq.value() == 1
    pcd.wr(ComIEnReg, 0x20)                            # not inverted: active high
    pcd.wr(ComIrqReg, 0x80 | 0x20)
    assert rig.irq.value() == 1
    assert pcd.rd(Status1Reg) & 0x10                   # Status1Reg.IRq


def test_chip_hang_recovers_only_by_hard_reset() -> None:
    rig = sim.Rig(seed=1)
    card = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
    rig.field.add(card)
    pcd = Pcd(rig)
    pcd.init()
    pcd.wr(WaterLevelReg, 0x11)
    rig.chip_hang(True)
    seen = {pcd.rd(VersionReg) for _ in range(20)}
    assert seen <= {0x00, 0xFF} and 0x92 not in seen
    pcd.wr(CommandReg, SOFT_RESET)                     # ignored by a hung chip
    frames = card.frames_received
    rx = pcd.reqa()
    assert rx.status != "ok" or rx.data != b"\x04\x00"
    assert card.frames_received == frames              # nothing reached the air
    assert pcd.rd(VersionReg) != 0x92
    before = rig.clock.breakdown()["reset_us"]
    rig.rst(0)
    assert pcd.rd(VersionReg) == 0xFF                  # powered down: MISO not driven
    assert card.state == "POWER-OFF"
    rig.rst(1)
    assert rig.clock.breakdown()["reset_us"] - before >= 537
    assert pcd.rd(VersionReg) == 0x92
    assert pcd.rd(WaterLevelReg) == 0x08               # registers back to reset values
    pcd.init()
    assert pcd.reqa().data == b"\x04\x00"
    rig.chip_hang(True, readback=0x00)
    assert pcd.rd(VersionReg) == 0x00
    rig.chip_hang(False)
    assert pcd.rd(VersionReg) == 0x92


def test_soft_power_down_switches_the_field_off() -> None:
    rig = sim.Rig(seed=1)
    card = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
    rig.field.add(card)
    pcd = Pcd(rig)
    pcd.init()
    assert card.state == "IDLE"
    pcd.wr(CommandReg, 0x10)                           # PowerDown, Idle
    assert pcd.rd(CommandReg) & 0x10
    assert card.state == "POWER-OFF"
    pcd.wr(CommandReg, 0x00)
    assert not pcd.rd(CommandReg) & 0x10
    assert card.state == "IDLE"


def test_timing_model_charges_spi_calls_and_air_time() -> None:
    rig = sim.Rig(seed=1)
    pcd = Pcd(rig)
    t0 = rig.clock.us
    pcd.rd(VersionReg)              # cs(0), one 2-byte write_readinto, cs(1)
    cost = rig.clock.us - t0
    assert abs(cost - (25.0 + 2 * 0.8 + 2 * 4.0)) < 1e-6
    rig.clock.reset()
    assert rig.clock.breakdown()["total_us"] == 0
    rig.field.add(sim.cards.Ntag(213, uid=bytes.fromhex("04a1b2c3d4e5f6")))
    pcd.init()
    pcd.reqa()
    b = rig.clock.breakdown()
    assert b["frames"] == 1 and b["rx_frames"] == 1
    # REQA: 7 bits + start + end = 9 bit periods at 128/fc; ATQA: 16 + 2 parity + 2 = 20
    assert abs(b["air_us"] - (9 + 20) * 128 / 13.56) < 1.0
    assert abs(b["card_us"] - (9 * 128 + 84) / 13.56) < 1.0
    assert abs(b["total_us"] - sum(b[k] for k in ("spi_us", "air_us", "card_us", "timeout_us",
                                                    "reset_us", "idle_us"))) < 1e-6


def test_force_100_ask_warning_and_modem_state() -> None:
    rig = sim.Rig(seed=1)
    rig.field.add(sim.cards.Ntag(213, uid=bytes.fromhex("04a1b2c3d4e5f6")))
    pcd = Pcd(rig)
    pcd.init()
    pcd.wr(TxASKReg, 0x00)
    pcd.reqa()
    assert any("Force100ASK" in w for w in rig.chip.warnings)
    assert pcd.rd(Status2Reg) & 0x07 == 0x01           # Transceive waiting for StartSend
    assert pcd.rd(BitFramingReg) & 0x80 == 0


def test_transmit_terminates_by_itself() -> None:
    rig = sim.Rig(seed=1)
    card = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
    rig.field.add(card)
    pcd = Pcd(rig)
    pcd.init()
    pcd.reqa()
    pcd.select()
    pcd.wr(ComIrqReg, 0x7F)
    pcd.wr_fifo(b"\x50\x00" + crc_ref(b"\x50\x00", 0x6363))
    pcd.wr(CommandReg, 0x04)                           # Transmit HLTA
    while not pcd.rd(ComIrqReg) & 0x10:
        pass
    assert pcd.rd(ComIrqReg) & 0x50 == 0x50            # TxIRq and IdleIRq
    assert pcd.rd(CommandReg) & 0x0F == 0
    assert card.state == "HALT"
