"""The reader's MFRC522 driver (firmware/lib/mfrc522.py) against the simulated chip: bring-up,
self-test, timer, CRC coprocessor, bit rates, power-down, and recovery from a hung chip (the
reader must never need a reboot). Runs under CPython and, unchanged, the MicroPython unix port."""

import mfrc522
import rferror
import sim
from test_rf_support import UID4, pytest, raises, reinsert, rig_chip, run_all, run_under_micropython


def test_init_configures_the_chip() -> None:
    rig, chip = rig_chip()
    assert chip.version == 0x92 and chip.healthy
    assert chip.read(mfrc522.TX_ASK) & 0x40                 # 100 % ASK
    assert chip.read(mfrc522.MODE) & 0x03 == 0x01           # CRC preset 6363h
    assert chip.read(mfrc522.T_MODE) & 0x80                 # TAuto
    assert chip.read(mfrc522.TX_CONTROL) & 0x03 == 0x03     # antenna on
    assert chip.read(mfrc522.RF_CFG) & 0x70 == 0x70         # 48 dB
    assert rig.field.powered


def test_version_one_chip_and_self_test() -> None:
    for version in (0x91, 0x92):
        _rig, chip = rig_chip(version=version)
        assert chip.version == version
        assert chip.self_test() is True
        assert chip.healthy                                  # re-initialised afterwards


def test_timer_registers_follow_the_timeout() -> None:
    _rig, chip = rig_chip()
    for us in (1000, 5000, 77000, 600000):
        chip._set_timer(us)
        p, reload = mfrc522.timer_regs(us)
        assert chip.read(mfrc522.T_PRESCALER) == p & 0xFF
        assert chip.read(mfrc522.T_MODE) & 0x0F == p >> 8
        assert (chip.read(mfrc522.T_RELOAD_H) << 8) | chip.read(mfrc522.T_RELOAD_L) == reload


def test_timeout_costs_what_the_timer_says() -> None:
    rig, chip = rig_chip()
    chip.set_crc(False, False)
    for us in (1000, 5000, 20000):
        t0 = rig.clock.us
        raises(rferror.TIMEOUT, chip.transceive, b"\x26", us, 7)
        spent = rig.clock.us - t0
        assert us <= spent <= us * 1.3 + 600, (us, spent)


def test_crc_coprocessor_matches_crc_a() -> None:
    _rig, chip = rig_chip()
    for data in (b"\x50\x00", b"\xe0\x80", b"123456789", bytes(range(60))):
        assert chip.calc_crc(data) == mfrc522.crc_a(data)


def test_bitrate_registers() -> None:
    _rig, chip = rig_chip()
    chip.set_crc(True, True)
    for tx, rx in ((212, 212), (424, 848), (848, 106), (106, 106)):
        chip.set_bitrate(tx, rx)
        assert chip.read(mfrc522.TX_MODE) == 0x80 | mfrc522.SPEED_BITS[tx]
        assert chip.read(mfrc522.RX_MODE) == 0x80 | mfrc522.SPEED_BITS[rx]
        assert chip.bitrate() == (tx, rx)
    raises(rferror.UNSUPPORTED, chip.set_bitrate, 300)


def test_power_down_turns_the_field_off_and_back() -> None:
    rig, chip = rig_chip()
    card = sim.cards.Classic(uid=UID4)
    rig.field.add(card)
    chip.power_down()
    assert not rig.field.powered
    chip.power_up()
    assert rig.field.powered
    import iso14443a
    t = iso14443a.activate(chip)
    assert t.uid == UID4
    chip.antenna(False)
    assert not rig.field.powered
    chip.antenna(True)
    assert rig.field.powered


def test_hung_chip_is_reset_through_nrstpd() -> None:
    rig, chip = rig_chip()
    card = sim.cards.Classic(uid=UID4)
    rig.field.add(card)
    import iso14443a
    for readback in (None, 0x00, 0xFF):
        rig.chip_hang(True, readback)
        t0 = rig.clock.us
        raises(rferror.CHIP, iso14443a.activate, chip, True)
        assert rig.clock.us - t0 < 200000                   # bounded, in modelled time
        # the driver reset the chip through NRSTPD at once: the next operation works
        assert not rig.chip.hung
        chip.ensure()
        reinsert(rig, card)
        assert iso14443a.activate(chip, True).uid == UID4
    assert chip.resets >= 3 and chip.chip_faults >= 3


def test_hung_chip_without_reset_line_fails_cleanly_until_it_comes_back() -> None:
    rig, chip = rig_chip(rst=False)
    card = sim.cards.Classic(uid=UID4)
    rig.field.add(card)
    import iso14443a
    rig.chip_hang(True)
    for _ in range(3):
        t0 = rig.clock.us
        raises(rferror.CHIP, iso14443a.activate, chip, True)
        assert rig.clock.us - t0 < 1000000
        raises(rferror.CHIP, chip.ensure)                    # still hung: clean error again
    rig.chip_hang(False)
    chip.ensure()
    assert chip.healthy
    reinsert(rig, card)
    assert iso14443a.activate(chip, True).uid == UID4


def test_check_detects_a_chip_that_stopped_answering() -> None:
    rig, chip = rig_chip()
    assert chip.check()
    rig.chip_hang(True, 0x00)
    raises(rferror.CHIP, chip.check)
    assert chip.healthy                                      # reset through NRSTPD worked


def test_waits_are_bounded_by_iterations_even_if_time_stands_still() -> None:
    # A clock that never moves: only the iteration bound can end the wait.
    rig = sim.Rig(seed=3)
    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, clock_us=lambda: 0, sleep_us=lambda us: None,
                           max_polls=50)
    rig.chip_hang(True, 0x00)
    raises(rferror.CHIP, chip.transceive, b"\x26", 1000, 7)


def test_irq_pin_mode_reads_cards() -> None:
    rig, chip = rig_chip(irq=True)
    card = sim.cards.Classic(uid=UID4)
    rig.field.add(card)
    import iso14443a
    assert iso14443a.activate(chip).uid == UID4
    raises(rferror.NO_CARD, iso14443a.activate, chip)        # a selected card ignores REQA
    rig.chip_hang(True, 0xFF)
    raises(rferror.CHIP, iso14443a.activate, chip, True)


def test_timebase_from_the_rig_time_module() -> None:
    rig = sim.Rig(seed=7)
    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, timebase=rig.time)
    rig.field.add(sim.cards.Classic(uid=UID4))
    import iso14443a
    t0 = rig.clock.us
    assert iso14443a.activate(chip).uid == UID4
    assert rig.clock.us - t0 < 10000
    raises(rferror.NO_CARD, iso14443a.request, chip)      # a selected card ignores REQA


def test_constructor_survives_a_dead_chip() -> None:
    rig = sim.Rig(seed=5)
    rig.chip_hang(True, 0x00)
    chip = mfrc522.MFRC522(rig.spi, rig.cs, None, clock_us=lambda: int(rig.clock.us),
                           sleep_us=rig.sleep_us)
    assert not chip.healthy
    raises(rferror.CHIP, chip.ensure)
    rig.chip_hang(False)
    chip.ensure()
    assert chip.healthy


if pytest is not None:

    @pytest.mark.micropython
    def test_driver_under_micropython() -> None:
        run_under_micropython("tests/rf/test_rf_driver.py", "driver")


if __name__ == "__main__":
    run_all(dict(globals()), "driver")
