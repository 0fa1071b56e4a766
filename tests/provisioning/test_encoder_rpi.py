"""The Raspberry Pi encoder (provisioning/encoders/rpi.py): the project's MFRC522 driver on CPython
over ``spidev`` and ``RPi.GPIO``. Off a Pi those two modules are replaced by stand-ins that carry
each ``xfer2`` to the RF simulator's MFRC522 (chip select asserted for the transfer, as the kernel
does for CE0) and the reset line to the simulator's NRSTPD pin — only the stand-ins are fake; the
driver, the card model and the issuance are the real ones. What only a Pi can check: the kernel's
SPI timing, CE polarity and the reset wiring (docs/card-issuance.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.issuance import STAFF, STATION, database, make_issuer, uid_for
from support.rpi_stand import Stand as _Stand

from cbcc.issuance.service import issue_card
from provisioning.encoders.rfstack import blank_card
from provisioning.encoders.rpi import RpiEncoder


@pytest.fixture
def stand(monkeypatch: pytest.MonkeyPatch) -> _Stand:
    s = _Stand()
    monkeypatch.setitem(sys.modules, "spidev", s.spidev)
    monkeypatch.setitem(sys.modules, "RPi", s.rpi)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", s.gpio)
    return s


def test_issue_through_the_pi_encoder(stand: _Stand, tmp_path: Path) -> None:
    rig = stand.rig
    card = blank_card(uid_for(7))
    rig.field.add(card)
    enc = RpiEncoder(bus=0, device=1, rst=25, clock_us=lambda: int(rig.clock.us), sleep_us=rig.sleep_us)
    got = issue_card(database(tmp_path), enc, make_issuer(), STAFF[0], STATION)
    enc.close()
    assert got.uid == uid_for(7) and got.serial == 1000000
    assert card.random_uid and card.apps[0x314356].key_versions == [1, 1, 1]
    assert stand.opened == [(0, 1), (-1, -1)]
    assert stand.gpio_out[0] == (25, 1)  # the reset line starts high: the chip is never held in reset


def test_without_a_pi_the_encoder_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioning.encoders.base import EncoderError

    monkeypatch.setitem(sys.modules, "spidev", None)
    with pytest.raises(EncoderError, match=r"spidev and RPi\.GPIO"):
        RpiEncoder()
