"""ISO/IEC 14443-4 (firmware/lib/isodep.py) against the simulator: RATS/ATS, PPS to every bit
rate, chaining both ways, R(ACK)/R(NAK) recovery, WTX, DESELECT, FWT timeouts, and hostile
cards (malformed ATS, lying or endless chaining, endless WTX, oversize frames, broken block
numbers) that must end in a clean CardError. Runs under CPython and the MicroPython unix port."""

import iso14443a
import isodep
import rferror
from sim import crc as simcrc
from sim.field import Response
from sim.picc_isodep import IsoDepCard
from test_rf_support import UID7, pytest, raises, rig_chip, run_all, run_under_micropython


class EchoCard(IsoDepCard):
    """Answers any command with the command reversed + 90 00 (long answers are chained)."""

    def __init__(self, uid=UID7, fwi=4, card_us=200.0, **kw):
        IsoDepCard.__init__(self, uid, b"\x44\x03", 0x20, fwi=fwi, **kw)
        self.card_us = card_us
        self.apdus = []
        self.answer_len = None

    def process_apdu(self, apdu):
        self.apdus.append(bytes(apdu))
        if self.answer_len is not None:
            return bytes(i & 0xFF for i in range(self.answer_len)), self.card_us
        return bytes(reversed(bytes(apdu))) + b"\x90\x00", self.card_us


def session(card, max_kbps=848, fsd=64, **kw):
    rig, chip = rig_chip()
    rig.field.add(card)
    iso14443a.activate(chip)
    dep = isodep.IsoDep(chip, fsd=fsd, **kw)
    ats = dep.activate(max_kbps)
    return rig, chip, dep, ats


def payload(n, salt=0):
    return bytes((i * 7 + salt) & 0xFF for i in range(n))


def test_rats_ats_and_timer_from_fwt() -> None:
    card = EchoCard(fwi=6, sfgi=2, fsci=8, ta=0x00)
    _rig, chip, dep, ats = session(card)
    assert card.fsd == 64                          # FSDI 5 announced in RATS
    assert ats.fwi == 6 and ats.sfgi == 2 and ats.fsc == 256 and ats.cid
    assert dep.fsc == 64                           # never more than the FIFO
    assert dep.kbps == (106, 106)                  # TA = 0: no PPS
    assert dep.exchange(b"\x01\x02") == b"\x02\x01\x90\x00"
    assert chip._timeout_us == isodep.fwt_us(6) + isodep.DELTA_FWT_US


def test_pps_to_every_bit_rate_and_exchange() -> None:
    for kbps in (106, 212, 424, 848):
        card = EchoCard(ta=0x77)
        _rig, chip, dep, _ats = session(card, max_kbps=kbps)
        assert dep.kbps == (kbps, kbps)
        assert chip.bitrate() == (kbps, kbps)
        assert card.rx_speed == card.tx_speed == {106: 0, 212: 1, 424: 2, 848: 3}[kbps]
        data = payload(300, kbps)
        assert dep.exchange(data) == bytes(reversed(data)) + b"\x90\x00"
        assert dep.deselect()
        assert chip.bitrate() == (106, 106)


def test_pps_respects_the_card_and_the_cap() -> None:
    card = EchoCard(ta=0x31)            # DS up to 4 (424), DR up to 2 (212)
    _, _, dep, _ = session(card)
    assert dep.kbps == (212, 424)       # (PCD->PICC, PICC->PCD)
    assert dep.exchange(b"abc") == b"cba\x90\x00"
    card = EchoCard(ta=0xB7)            # same D both ways required, up to 424 / 848
    _, _, dep, _ = session(card)
    assert dep.kbps == (424, 424)
    card = EchoCard(ta=0x77)
    _rig, _chip, dep, _ats = session(card, max_kbps=212)
    assert dep.kbps == (212, 212)


def test_chaining_both_ways_with_small_frames() -> None:
    for fsci, fsd in ((0, 16), (2, 32), (5, 64), (8, 64)):
        card = EchoCard(fsci=fsci)
        _rig, _chip, dep, _ats = session(card, fsd=fsd)
        for n in (1, 13, 14, 61, 62, 200, 700):
            data = payload(n, n)
            assert dep.exchange(data) == bytes(reversed(data)) + b"\x90\x00", (fsci, fsd, n)
            assert card.apdus[-1] == data


