"""The host side of the encoder protocol (docs/encoder-protocol.md): an ESP32 + MFRC522 running the
reader firmware in encoder mode (``firmware/lib/encoder.py``), on USB serial through pyserial.

Every request is answered by exactly one frame with the same SEQ; a frame with a wrong CRC, another
SEQ or no answer within the timeout means the link cannot be trusted: :class:`LinkLost` (the card's
state is unknown, the issuance resumes on the next run). HELLO comes first: an encoder speaking
another protocol version is refused before any frame reaches a card.
"""

from __future__ import annotations

import binascii
from typing import Any

from messages import N_, _
from provisioning.encoders.base import (
    CARD_LINK_LOST,
    CHIP_SILENT,
    CardInfo,
    Encoder,
    EncoderError,
    LinkLost,
    NoCard,
    ProtocolVersionError,
)

try:  # a USB serial port that vanishes fails in termios calls (tcdrain), not only in read/write
    import termios

    _PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # Windows: pyserial raises SerialException (an OSError) only
    _PORT_ERRORS = (OSError,)

SOF = 0xC5
VERSION = 1
MAX_PAYLOAD = 300
VERSION_MISMATCH = N_("the encoder speaks protocol version {theirs}, this host {ours}")
T_HELLO, T_FIELD_OFF, T_DETECT, T_APDU, T_ERROR = 0x01, 0x02, 0x03, 0x04, 0xFF
S_OK, S_NO_CARD, S_LINK_LOST, S_BAD_FRAME, S_BAD_VERSION = 0x00, 0x01, 0x02, 0x03, 0x04
S_TOO_LONG, S_BAD_TYPE, S_CHIP, S_CARD_ERROR = 0x05, 0x06, 0x07, 0x08
STATUS_NAMES = {S_NO_CARD: N_("no card"), S_LINK_LOST: N_("card link lost"), S_BAD_FRAME: N_("bad frame"),
                S_BAD_VERSION: N_("protocol version"), S_TOO_LONG: N_("too long"),
                S_BAD_TYPE: N_("unknown request"), S_CHIP: N_("MFRC522 not answering"),
                S_CARD_ERROR: N_("card error")}  # fmt: skip
# The link to the encoder itself broke: what a person reads when the retries are used up.
ENCODER_GONE = N_(
    "the link to the encoder broke ({reason}); check its USB cable, then present the card again "
    "(the issuance resumes where it stopped)"
)


def crc(data: bytes) -> int:
    """CRC-32 (IEEE, zlib's), as firmware/lib/encoder.py computes it."""
    return binascii.crc32(data) & 0xFFFFFFFF


