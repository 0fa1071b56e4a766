"""Pure logic of the RF stack (no chip): CRC_A, BCC, timer prescaler/reload, FWT/SFGT, ATS
parsing, PPS choice, UID cascade split, Classic/NTAG layouts and key diversification.

The same file runs under CPython (pytest) and under the MicroPython unix port
(`micropython tests/rf/test_rf_logic.py` runs every test_ function; see test_logic_under_micropython).
"""

import iso14443a
import isodep
import mfrc522
import rferror
from rferror import CardError

try:
    import pytest
except ImportError:  # MicroPython
    pytest = None


def _raises(reason, fn, *args):
    try:
        fn(*args)
    except CardError as e:
        assert e.reason == reason, (e.reason, e.detail)
        return e
    raise AssertionError("no CardError")


# ---- CRC_A (ISO/IEC 14443-3 annex B) and BCC ----------------------------------------------

def test_crc_a_vectors() -> None:
    # annex B examples: 00 00 -> CRC_A A0 1E on air; 12 34 -> 26 CF
    assert mfrc522.crc_a(b"\x00\x00") == b"\xa0\x1e"
    assert mfrc522.crc_a(b"\x12\x34") == b"\x26\xcf"
    # frames as seen on air: HLTA 50 00 57 CD, RATS E0 80 31 73
    assert mfrc522.crc_a(b"\x50\x00") == b"\x57\xcd"
    assert mfrc522.crc_a(b"\xe0\x80") == b"\x31\x73"
    # catalogue check value of CRC-16/ISO-IEC-14443-3-A over "123456789": 0xBF05
    assert mfrc522.crc_a(b"123456789") == b"\x05\xbf"


def test_bcc() -> None:
    assert iso14443a.bcc(b"\x88\x04\x12\x34") == 0x88 ^ 0x04 ^ 0x12 ^ 0x34
    assert iso14443a.bcc(b"\x00\x00\x00\x00") == 0


def test_uid_levels() -> None:
    assert iso14443a.uid_levels(b"\x01\x02\x03\x04") == [b"\x01\x02\x03\x04"]
    u7 = bytes(range(1, 8))
    assert iso14443a.uid_levels(u7) == [b"\x88\x01\x02\x03", b"\x04\x05\x06\x07"]
    u10 = bytes(range(1, 11))
    assert iso14443a.uid_levels(u10) == [b"\x88\x01\x02\x03", b"\x88\x04\x05\x06", b"\x07\x08\x09\x0a"]
    _raises(rferror.PROTOCOL, iso14443a.uid_levels, b"\x01\x02\x03")


# ---- MFRC522 timer (data sheet 8.5: f_timer = 13.56 MHz / (2*TPreScaler + 1)) ---------------

def test_timer_covers_timeout_tightly() -> None:
    for us in (1, 86, 500, 1000, 4833, 5286, 77000, 300000, 304000, 305000, 1000000, 4949000):
        p, reload = mfrc522.timer_regs(us)
        assert 0 <= p <= 0xFFF and 1 <= reload <= 0xFFFF
        got = (2 * p + 1) * (reload + 1) / 13.56  # microseconds
        assert got >= us - 0.01, (us, p, reload, got)
        # never more than one tick too long (the reload floor is 1: two ticks)
        if reload > 1:
            assert got - us <= (2 * p + 1) / 13.56 + 1, (us, p, reload, got)


def test_timer_keeps_default_prescaler_below_300ms() -> None:
    for us in (100, 5000, 77000, 300000):
        assert mfrc522.timer_regs(us)[0] == mfrc522.PRESCALER_DEFAULT
    assert mfrc522.timer_regs(1000000)[0] > mfrc522.PRESCALER_DEFAULT


def test_timer_example_from_datasheet_formula() -> None:
    # TPrescaler 0xA9 (169): 13.56 MHz / 339 = 40 kHz, 25 us a tick; reload 999 -> 25 ms
    assert mfrc522.timer_us(169, 999) == 25000


