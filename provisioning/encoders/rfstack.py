"""An encoder built on the reader's own RF stack (``mfrc522`` → ``iso14443a`` → ``isodep``) on CPython.

Two uses: the **virtual encoder** (the MFRC522 and the cards are the RF simulator, ``firmware/sim``,
with its timing model; tests, the benchmark and ``cbcc demo``) and the **Raspberry Pi encoder**
(the same driver over ``spidev`` and ``RPi.GPIO``, :mod:`provisioning.encoders.rpi`). The driver
is the one that runs on the ESP32 reader, so the frames a card sees from the issuing station are
the frames a door reader sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from messages import _
from provisioning import fw
from provisioning.encoders.base import (
    CARD_LINK_LOST,
    CHIP_SILENT,
    CardInfo,
    Encoder,
    EncoderError,
    LinkLost,
    NoCard,
)

# RF-stack failures that mean "the card is gone or the exchange broke": its state is unknown.
_LOST = ("timeout", "crc", "card_removed", "collision", "protocol")


class RfStackEncoder(Encoder):
    """ISO-DEP through the project's MFRC522 driver; ``chip`` is an ``mfrc522.MFRC522``."""

    name = "rf-stack"

    def __init__(self, chip: Any, max_kbps: int = 848) -> None:
        self.chip = chip
        self._iso14443a = fw.module("iso14443a")
        self._isodep = fw.module("isodep")
        self._rferror = fw.module("rferror")
        self.max_kbps = max_kbps
        self._dep: Any = None
        self._field = False

    def _error(self, e: Any) -> EncoderError:
        if e.reason == self._rferror.NO_CARD:
            return NoCard(_("no card in the field"))
        if e.reason == self._rferror.CHIP:
            return LinkLost(_(CHIP_SILENT, reason=e.detail))
        if e.reason in _LOST:
            return LinkLost(_(CARD_LINK_LOST, reason=f"{e.reason}: {e.detail}"))
        return EncoderError(_("the card exchange failed ({reason})", reason=f"{e.reason}: {e.detail}"))

    def detect(self) -> CardInfo:
        chip = self.chip
        try:
            chip.ensure()
            # a fresh power-up every time: the card starts with no session and no half-done chain
            self._iso14443a.reset_field(chip)
            self._field = True
            chip.reset_protocol()
            target = self._iso14443a.activate(chip, True)
            if not target.sak & 0x20:
                self._dep = None
                return CardInfo(bytes(target.uid), bytes(target.atqa), target.sak, b"")
            dep = self._isodep.IsoDep(chip, max_kbps=self.max_kbps)
            ats = dep.activate()
        except self._rferror.CardError as e:
            self._dep = None
            raise self._error(e) from None
        self._dep = dep
        return CardInfo(bytes(target.uid), bytes(target.atqa), target.sak, bytes(ats.raw))

    def transceive(self, apdu: bytes) -> bytes:
        if self._dep is None:
            raise LinkLost(_("no activated ISO-DEP card: present the card again"))
        try:
            return bytes(self._dep.exchange(apdu))
        except self._rferror.CardError as e:
            self._dep = None
            raise self._error(e) from None

    def field_off(self) -> None:
        self._dep = None
        if self._field:
            try:
                self.chip.antenna(False)
            except self._rferror.CardError as e:
                raise self._error(e) from None
            self._field = False


class VirtualEncoder(RfStackEncoder):
    """The RF simulator's MFRC522 and field behind the real driver: a desk encoder with no hardware.

    ``place(card)`` / ``take()`` put a simulated card on it; ``rf_us`` is the modelled RF and SPI
    time so far (the simulator's clock), which the benchmark reports beside the host's CPU time.
    """

    name = "virtual"

    def __init__(self, seed: int = 1, max_kbps: int = 848) -> None:
        sim = fw.module("sim")
        mfrc522 = fw.module("mfrc522")
        self.rig: Any = sim.Rig(seed=seed)
        rig = self.rig
        chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, None, clock_us=lambda: int(rig.clock.us),
                               sleep_us=rig.sleep_us)  # fmt: skip
        super().__init__(chip, max_kbps)
        self.card: Any = None
        self.before_exchange: Callable[[int], None] | None = None  # test hook: cut the link here
        self.after_exchange: Callable[[int], None] | None = None
        self.exchanges = 0

    @property
    def rf_us(self) -> float:
        return float(self.rig.clock.us)

    def place(self, card: Any) -> None:
        if self.card is not None:
            self.take()
        self.card = card
        self.rig.field.add(card)

    def take(self) -> Any:
        card = self.card
        if card is not None:
            self.rig.field.remove(card)
        self.card = None
        self._dep = None
        return card

    def transceive(self, apdu: bytes) -> bytes:
        n = self.exchanges
        self.exchanges += 1
        if self.before_exchange is not None:
            self.before_exchange(n)
        out = super().transceive(apdu)
        if self.after_exchange is not None:
            self.after_exchange(n)
        return out


def blank_card(uid: bytes, *, random_uid: bool = False, factory_key: bytes = bytes(16)) -> Any:
    """A factory-fresh simulated DESFire EV3 (AES PICC master key ``factory_key``, no applications)."""
    sim = fw.module("sim")
    return sim.cards.DesfireEV3(uid=uid, random_uid=random_uid, picc_master_key=factory_key)
