"""ISO/IEC 14443-3 type A (firmware/lib/iso14443a.py) against the simulator: REQA/WUPA,
cascade levels for 4-, 7- and 10-byte UIDs, BCC, SELECT/SAK, HLTA, and several cards in the
field resolved bit by bit. Runs under CPython and the MicroPython unix port."""

import iso14443a
import rferror
import sim
from sim.picc14443a import Picc14443A
from test_rf_support import UID4, UID7, pytest, raises, rig_chip, run_all, run_under_micropython

UID10 = bytes.fromhex("0411223344556677889A")


def plain_card(uid, sak=0x00, atqa=b"\x44\x00"):
    """A card that only does ISO 14443-3 (the simulator's base PICC)."""
    return Picc14443A(uid, atqa, sak)


def test_no_card() -> None:
    _rig, chip = rig_chip()
    raises(rferror.NO_CARD, iso14443a.request, chip)
    raises(rferror.NO_CARD, iso14443a.activate, chip, True)
    assert iso14443a.scan(chip) == []


def test_single_cards_of_every_uid_size() -> None:
    for uid, card in ((UID4, sim.cards.Classic(uid=UID4)),
                      (UID7, sim.cards.Ntag(model=213, uid=UID7)),
                      (UID10, plain_card(UID10, sak=0x00))):
        rig, chip = rig_chip()
        rig.field.add(card)
        t = iso14443a.activate(chip)
        assert t.uid == uid, (t.uid, uid)
        assert t.sak == card.sak and t.atqa == card.atqa
        assert not t.sak & iso14443a.SAK_CASCADE


def test_desfire_random_uid_is_four_bytes_starting_08() -> None:
    rig, chip = rig_chip()
    card = sim.cards.DesfireEV3(uid=UID7, random_uid=True)
    rig.field.add(card)
    t = iso14443a.activate(chip)
    assert len(t.uid) == 4 and t.uid[0] == 0x08 and t.iso_dep()


def test_halt_then_reqa_is_quiet_and_wupa_wakes() -> None:
    rig, chip = rig_chip()
    rig.field.add(sim.cards.Classic(uid=UID4))
    t = iso14443a.activate(chip)
    assert iso14443a.halt(chip)
    raises(rferror.NO_CARD, iso14443a.request, chip)            # REQA: halted cards stay quiet
    assert iso14443a.activate(chip, True).uid == t.uid         # WUPA wakes it


def test_select_uid_without_anticollision() -> None:
    for uid in (UID4, UID7, UID10):
        rig, chip = rig_chip()
        rig.field.add(plain_card(uid))
        rig.field.add(plain_card(bytes(len(uid) - 1) + b"\x01"))
        found = iso14443a.scan(chip)
        assert len(found) == 2
        t = iso14443a.select_uid(chip, uid)
        assert t.uid == uid


def test_several_cards_are_all_found() -> None:
    uids = [UID4, bytes.fromhex("C1A55102"), bytes.fromhex("41A55101"), UID7,
            bytes.fromhex("04A1B2C3D4E5F7"), UID10, bytes.fromhex("0811AABB")]
    rig, chip = rig_chip()
    for u in uids:
        rig.field.add(plain_card(u))
    found = iso14443a.scan(chip)
    assert sorted(t.uid for t in found) == sorted(uids)
    # all halted now
    raises(rferror.NO_CARD, iso14443a.request, chip)
    # max_cards bounds the scan
    assert len(iso14443a.scan(chip, max_cards=3)) == 3


def test_two_cards_differing_in_the_last_uid_bit() -> None:
    a = bytes.fromhex("11223344")
    b = bytes.fromhex("112233C4")        # differs in bit 31 (last bit of the CL1 UID)
    rig, chip = rig_chip()
    rig.field.add(plain_card(a))
    rig.field.add(plain_card(b))
    found = iso14443a.scan(chip)
    assert sorted(t.uid for t in found) == sorted([a, b])


def test_mixed_uid_lengths_collide_on_the_cascade_tag() -> None:
    # a 4-byte UID starting 0x88 is not allowed; one starting 0x89 collides with the cascade tag
    a = bytes.fromhex("89112233")
    rig, chip = rig_chip()
    rig.field.add(plain_card(a))
    rig.field.add(plain_card(UID7))
    rig.field.add(plain_card(UID10))
    found = iso14443a.scan(chip)
    assert sorted(t.uid for t in found) == sorted([a, UID7, UID10])


def test_corrupted_anticollision_answer_is_a_crc_error() -> None:
    rig, chip = rig_chip()
    card = plain_card(UID4)
    rig.field.add(card)
    iso14443a.request(chip)
    card.corrupt_next(1, "crc")       # BCC no longer matches
    raises(rferror.CRC, iso14443a.select, chip)
    # the card is still READY: a WUPA there is unexpected and sends it back to IDLE (no answer)
    raises(rferror.NO_CARD, iso14443a.request, chip, True)
    iso14443a.request(chip, True)
    card.corrupt_next(1, "parity")
    raises(rferror.CRC, iso14443a.select, chip)
    raises(rferror.NO_CARD, iso14443a.request, chip, True)
    assert iso14443a.activate(chip, True).uid == UID4


def test_corrupted_sak_is_a_crc_error_and_the_card_can_be_read_again() -> None:
    rig, chip = rig_chip()
    card = plain_card(UID7)
    rig.field.add(card)
    iso14443a.request(chip)
    iso14443a._anticollision_level(chip, 0x93)
    card.corrupt_next(1, "crc")
    raises(rferror.CRC, iso14443a._select_level, chip, 0x93, b"\x88" + UID7[:3])
    # the card did go ACTIVE (only its answer was damaged): WUPA is unexpected there
    raises(rferror.NO_CARD, iso14443a.request, chip, True)
    assert iso14443a.activate(chip, True).uid == UID7


def test_card_leaving_during_anticollision() -> None:
    rig, chip = rig_chip()
    card = plain_card(UID7)
    rig.field.add(card)
    card.remove_after_frames(3)            # REQA, ANTICOLL CL1, SELECT CL1 ... then gone
    raises(rferror.TIMEOUT, iso14443a.activate, chip)


def test_mute_card_is_no_card() -> None:
    rig, chip = rig_chip()
    card = plain_card(UID4)
    rig.field.add(card)
    card.mute()
    raises(rferror.NO_CARD, iso14443a.activate, chip)


if pytest is not None:

    @pytest.mark.micropython
    def test_iso14443_under_micropython() -> None:
        run_under_micropython("tests/rf/test_rf_iso14443.py", "iso14443")


if __name__ == "__main__":
    run_all(dict(globals()), "iso14443")
