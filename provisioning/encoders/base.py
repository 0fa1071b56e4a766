"""The abstract encoder: field on/off, detect one card, carry one APDU; nothing else.

An encoder never sees a key. Everything that can go wrong on the link is one of three errors:
:class:`LinkLost` (the card left the field or the encoder went away mid-exchange: the card's
state is unknown and the next run must look at it again), :class:`NoCard` (nothing in the field)
and :class:`EncoderError` (the encoder refused: wrong protocol version, malformed frame…).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from messages import N_
from provisioning.errors import ProvisioningError

# What a person reads when the link stays lost after the retries (cbcc card issue-batch): what broke
# and what to do; every encoder says it with these.
CARD_LINK_LOST = N_(
    "the card link was lost ({reason}); keep the card still on the encoder and present it again "
    "(the issuance resumes where it stopped)"
)
CHIP_SILENT = N_("the encoder's MFRC522 chip stopped answering ({reason}); check its wiring and power")


class EncoderError(ProvisioningError):
    """The encoder cannot be used (protocol version, malformed answer, device error)."""


class ProtocolVersionError(EncoderError):
    """The encoder speaks another version of the encoder protocol: nothing was sent to a card."""


class LinkLost(EncoderError):
    """The exchange broke off (card pulled away, encoder unplugged): the card's state is unknown."""


class NoCard(EncoderError):
    """No card answered in the field."""


@dataclass(frozen=True)
class CardInfo:
    """What activation tells about the card in the field (before any DESFire command)."""

    uid: bytes  # as seen in anticollision: 4 bytes 08 … on a random-UID card
    atqa: bytes
    sak: int
    ats: bytes

    @property
    def iso_dep(self) -> bool:
        return bool(self.sak & 0x20)


class Encoder(ABC):
    """A card encoder. ``detect`` powers the field (if off) and activates ISO-DEP on one card."""

    name = "encoder"

    @abstractmethod
    def detect(self) -> CardInfo:
        """Activate the one card in the field (REQA/anticollision/SELECT, RATS/PPS); NoCard if none."""

    @abstractmethod
    def transceive(self, apdu: bytes) -> bytes:
        """Send one APDU to the activated card; its whole answer (DATA || SW1 SW2)."""

    @abstractmethod
    def field_off(self) -> None:
        """Switch the RF field off: the card loses power (and its session); detect() restarts it."""

    def close(self) -> None:  # noqa: B027  (optional for encoders that hold nothing)
        """Release the device."""

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ApduTransport:
    """``desfire.Desfire``'s transport contract (``exchange(apdu) -> DATA || SW``) over an encoder."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.exchanges = 0

    def exchange(self, apdu: bytes | bytearray, expect: int = 0) -> bytes:
        self.exchanges += 1
        return self.encoder.transceive(bytes(apdu))
