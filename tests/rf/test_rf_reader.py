"""The reader's whole read path (firmware/lib/card_reader.py) against the simulator: DESFire EV3
(random and fixed UID, every bit rate), MIFARE Classic and NTAG, handed to the trust core; and
fault injection at every frame (card removed, corrupted answers, hung chip) ending in a clean
"read failed: <reason>" with the reader still working afterwards. Runs under CPython and the
MicroPython unix port."""

import card_layout
import card_reader
import cose_key
import iso14443a
import rferror
import sim
import trust
from test_rf_support import (
    ISSUER,
    LEGACY_KEY,
    UID4,
    UID7,
    classic_card,
    credential,
    desfire,
    ntag_card,
    pytest,
    reinsert,
    rig_chip,
    run_all,
    run_under_micropython,
)

VECTORS = "tests/vectors/"
NOW = 1780272000                       # the vectors' "now" (2026-06-01)
FAILURE_REASONS = (rferror.TIMEOUT, rferror.CRC, rferror.PROTOCOL, rferror.CARD_REMOVED, rferror.CHIP,
                   rferror.AUTH, rferror.INTEGRITY, rferror.STATUS, rferror.COLLISION, rferror.NO_CARD,
                   rferror.TOO_LONG, rferror.UNSUPPORTED)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def reader_for(chip, **kw):
    return card_reader.CardReader(chip, keys=ISSUER.reader_keys(), legacy_key=LEGACY_KEY, **kw)


def test_desfire_read_every_bit_rate() -> None:
    cred = credential(400)
    for random_uid in (True, False):
        for kbps in (106, 212, 424, 848):
            rig, chip = rig_chip()
            card = desfire(rig, chip, cred, random_uid=random_uid)
            r = reader_for(chip, max_kbps=kbps).poll()
            assert r.ok, r
            assert r.tech == "desfire" and r.anti_clone
            assert r.credential == cred and r.uid == UID7
            assert r.bitrate == (kbps, kbps)
            assert (len(r.anticollision_uid) == 4) == random_uid
            assert card.state == sim.picc14443a.HALT            # deselected after the read


def test_desfire_size_hint_saves_a_command() -> None:
    cred = credential(400)
    rig, chip = rig_chip()
    desfire(rig, chip, cred)
    r = reader_for(chip, size_hint=400).poll()
    assert r.ok and r.credential == cred and r.details["reads"] == 1
    rig, chip = rig_chip()
    desfire(rig, chip, cred)
    r = reader_for(chip).poll()
    assert r.ok and r.credential == cred and r.details["reads"] == 2


def test_legacy_cards_are_read_without_anti_clone() -> None:
    cred = credential(300)
    rig, chip = rig_chip()
    classic_card(rig, chip, cred)
    r = reader_for(chip).poll()
    assert r.ok and r.tech == "classic" and not r.anti_clone and r.credential == cred and r.uid == UID4
    rig, chip = rig_chip()
    ntag_card(rig, chip, cred)
    r = reader_for(chip, ntag_password=True).poll()
    assert r.ok and r.tech == "ntag" and not r.anti_clone and r.credential == cred and r.uid == UID7
    assert r.details["password"]


def test_end_to_end_with_the_trust_core() -> None:
    cred = _read(VECTORS + "cred_ok_basic.cbor")
    root = cose_key.load(_read(VECTORS + "root.cose_key"))
    tl = trust.TrustList(root)
    assert tl.update(_read(VECTORS + "trust.cbor")) == "ok"
    for kind in ("desfire", "classic", "ntag"):
        rig, chip = rig_chip()
        if kind == "desfire":
            desfire(rig, chip, cred, uid=UID7, random_uid=True)
        elif kind == "classic":
            classic_card(rig, chip, cred, uid=UID7)
        else:
            ntag_card(rig, chip, cred, model=215, uid=UID7)
        r = reader_for(chip).poll()
        assert r.ok, r
        reason, _claims = card_reader.CardReader.verify(r, NOW, tl)
        assert reason == "ok", (kind, reason)
        assert r.anti_clone == (kind == "desfire")
    # the same credential on a card with another UID does not verify
    rig, chip = rig_chip()
    classic_card(rig, chip, cred, uid=UID4)
    r = reader_for(chip).poll()
    assert r.ok
    assert card_reader.CardReader.verify(r, NOW, tl)[0] == "uid_mismatch"