def test_timer_clamps() -> None:
    p, reload = mfrc522.timer_regs(10 ** 9)
    assert mfrc522.MAX_TIMEOUT_US <= mfrc522.timer_us(p, reload) <= mfrc522.MAX_TIMEOUT_US + 1000
    assert mfrc522.timer_regs(0)[1] >= 1


# ---- ISO/IEC 14443-4 timing -------------------------------------------------------------

def test_fwt_and_sfgt() -> None:
    assert isodep.fwt_us(0) == 303          # 4096 / 13.56 MHz = 302.06 us
    assert isodep.fwt_us(4) == 4834
    assert isodep.fwt_us(8) == 77329
    assert isodep.fwt_us(14) == 4949032
    assert isodep.sfgt_us(0) == 0
    assert isodep.sfgt_us(1) == 605
    assert isodep.FWT_ACTIVATION_US == 5287
    assert isodep.DELTA_FWT_US == 3625


def test_fsdi() -> None:
    assert isodep.fsdi_for(64) == 5
    assert isodep.fsdi_for(63) == 4
    assert isodep.fsdi_for(256) == 8
    assert isodep.fsdi_for(16) == 0


# ---- ATS ----------------------------------------------------------------------------------

DESFIRE_EV3_ATS = bytes.fromhex("067777710280")   # TL 6, T0 77: FSCI 7, TA 77, TB 71, TC 02, hist 80


def test_parse_ats_desfire() -> None:
    a = isodep.parse_ats(DESFIRE_EV3_ATS)
    assert a.fsci == 7 and a.fsc == 128
    assert a.ta == 0x77 and a.fwi == 7 and a.sfgi == 1
    assert a.cid and not a.nad
    assert a.hist == b"\x80"
    assert a.ds == (1, 2, 4, 8) and a.dr == (1, 2, 4, 8)
    assert not a.same_d


def test_parse_ats_minimal_defaults() -> None:
    a = isodep.parse_ats(b"\x01")
    assert a.fsc == 32 and a.fwi == 4 and a.sfgi == 0 and a.ds == (1,) and a.dr == (1,)
    a = isodep.parse_ats(b"\x02\x05")                 # T0 only, FSCI 5
    assert a.fsc == 64 and a.ta == 0


def test_parse_ats_rfu_values() -> None:
    a = isodep.parse_ats(b"\x04\x3f\x08\xff")        # TA b4 set -> 106 only; FWI/SFGI 15 -> defaults
    assert a.ds == (1,) and a.dr == (1,)
    assert a.fwi == 4 and a.sfgi == 0
    assert a.fsc == 256                              # FSCI 15 (RFU) read as 256


def test_parse_ats_malformed() -> None:
    for bad in (b"", b"\x05\x77", b"\x02", b"\x03\x70\x00", b"\x02\x80", b"\x04\x77\x77\x71",
                b"\xff" + bytes(10)):
        _raises(rferror.PROTOCOL, isodep.parse_ats, bad)


def test_choose_divisors() -> None:
    a = isodep.parse_ats(DESFIRE_EV3_ATS)
    assert isodep.choose_divisors(a, 848) == (8, 8)
    assert isodep.choose_divisors(a, 424) == (4, 4)
    assert isodep.choose_divisors(a, 212) == (2, 2)
    assert isodep.choose_divisors(a, 106) is None
    # asymmetric card: PICC->PCD up to 424, PCD->PICC up to 212
    b = isodep.parse_ats(b"\x03\x10\x31")
    assert b.ds == (1, 2, 4) and b.dr == (1, 2)
    assert isodep.choose_divisors(b, 848) == (4, 2)
    # same divisor required
    c = isodep.parse_ats(b"\x03\x10\xb1")
    assert isodep.choose_divisors(c, 848) == (2, 2)
    d = isodep.parse_ats(b"\x03\x10\x00")
    assert isodep.choose_divisors(d, 848) is None


