"""Legacy cards against the simulator: MIFARE Classic 1K/4K (firmware/lib/classic.py: MFAuthent
with per-UID diversified sector keys, credential across sectors) and NTAG213/215/216
(firmware/lib/ntag.py: GET_VERSION, FAST_READ, diversified PWD_AUTH). Runs under CPython and
the MicroPython unix port."""

import classic
import iso14443a
import ntag
import rferror
import sim
from test_rf_support import (
    LEGACY_KEY,
    UID4,
    UID7,
    classic_card,
    credential,
    ntag_card,
    pytest,
    raises,
    reinsert,
    rig_chip,
    run_all,
    run_under_micropython,
)

OTHER_KEY = bytes(range(0x70, 0x80))


def read_classic(chip, key=LEGACY_KEY, wake=True):
    t = iso14443a.activate(chip, wake)
    try:
        return classic.read_credential(chip, t.uid, t.sak, classic.Keys(key))
    finally:
        chip.stop_crypto1()


def test_classic_1k_and_4k_round_trip() -> None:
    for size, n in ((1024, 400), (1024, classic.capacity(1024)), (4096, 1024), (4096, 40)):
        for uid in (UID4, UID7):
            rig, chip = rig_chip()
            cred = credential(n, size)
            card = classic_card(rig, chip, cred, uid=uid, size=size)
            assert read_classic(chip) == cred, (size, n, uid)
            # the trailers carry the diversified keys and the documented access bits
            s1 = card.blocks[classic.trailer_block(1)]
            assert bytes(s1[6:10]) == classic.ACCESS_BITS
            assert bytes(s1[0:6]) == classic.Keys(LEGACY_KEY).key(uid, 1)


def test_classic_wrong_master_key_is_auth_failure() -> None:
    rig, chip = rig_chip()
    classic_card(rig, chip, credential(100))
    raises(rferror.AUTH, read_classic, chip, OTHER_KEY)


def test_classic_keys_differ_per_card() -> None:
    rig, chip = rig_chip()
    card = classic_card(rig, chip, credential(100), uid=UID4)
    # the same blocks on a card with another UID do not open with this card's keys
    other = sim.cards.Classic(uid=bytes.fromhex("C1A55102"))
    for b in range(64):
        other.blocks[b][:] = card.blocks[b]
    rig.field.remove(card)
    rig.field.add(other)
    raises(rferror.AUTH, read_classic, chip)


def test_classic_transport_card_has_no_credential() -> None:
    rig, chip = rig_chip()
    rig.field.add(sim.cards.Classic(uid=UID4))
    raises(rferror.AUTH, read_classic, chip)                  # transport keys, not ours
    reinsert(rig, rig.field.cards[0])
    t = iso14443a.activate(chip, True)
    classic.authenticate(chip, t.uid, 1, classic.TRANSPORT_KEY)
    assert classic.read_block(chip, 4) == bytes(16)
    chip.stop_crypto1()


def test_classic_lying_length_header() -> None:
    for n in (0, classic.capacity(1024) + 1, 0xFFFF):
        rig, chip = rig_chip()
        card = classic_card(rig, chip, credential(50))
        card.blocks[4][2] = n >> 8
        card.blocks[4][3] = n & 0xFF
        raises(rferror.TOO_LONG, read_classic, chip)
    rig, chip = rig_chip()
    card = classic_card(rig, chip, credential(50))
    card.blocks[4][0] = 0x00
    raises(rferror.UNSUPPORTED, read_classic, chip)


def test_classic_credential_too_big_to_provision() -> None:
    rig, chip = rig_chip()
    card = sim.cards.Classic(uid=UID4)
    rig.field.add(card)
    t = iso14443a.activate(chip, True)
    raises(rferror.TOO_LONG, classic.provision, chip, t.uid, t.sak, classic.Keys(LEGACY_KEY),
           credential(classic.capacity(1024) + 1))


def test_classic_reprovisioning_with_old_keys() -> None:
    rig, chip = rig_chip()
    card = classic_card(rig, chip, credential(300))
    t = iso14443a.activate(chip, True)
    new = credential(200, 9)
    classic.provision(chip, t.uid, t.sak, classic.Keys(OTHER_KEY), new, old_keys=classic.Keys(LEGACY_KEY))
    reinsert(rig, card)
    assert read_classic(chip, OTHER_KEY) == new