def test_wrong_keys_unknown_cards_and_empty_field() -> None:
    cred = credential(200)
    rig, chip = rig_chip()
    desfire(rig, chip, cred)
    other = card_layout.IssuerKeys(bytes(16), bytes(range(16)), bytes(range(1, 17)), bytes(16))
    r = card_reader.CardReader(chip, keys=other.reader_keys()).poll()
    assert not r.ok and r.reason == rferror.AUTH and not r.anti_clone and r.credential == b""
    # a blank DESFire: no CBCC application
    rig, chip = rig_chip()
    rig.field.add(sim.cards.DesfireEV3(uid=UID7))
    r = reader_for(chip).poll()
    assert r.reason == rferror.UNSUPPORTED
    # legacy cards refused when the reader holds no legacy key
    rig, chip = rig_chip()
    classic_card(rig, chip, cred)
    r = card_reader.CardReader(chip, keys=ISSUER.reader_keys()).poll()
    assert r.reason == rferror.UNSUPPORTED and r.tech == "classic"
    # nothing there
    rig, chip = rig_chip()
    rd = reader_for(chip)
    r = rd.poll()
    assert r.reason == rferror.NO_CARD and rd.failures == 0


def test_a_card_resting_on_the_reader_is_read_once() -> None:
    cred = credential(100)
    for make in (desfire, classic_card, ntag_card):
        rig, chip = rig_chip()
        make(rig, chip, cred)
        rd = reader_for(chip, max_kbps=106)
        assert rd.poll().ok
        assert rd.poll().reason == rferror.NO_CARD
        assert rd.poll(wake=True).ok                          # an explicit re-read wakes it


def test_two_cards_in_the_field() -> None:
    # A wallet with the DESFire credential card and an unrelated Classic badge: whichever is
    # selected first, the reader ends up reading the DESFire.
    cred = credential(150)
    for classic_uid in (UID4, bytes.fromhex("01020304"), bytes.fromhex("FEDCBA98")):
        rig, chip = rig_chip()
        desfire(rig, chip, cred, random_uid=False)
        rig.field.add(sim.cards.Classic(uid=classic_uid))
        r = reader_for(chip).poll()
        assert r.ok and r.tech == "desfire" and r.credential == cred, (classic_uid, r)
    # with max_cards=1 only the first selected card is tried
    rig, chip = rig_chip()
    desfire(rig, chip, cred, random_uid=False)
    rig.field.add(sim.cards.Classic(uid=bytes.fromhex("FEDCBA98")))
    rig.field.add(sim.cards.Classic(uid=bytes.fromhex("FEDCBA99")))
    r = card_reader.CardReader(chip, keys=ISSUER.reader_keys(), max_cards=1).poll()
    assert not r.ok and r.reason == rferror.UNSUPPORTED and r.tech == "classic"


def test_low_power_polling() -> None:
    cred = credential(100)
    rig, chip = rig_chip()
    rd = reader_for(chip, low_power=True)
    assert rd.poll().reason == rferror.NO_CARD
    assert not rig.field.powered                             # soft power-down between polls
    card = sim.cards.Classic(uid=UID4)
    rig.field.add(card)
    rig.field.remove(card)
    rd2 = reader_for(chip, low_power=True)
    rd2._asleep = True
    classic_card_rig = classic_card
    assert classic_card_rig is not None
    # personalise with the field on, then let the sleeping reader find it
    chip.power_up()
    c = classic_card(rig, chip, cred)
    chip.power_down()
    r = rd2.poll()
    assert r.ok and r.credential == cred, r
    assert rig.field.powered
    assert c is not None


def test_irq_pin_reader() -> None:
    cred = credential(400)
    rig, chip = rig_chip(irq=True)
    desfire(rig, chip, cred)
    r = reader_for(chip).poll()
    assert r.ok and r.credential == cred


def test_irq_pin_wait_is_not_slower_than_polling() -> None:
    # The IRQ pin is optional: with it, a read must end no later on the modelled clock than
    # the same read polling the status registers (a pin read is cheaper than an SPI poll, so
    # the wait can look more often). Once, the IRQ wait paused a growing quarter of the time
    # waited without the FIFO level polling sees, and idled 7x longer than polling.
    cred = credential(400)
    for kbps in (106, 424):
        got = {}
        for irq in (False, True):
            rig, chip = rig_chip(irq=irq)
            desfire(rig, chip, cred)
            before = rig.clock.breakdown()
            r = reader_for(chip, max_kbps=kbps).poll()
            after = rig.clock.breakdown()
            assert r.ok and r.credential == cred
            got[irq] = (after["idle_us"] - before["idle_us"], after["total_us"] - before["total_us"])
        # Since polling learns each command's answer delay, its first look usually finds the answer
        # in, and the pin wait ends within a pause of it: equal to a few tenths of a millisecond
        # per read, where the bug this guards against idled 7x longer.
        assert got[True][0] <= got[False][0] + 500, (kbps, got)
        assert got[True][1] <= got[False][1] * 1.02, (kbps, got)


