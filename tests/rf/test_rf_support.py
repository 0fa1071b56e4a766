"""Shared set-up for the RF stack tests (test_rf_*.py): a simulated rig with the reader's MFRC522
driver on it, cards personalised through the reader's own stack, and a tiny runner so every
test_rf_* file also runs, unchanged, under the MicroPython unix port.

The simulator (firmware/sim) is the only test double for the chip and the cards.
"""

import sys

import card_layout
import classic
import iso14443a
import isodep
import mfrc522
import ntag
import sim

try:
    import pytest
except ImportError:  # MicroPython
    pytest = None

UID7 = bytes.fromhex("04A1B2C3D4E5F6")
UID4 = bytes.fromhex("C1A55101")
ISSUER = card_layout.IssuerKeys(
    amk_master=bytes(range(0x10, 0x20)),
    read_master=bytes(range(0x20, 0x30)),
    uid_master=bytes(range(0x30, 0x40)),
    picc_master=bytes(range(0x40, 0x50)),
)
LEGACY_KEY = bytes(range(0x60, 0x70))


def credential(n=400, salt=0):
    return bytes((i * 37 + 11 + salt) & 0xFF for i in range(n))


def rig_chip(seed=1, rst=True, irq=False, version=0x92, **kw):
    """A rig and the reader's driver on it, with the modelled clock for deadlines and sleeps."""
    rig = sim.Rig(seed=seed, version=version)

    def clock():
        return int(rig.clock.us)

    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst if rst else None, rig.irq if irq else None,
                           clock_us=clock, sleep_us=rig.sleep_us, use_irq=irq, **kw)
    return rig, chip


def reinsert(rig, card):
    """Take the card out of the field and put it back (it powers up fresh)."""
    rig.field.remove(card)
    rig.field.add(card)


def desfire(rig, chip, cred, uid=UID7, random_uid=True, keys=ISSUER, **card_kw):
    """A DESFire EV3 personalised with the project layout through the reader's own stack."""
    card = sim.cards.DesfireEV3(uid=uid, **card_kw)
    rig.field.add(card)
    iso14443a.activate(chip, True)
    dep = isodep.IsoDep(chip)
    dep.activate()
    card_layout.personalise(dep, bytes(16), keys, cred, random_uid=random_uid)
    dep.deselect()
    chip.reset_protocol()
    reinsert(rig, card)
    return card


def classic_card(rig, chip, cred, uid=UID4, size=1024, key=LEGACY_KEY):
    card = sim.cards.Classic(uid=uid, size=size)
    rig.field.add(card)
    t = iso14443a.activate(chip, True)
    classic.provision(chip, t.uid, t.sak, classic.Keys(key), cred)
    iso14443a.halt(chip)
    chip.reset_protocol()
    reinsert(rig, card)
    return card


def ntag_card(rig, chip, cred, model=215, uid=UID7, key=LEGACY_KEY, protect_reads=False):
    card = sim.cards.Ntag(model=model, uid=uid)
    rig.field.add(card)
    t = iso14443a.activate(chip, True)
    ntag.provision(chip, t.uid, cred, master=key, protect_reads=protect_reads)
    iso14443a.halt(chip)
    chip.reset_protocol()
    reinsert(rig, card)
    return card


def raises(reason, fn, *args, **kw):
    """fn(*args) must raise CardError with this reason (or one of these reasons)."""
    from rferror import CardError

    try:
        fn(*args, **kw)
    except CardError as e:
        ok = e.reason in reason if isinstance(reason, tuple) else e.reason == reason
        assert ok, (e.reason, e.detail)
        return e
    raise AssertionError("no CardError")


def run_all(namespace, label):
    """The MicroPython side: call every test_ function of a module, report the count."""
    n = 0
    for name in sorted(namespace):
        if name.startswith("test_") and not name.endswith("_under_micropython"):
            namespace[name]()
            n += 1
    print("rf " + label + ": all " + str(n) + " passed")


def run_under_micropython(path, label):
    """The CPython side: run a test_rf_* file under the unix port and check it passed."""
    from support.micropython_runner import run_micropython

    p = run_micropython([path], heap="8M")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert ("rf " + label + ": all") in p.stdout, p.stdout[-2000:]


def test_support_builds_a_rig() -> None:
    rig, chip = rig_chip()
    assert chip.healthy and chip.version == 0x92
    assert rig.field.powered                 # antenna on after init
    assert sys is not None


if __name__ == "__main__":
    run_all(dict(globals()), "support")