def test_pps_frame() -> None:
    assert isodep.pps_frame(4, 4) == b"\xd0\x11\x0a"
    assert isodep.pps_frame(8, 2) == b"\xd0\x11\x0d"
    assert isodep.pps_frame(2, 8) == b"\xd0\x11\x07"


# ---- legacy layouts ----------------------------------------------------------------------

def test_classic_geometry() -> None:
    import classic
    assert classic.sector_first_block(1) == 4
    assert classic.trailer_block(1) == 7
    assert classic.sector_data_blocks(31) == [124, 125, 126]
    assert classic.sector_first_block(32) == 128
    assert classic.trailer_block(32) == 143
    assert classic.trailer_block(39) == 255
    assert classic.capacity(1024) == 15 * 48 - 4
    assert classic.capacity(4096) == 31 * 48 + 8 * 240 - 4
    assert classic.size_from_sak(0x08) == 1024 and classic.size_from_sak(0x18) == 4096
    assert classic.auth_uid(bytes(range(7))) == bytes(range(3, 7))


def test_classic_access_bits_encode_the_documented_conditions() -> None:
    import classic
    b6, b7, b8 = classic.ACCESS_BITS[0], classic.ACCESS_BITS[1], classic.ACCESS_BITS[2]
    c1, c2, c3 = b7 >> 4, b8 & 0x0F, b8 >> 4
    assert b6 & 0x0F == (~c1) & 0x0F and b6 >> 4 == (~c2) & 0x0F and b7 & 0x0F == (~c3) & 0x0F
    cond = [((c1 >> i) & 1, (c2 >> i) & 1, (c3 >> i) & 1) for i in range(4)]
    assert cond[:3] == [(1, 0, 0)] * 3      # data: read A|B, write B
    assert cond[3] == (0, 1, 1)             # trailer: keys and access bits written with key B


def test_classic_keys_diversified() -> None:
    import aes
    import classic
    master = bytes(range(16))
    k = classic.Keys(master)
    uid = b"\x11\x22\x33\x44"
    a1 = k.key(uid, 1)
    assert len(a1) == 6
    assert a1 == aes.cmac(master, b"\x01CBCC-MFC" + uid + b"\x01")[:6]
    assert k.key(uid, 1, classic.KEY_B) == aes.cmac(master, b"\x02CBCC-MFC" + uid + b"\x01")[:6]
    assert a1 != k.key(uid, 2) and a1 != k.key(b"\x11\x22\x33\x45", 1)


def test_ntag_password() -> None:
    import aes
    import ntag
    master = bytes(range(16))
    uid = bytes(range(7))
    pwd, pack = ntag.password(master, uid)
    t = aes.cmac(master, b"\x03CBCC-NTAG" + uid)
    assert pwd == t[:4] and pack == t[4:6]


def test_tech_for_sak() -> None:
    import card_reader
    assert card_reader.tech_for_sak(0x20) == "desfire"
    assert card_reader.tech_for_sak(0x28) == "desfire"
    assert card_reader.tech_for_sak(0x08) == "classic"
    assert card_reader.tech_for_sak(0x18) == "classic"
    assert card_reader.tech_for_sak(0x00) == "ntag"
    assert card_reader.tech_for_sak(0x04) is None
    assert card_reader.tech_for_sak(0x40) is None


if pytest is not None:

    @pytest.mark.micropython
    def test_logic_under_micropython() -> None:
        from support.micropython_runner import run_micropython

        p = run_micropython(["tests/rf/test_rf_logic.py"])
        assert p.returncode == 0, p.stdout + p.stderr
        assert "rf logic: all" in p.stdout, p.stdout


if __name__ == "__main__":
    _n = 0
    for _name in sorted(dir()):
        if _name.startswith("test_") and _name != "test_logic_under_micropython":
            globals()[_name]()
            _n += 1
    print("rf logic: all " + str(_n) + " passed")
