# cbcc RF simulator: a register-level MFRC522 behind machine.SPI / machine.Pin stand-ins, an RF
# field with card models (DESFire EV3, MIFARE Classic 1K/4K, NTAG21x) and a timing model.
# Written from the MFRC522 data sheet, ISO/IEC 14443-3/-4 and NXP's card documentation; never
# deployed to a reader. See docs/simulator.md.
from . import cards
from .field import Field, Response
from .rig import Rig

__all__ = ["Field", "Response", "Rig", "cards"]