def test_response_over_the_cap_is_too_long() -> None:
    card = EchoCard()
    card.answer_len = 5000
    rig, _, dep, _ = session(card, max_response=2048)
    t0 = rig.clock.us
    raises(rferror.TOO_LONG, dep.exchange, b"\x00")
    assert rig.clock.us - t0 < 500000
    card.answer_len = 2048 - 2
    rig, _chip, dep, _ats = session(card, max_response=2048)
    assert len(dep.exchange(b"\x00")) == 2046


def test_corrupted_answers_are_recovered_at_every_position() -> None:
    data = payload(250, 3)
    want = bytes(reversed(data)) + b"\x90\x00"
    for k in range(12):
        for kind in ("crc", "parity"):
            card = EchoCard()
            _rig, _chip, dep, _ats = session(card, max_kbps=106 if kind == "parity" else 424)
            # let k good answers through, then damage one
            orig = card.receive
            count = [0]

            def receive(data_, nbits, speed, crypto, t, _o=orig, _c=count, _card=card, _k=k, _kind=kind):
                r = _o(data_, nbits, speed, crypto, t)
                if r is not None:
                    _c[0] += 1
                    if _c[0] == _k + 1:
                        _card._apply_corruption(r, _kind)
                return r

            card.receive = receive
            assert dep.exchange(data) == want, (k, kind)


def test_persistent_corruption_is_a_crc_error() -> None:
    card = EchoCard()
    _rig, _chip, dep, _ats = session(card)
    card.corrupt_next(20, "crc")
    raises(rferror.CRC, dep.exchange, payload(100))


def test_wtx_is_honoured_and_bounded() -> None:
    card = EchoCard(fwi=4)
    rig, _, dep, _ = session(card)
    card.wtx(3, wtxm=5, delay_us=isodep.fwt_us(4) * 3)       # 3x FWT each: needs WTXM to wait
    assert dep.exchange(b"\x10\x20") == b"\x20\x10\x90\x00"
    assert dep.stats_wtx == 3
    # endless WTX: bounded by max_wtx requests
    card.wtx(1000, wtxm=1, delay_us=1000)
    t0 = rig.clock.us
    raises(rferror.TIMEOUT, dep.exchange, b"\x01")
    assert rig.clock.us - t0 < 100000
    # a card asking for the maximum extension again and again: bounded by total waiting time
    card = EchoCard(fwi=10)
    rig, _chip, dep, _ats = session(card, max_wtx_wait_ms=3000)
    card.wtx(1000, wtxm=59, delay_us=1000)
    t0 = rig.clock.us
    raises(rferror.TIMEOUT, dep.exchange, b"\x01")
    assert rig.clock.us - t0 < 4000000


def test_invalid_wtxm_is_a_protocol_error() -> None:
    for wtxm in (0, 60, 63):
        card = EchoCard()
        _rig, _chip, dep, _ats = session(card)
        card.wtx(1, wtxm=wtxm, delay_us=100)
        raises(rferror.PROTOCOL, dep.exchange, b"\x01")


def test_late_answer_is_recovered_with_r_nak() -> None:
    # The card answers after FWT: the reader times out, sends R(NAK), and the card (rule 11)
    # sends its last block again, which is now complete.
    card = EchoCard(fwi=2, card_us=isodep.fwt_us(2) + isodep.DELTA_FWT_US + 3000)
    rig, _chip, dep, _ats = session(card)
    t0 = rig.clock.us
    assert dep.exchange(b"\x01\x02") == b"\x02\x01\x90\x00"
    assert dep.stats_retx >= 1
    assert rig.clock.us - t0 < 60000


def test_card_removed_during_chaining() -> None:
    for n in range(0, 9):
        card = EchoCard()
        rig, _chip, dep, _ats = session(card)
        card.remove_after_frames(n)
        t0 = rig.clock.us
        raises((rferror.CARD_REMOVED, rferror.TIMEOUT), dep.exchange, payload(400))
        assert rig.clock.us - t0 < 200000


def test_mute_card() -> None:
    card = EchoCard()
    _rig, _chip, dep, _ats = session(card)
    card.mute()
    raises(rferror.CARD_REMOVED, dep.exchange, b"\x01")
    assert not dep.active
    raises(rferror.PROTOCOL, dep.exchange, b"\x01")          # session is over