def test_wtx_during_a_desfire_read() -> None:
    cred = credential(400)
    rig, chip = rig_chip()
    card = desfire(rig, chip, cred)
    card.wtx(2, wtxm=2)
    r = reader_for(chip).poll()
    assert r.ok and r.credential == cred


def _frames_of_a_read(make, **kw):
    rig, chip = rig_chip()
    make(rig, chip, credential(400))
    f0 = rig.clock.frames
    assert reader_for(chip, **kw).poll().ok
    return rig.clock.frames - f0


def _heal(rig, card, armed):
    armed[0] = False
    rig.chip_hang(False)
    card.unmute()
    if card in rig.field.cards:
        rig.field.remove(card)
    card._remove_after = -1
    card._leaving = False
    card._corrupt = []
    rig.field.add(card)


def _check_fault_then_recovery(make, inject, n_frames, step=1, **kw):
    """For every frame index: inject a fault, the read fails cleanly or succeeds; the reader
    then reads the (re-inserted, healed) card."""
    cred = credential(400)
    for k in range(0, n_frames, step):
        rig, chip = rig_chip()
        card = make(rig, chip, cred)
        rd = reader_for(chip, **kw)
        armed = inject(rig, card, k)
        t0 = rig.clock.us
        r = rd.poll()
        assert rig.clock.us - t0 < 1500000, (k, rig.clock.us - t0)
        assert isinstance(r, card_reader.ReadResult)
        if r.ok:
            assert r.credential == cred, (k, r)
        else:
            assert r.reason in FAILURE_REASONS, (k, r.reason, r.detail)
            assert r.credential == b"" and not r.anti_clone
        _heal(rig, card, armed)
        r2 = rd.poll()
        assert r2.ok and r2.credential == cred, (k, r2)


def _remove_after(rig, card, k):
    card.remove_after_frames(k)
    return [True]


def _on_frame(card, k, action):
    """Run action(answer) when the card receives its (k+1)-th frame from now on."""
    orig = card.receive
    seen = [0]
    armed = [True]

    def receive(data, nbits, speed, crypto, t):
        if not armed[0]:
            return orig(data, nbits, speed, crypto, t)
        seen[0] += 1
        hit = seen[0] == k + 1
        if hit:
            action(None)
        r = orig(data, nbits, speed, crypto, t)
        if hit and r is not None:
            action(r)
        return r

    card.receive = receive
    return armed


def _corrupt_at(rig, card, k, kind="crc"):
    def act(r):
        if r is not None:
            card._apply_corruption(r, kind)

    return _on_frame(card, k, act)


def _hang_at(rig, card, k):
    def act(r):
        if r is None:
            rig.chip_hang(True)

    return _on_frame(card, k, act)


def _mute_at(rig, card, k):
    def act(r):
        if r is None:
            card.mute()

    return _on_frame(card, k, act)


def test_faults_at_every_frame_of_a_desfire_read() -> None:
    n = _frames_of_a_read(desfire)
    for inject in (_remove_after, _corrupt_at, _hang_at, _mute_at):
        _check_fault_then_recovery(desfire, inject, n + 1)


def test_faults_at_every_frame_of_legacy_reads() -> None:
    for make in (classic_card, ntag_card):
        n = _frames_of_a_read(make)
        for inject in (_remove_after, _corrupt_at, _hang_at):
            _check_fault_then_recovery(make, inject, n + 1, step=2)


def test_parity_errors_at_106() -> None:
    def parity(rig, card, k):
        return _corrupt_at(rig, card, k, "parity")

    n = _frames_of_a_read(desfire, max_kbps=106)
    _check_fault_then_recovery(desfire, parity, n + 1, step=3, max_kbps=106)


def test_reader_survives_a_long_run_of_faults() -> None:
    cred = credential(300)
    rig, chip = rig_chip(seed=11)
    card = desfire(rig, chip, cred)
    rd = reader_for(chip)
    injections = (_remove_after, _corrupt_at, _hang_at, _mute_at)
    outcomes = []
    for i in range(24):
        armed = injections[i % 4](rig, card, (i * 5) % 17)
        r = rd.poll(wake=True)
        assert isinstance(r, card_reader.ReadResult)
        outcomes.append(r.ok)
        _heal(rig, card, armed)
    r = rd.poll(wake=True)
    assert r.ok and r.credential == cred, r
    assert chip.healthy and not all(outcomes)