def encode(ftype: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise EncoderError(_("a frame payload of {n} bytes is over {max}", n=len(payload), max=MAX_PAYLOAD))
    body = bytes((version, ftype, seq & 0xFF, len(payload) >> 8, len(payload) & 0xFF)) + payload
    return bytes((SOF,)) + body + crc(body).to_bytes(4, "big")


class SerialEncoder(Encoder):
    """``port`` is a pyserial port (or anything with read(n)/write(b)/close()); see :meth:`open`."""

    name = "serial"

    def __init__(self, port: Any, timeout_s: float = 3.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.seq = 0
        self.info: dict[str, Any] = {}
        self._hello()

    @classmethod
    def open(cls, device: str, baudrate: int = 921600, timeout_s: float = 3.0) -> SerialEncoder:
        import serial

        try:
            port = serial.Serial(device, baudrate=baudrate, timeout=timeout_s, write_timeout=timeout_s)
        except serial.SerialException as exc:
            msg = _("cannot open encoder {device}: {reason}", device=device, reason=exc)
            raise EncoderError(msg) from None
        try:
            return cls(port, timeout_s)
        except EncoderError:
            port.close()
            raise

    def _read(self, n: int) -> bytes:
        try:
            got = bytes(self.port.read(n))
        except _PORT_ERRORS as exc:  # pyserial's SerialException is an OSError: device unplugged
            raise LinkLost(_(ENCODER_GONE, reason=str(exc))) from None
        if len(got) != n:
            raise LinkLost(_(ENCODER_GONE, reason=_("no answer in time")))
        return got

    def _request(self, ftype: int, payload: bytes = b"") -> tuple[int, bytes]:
        self.seq = (self.seq + 1) & 0xFF
        try:
            self.port.write(encode(ftype, self.seq, payload))
            self.port.flush()
        except _PORT_ERRORS as exc:  # flush() is tcdrain: termios.error when the device is gone
            raise LinkLost(_(ENCODER_GONE, reason=str(exc))) from None
        for _skip in range(MAX_PAYLOAD + 8):  # skip line noise before the start byte, boundedly
            if self._read(1)[0] == SOF:
                break
        else:
            raise LinkLost(_(ENCODER_GONE, reason=_("no frame start")))
        head = self._read(5)
        n = (head[3] << 8) | head[4]
        if n > MAX_PAYLOAD or n < 1:
            raise LinkLost(_(ENCODER_GONE, reason=_("a frame of {n} bytes", n=n)))
        rest = self._read(n + 4)
        if crc(head + rest[:n]) != int.from_bytes(rest[n:], "big"):
            raise LinkLost(_(ENCODER_GONE, reason=_("CRC error")))
        version, rtype, seq, payload = head[0], head[1], head[2], rest[:n]
        if rtype == T_ERROR and payload[0] == S_BAD_VERSION:
            theirs = payload[1] if len(payload) > 1 else version
            raise ProtocolVersionError(_(VERSION_MISMATCH, theirs=theirs, ours=VERSION))
        if version != VERSION:
            raise ProtocolVersionError(
                _(
                    "the encoder answered in protocol version {theirs}, this host speaks {ours}",
                    theirs=version,
                    ours=VERSION,
                )
            )
        if rtype == T_ERROR:
            reason = payload[1:].decode("latin-1")
            raise LinkLost(_("the encoder could not read our frame ({reason})", reason=reason))
        if rtype != ftype | 0x80 or seq != self.seq:
            got, sent = f"{rtype:02X}/{seq}", f"{ftype:02X}/{self.seq}"
            raise LinkLost(_(ENCODER_GONE, reason=_("answer {got} to request {sent}", got=got, sent=sent)))
        return payload[0], payload[1:]

    def _hello(self) -> None:
        status, data = self._request(T_HELLO)
        if status != S_OK or len(data) < 3:
            raise EncoderError(_("the encoder did not greet"))
        if data[0] != VERSION:
            raise ProtocolVersionError(_(VERSION_MISMATCH, theirs=data[0], ours=VERSION))
        self.info = {"version": data[0], "max_payload": (data[1] << 8) | data[2],
                     "name": data[3:].decode("utf-8", "replace")}  # fmt: skip

    def _fail(self, status: int, data: bytes) -> EncoderError:
        name = STATUS_NAMES.get(status)
        what, detail = _(name) if name else hex(status), data.decode("latin-1")
        text = _("{what}: {detail}", what=what, detail=detail) if detail else what
        if status == S_NO_CARD:
            return NoCard(_("no card on the encoder"))
        if status == S_LINK_LOST:
            return LinkLost(_(CARD_LINK_LOST, reason=detail or what))
        if status == S_CHIP:
            return LinkLost(_(CHIP_SILENT, reason=detail or what))
        return EncoderError(text)

    def detect(self) -> CardInfo:
        status, d = self._request(T_DETECT)
        if status != S_OK:
            raise self._fail(status, d)
        try:
            n = d[0]
            uid = d[1 : 1 + n]
            atqa = d[1 + n : 3 + n]
            sak, ats_len = d[3 + n], d[4 + n]
            ats = d[5 + n : 5 + n + ats_len]
        except IndexError:
            raise LinkLost(_(ENCODER_GONE, reason=_("truncated DETECT answer"))) from None
        if len(ats) != ats_len or len(uid) != n:
            raise LinkLost(_(ENCODER_GONE, reason=_("truncated DETECT answer")))
        return CardInfo(uid, atqa, sak, ats)

    def transceive(self, apdu: bytes) -> bytes:
        status, d = self._request(T_APDU, apdu)
        if status != S_OK:
            raise self._fail(status, d)
        return d

    def field_off(self) -> None:
        status, d = self._request(T_FIELD_OFF)
        if status != S_OK:
            raise self._fail(status, d)

    def close(self) -> None:
        self.port.close()