def test_classic_card_leaving_mid_read() -> None:
    for n in range(3, 14):
        rig, chip = rig_chip()
        card = classic_card(rig, chip, credential(400))
        card.remove_after_frames(n)
        raises((rferror.TIMEOUT, rferror.AUTH, rferror.NO_CARD), read_classic, chip)


def test_classic_corrupted_block_is_crc_error() -> None:
    rig, chip = rig_chip()
    card = classic_card(rig, chip, credential(400))
    t = iso14443a.activate(chip, True)
    classic.authenticate(chip, t.uid, 1, classic.Keys(LEGACY_KEY).key(t.uid, 1))
    card.corrupt_next(1, "crc")
    raises(rferror.CRC, classic.read_block, chip, 4)


# ---- NTAG ----------------------------------------------------------------------------------

def read_ntag(chip, key=None, wake=True):
    t = iso14443a.activate(chip, wake)
    return ntag.read_credential(chip, t.uid, key)


def test_ntag_models_round_trip() -> None:
    for model, n in ((213, 140), (215, 400), (215, 500), (216, 884), (216, 1)):
        rig, chip = rig_chip()
        cred = credential(n, model)
        ntag_card(rig, chip, cred, model=model)
        got, tag = read_ntag(chip)
        assert got == cred and tag.model == model
        reinsert(rig, rig.field.cards[0])
        got, tag = read_ntag(chip, LEGACY_KEY)               # with the diversified password
        assert got == cred


def test_ntag_password_protection() -> None:
    rig, chip = rig_chip()
    cred = credential(300)
    card = ntag_card(rig, chip, cred, protect_reads=True)
    pwd, _pack = ntag.password(LEGACY_KEY, UID7)
    assert card.page(card.pwd_page) == pwd
    assert card.auth0() == ntag.FIRST_PAGE
    # without the password the user memory cannot be read
    raises(rferror.STATUS, read_ntag, chip)
    reinsert(rig, card)
    got, _ = read_ntag(chip, LEGACY_KEY)
    assert got == cred
    reinsert(rig, card)
    raises(rferror.AUTH, read_ntag, chip, OTHER_KEY)


def test_ntag_capacity_and_lying_header() -> None:
    rig, chip = rig_chip()
    card = sim.cards.Ntag(model=213, uid=UID7)
    rig.field.add(card)
    t = iso14443a.activate(chip, True)
    raises(rferror.TOO_LONG, ntag.provision, chip, t.uid, credential(141))
    for n in (0, 141, 5000):
        rig, chip = rig_chip()
        card = ntag_card(rig, chip, credential(100), model=213)
        card.memory[16 + 2] = n >> 8
        card.memory[16 + 3] = n & 0xFF
        raises(rferror.TOO_LONG, read_ntag, chip)
    rig, chip = rig_chip()
    card = sim.cards.Ntag(model=215, uid=UID7)                 # factory content: an empty NDEF TLV
    rig.field.add(card)
    raises(rferror.UNSUPPORTED, read_ntag, chip)


def test_ntag_get_version_identifies_the_model() -> None:
    for model in (213, 215, 216):
        rig, chip = rig_chip()
        rig.field.add(sim.cards.Ntag(model=model, uid=UID7))
        iso14443a.activate(chip)
        tag = ntag.get_version(chip)
        assert tag.model == model and tag.user_bytes == ntag.MODELS[tag.version[6]][1]


def test_ntag_card_leaving_mid_read() -> None:
    for n in range(3, 10):
        rig, chip = rig_chip()
        card = ntag_card(rig, chip, credential(480))
        card.remove_after_frames(n)
        raises((rferror.TIMEOUT, rferror.NO_CARD), read_ntag, chip, LEGACY_KEY)


if pytest is not None:

    @pytest.mark.micropython
    def test_legacy_under_micropython() -> None:
        run_under_micropython("tests/rf/test_rf_legacy.py", "legacy")


if __name__ == "__main__":
    run_all(dict(globals()), "legacy")