def test_chip_that_stays_hung_gives_chip_errors_not_a_dead_reader() -> None:
    cred = credential(100)
    rig, chip = rig_chip(rst=False)
    card = classic_card(rig, chip, cred)
    rd = reader_for(chip)
    rig.chip_hang(True)
    for _ in range(5):
        t0 = rig.clock.us
        r = rd.poll()
        assert r.reason == rferror.CHIP, r
        assert rig.clock.us - t0 < 1000000
    rig.chip_hang(False)
    reinsert(rig, card)
    r = rd.poll()
    assert r.ok and r.credential == cred


def test_scan_then_read_a_chosen_card() -> None:
    cred = credential(120)
    rig, chip = rig_chip()
    classic_card(rig, chip, cred, uid=UID4)
    rig.field.add(sim.cards.Classic(uid=bytes.fromhex("C1A55109")))
    found = iso14443a.scan(chip)
    assert sorted(t.uid for t in found) == sorted([UID4, bytes.fromhex("C1A55109")])


def test_desfire_work_runs_while_the_card_answers() -> None:
    # The DESFire layer hands the driver work that needs no answer (RndA, the read key, the
    # session keys); the driver runs it after the frame is sent and before its answer is read.
    cred = credential(400)
    rig, chip = rig_chip()
    card = desfire(rig, chip, cred, random_uid=True)
    seen = []

    def hook(job, args):
        # the card has the frame (it is answering) and the driver has not collected the answer
        seen.append((job.__name__ if hasattr(job, "__name__") else "job", card.frames_received))
        return job(*args)

    chip.job_hook = hook
    r = reader_for(chip).poll()
    assert r.ok and r.credential == cred, r
    # RndA and the session keys of key 2; the read key with RndA (after opening GetCardUID),
    # then the session of key 1 with the ReadData command already MACed
    assert [n for n, _ in seen] == ["_key_and_nonce", "ev2_session_material", "_key_and_nonce",
                                    "_non_first_session"]
    chip.job_hook = None

    def broken(job, args):
        raise ValueError("a failing job leaves its result to be computed after the answer")

    rig2, chip2 = rig_chip()
    desfire(rig2, chip2, cred, random_uid=True)
    chip2.job_hook = broken
    r = reader_for(chip2).poll()
    assert r.ok and r.credential == cred, r


def test_learnt_answer_delays_one_look_per_frame() -> None:
    """The driver learns each command's answer delay from the chip's timer: a read that knows
    them looks at the chip once per frame (6 SPI transactions in the steady state, some 15 more
    for the timer and bit-rate writes), one that does not (cold) polls more; same credential."""
    cred = credential(400)
    for random_uid in (True, False):
        rig, chip = rig_chip()
        card = desfire(rig, chip, cred, random_uid=random_uid)
        reader = reader_for(chip, max_kbps=424, size_hint=400)
        calls = []
        for cold in (True, False, False):
            if cold:
                chip.delays = {}
            reinsert(rig, card)
            rig.clock.reset()
            r = reader.read(finish=False)
            bd = rig.clock.breakdown()
            reader.finish()
            assert r.ok and r.credential == cred, r
            calls.append((bd["spi_calls"], bd["frames"]))
        (cold_calls, frames), warm, again = calls
        assert warm == again and warm[1] == frames
        assert warm[0] < cold_calls and warm[0] <= 6 * frames + 16, calls
        assert len(chip.delays) >= 5


def test_learnt_delay_rule() -> None:
    """A fall is taken at once, a rise by a quarter, a delay beyond the cap not at all; the table
    is replaced, not changed in place."""
    _rig, chip = rig_chip()
    chip.delays = {}
    chip._learn(7, 1000, None)
    assert chip.delays == {7: 1000}
    table = chip.delays
    chip._learn(7, 600, 1000)
    assert chip.delays == {7: 600} and table == {7: 1000}
    chip._learn(7, 1000, 600)
    assert chip.delays == {7: 700}
    chip._learn(7, 9000000, 700)
    chip._learn(7, -5, 700)
    assert chip.delays == {7: 700}


if pytest is not None:

    @pytest.mark.micropython
    def test_reader_under_micropython() -> None:
        run_under_micropython("tests/rf/test_rf_reader.py", "reader")


if __name__ == "__main__":
    run_all(dict(globals()), "reader")