def test_deselect_halts_the_card() -> None:
    # (at 106 kbit/s: the simulator's card keeps its PPS bit rate after DESELECT, see the
    # report; ISO/IEC 14443-4 has it fall back to 106 kbit/s when deactivated)
    card = EchoCard()
    _rig, chip, dep, _ats = session(card, max_kbps=106)
    assert dep.deselect()
    from sim.picc14443a import HALT
    assert card.state == HALT
    raises(rferror.NO_CARD, iso14443a.request, chip)          # REQA: halted
    assert iso14443a.activate(chip, True).uid == UID7        # WUPA wakes it


# ---- hostile cards -------------------------------------------------------------------------

class BadAts(EchoCard):
    def __init__(self, ats_bytes):
        EchoCard.__init__(self)
        self._ats = ats_bytes

    def ats(self):
        return self._ats


def test_malformed_ats_is_a_protocol_error() -> None:
    for bad in (b"\x05\x77\x77", b"\x02\x80", b"\x04\x70\x00", b"\x10\x00", b""):
        rig, chip = rig_chip()
        rig.field.add(BadAts(bad))
        iso14443a.activate(chip)
        dep = isodep.IsoDep(chip)
        raises((rferror.PROTOCOL, rferror.CRC, rferror.TIMEOUT), dep.activate)


class EndlessChain(EchoCard):
    """Keeps chaining empty (or one-byte) I-blocks for ever."""

    def __init__(self, inf=b""):
        EchoCard.__init__(self)
        self.inf = inf

    def _next_chunk(self, card_us):
        self._tx_rest = b"x"
        return self._send(0x12 | self.bn, self.inf, card_us)


def test_endless_chaining_ends() -> None:
    for inf in (b"", b"\x01"):
        card = EndlessChain(inf)
        rig, _chip, dep, _ats = session(card)
        t0 = rig.clock.us
        raises((rferror.PROTOCOL, rferror.TOO_LONG), dep.exchange, b"\x00")
        assert rig.clock.us - t0 < 3000000


class Oversize(EchoCard):
    """Ignores the FSD the reader announced and sends 128-byte frames."""

    def _max_inf(self):
        return 125


def test_oversize_frames_are_too_long() -> None:
    card = Oversize()
    card.answer_len = 300
    _rig, chip, dep, _ats = session(card)
    raises(rferror.TOO_LONG, dep.exchange, b"\x00")
    # the reader is fine afterwards
    assert chip.alive()


class WrongBlockNumber(EchoCard):
    def _send(self, pcb, inf, card_us):
        if pcb & 0xE2 == 0x02:
            pcb ^= 1
        return IsoDepCard._send(self, pcb, inf, card_us)


class Answers(EchoCard):
    """Answers every I-block with a fixed PCB (and INF)."""

    def __init__(self, frame):
        EchoCard.__init__(self)
        self.frame = frame

    def _i_block(self, pcb, inf):
        return Response(simcrc.with_crc_a(self.frame), card_us=100.0)


def test_broken_block_protocol_is_a_protocol_error() -> None:
    cases = [WrongBlockNumber(), Answers(b"\xb2"), Answers(b"\xb3"), Answers(b"\xc2"),
             Answers(b"\xa2"), Answers(b"\xe2\x00"), Answers(b"\x0a\x00\x01"), Answers(b"\xf2")]
    for card in cases:
        rig, _chip, dep, _ats = session(card)
        t0 = rig.clock.us
        raises((rferror.PROTOCOL, rferror.CARD_REMOVED), dep.exchange, payload(30))
        assert rig.clock.us - t0 < 200000


def test_r_ack_for_the_current_block_without_chaining_is_refused() -> None:
    card = Answers(b"\xa2")          # R(ACK) with our block number, though we did not chain
    _rig, _chip, dep, _ats = session(card)
    raises(rferror.PROTOCOL, dep.exchange, b"\x01")


if pytest is not None:

    @pytest.mark.micropython
    def test_isodep_under_micropython() -> None:
        run_under_micropython("tests/rf/test_rf_isodep.py", "isodep")


if __name__ == "__main__":
    run_all(dict(globals()), "isodep")
