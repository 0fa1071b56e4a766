"""A PC/SC contactless reader (ACR122U, Identiv, HID Omnikey …) through pyscard: ``pip install cbcc[pcsc]``.

The reader's firmware does ISO 14443 activation itself; PC/SC hands over the card once it is
ISO-DEP, so :meth:`detect` learns the UID with the PC/SC part 3 pseudo-APDU ``FF CA 00 00 00`` and
the card type from the ATR the reader builds (``3B 8n 80 01`` + historical bytes for ISO 14443-4;
a storage card — MIFARE Classic, NTAG — carries the PC/SC RID ``A0 00 00 03 06`` and is refused
by the issuance as the wrong card type). DESFire commands go as the ISO 7816-4 wrapped APDUs
``desfire.py`` builds, which every PC/SC stack carries unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Any

from messages import _
from provisioning.encoders.base import CARD_LINK_LOST, CardInfo, Encoder, EncoderError, LinkLost, NoCard

GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
PCSC_RID = bytes.fromhex("A000000306")


def _import() -> Any:
    try:
        import smartcard.System
    except ImportError:
        raise EncoderError(_("PC/SC needs pyscard: install the extra, `uv sync --extra pcsc`")) from None
    return smartcard


class PcscEncoder(Encoder):
    """The first PC/SC reader whose name contains ``reader`` (all readers when empty)."""

    name = "pcsc"

    def __init__(self, reader: str = "", wait_s: float = 5.0) -> None:
        self.wait_s = wait_s  # how long detect() waits for a card (pcscd polls its readers)
        sc = _import()
        from smartcard.Exceptions import CardConnectionException, NoCardException

        self._lost: tuple[type[BaseException], ...] = (CardConnectionException,)
        self._nocard: tuple[type[BaseException], ...] = (NoCardException,)
        try:
            readers = [r for r in sc.System.readers() if reader in str(r)]
        except Exception as exc:  # pyscard raises its own EstablishContextException etc.
            raise EncoderError(_("PC/SC is not available: {reason}", reason=exc)) from None
        if not readers:
            raise EncoderError(_("no PC/SC reader matching {reader!r}", reader=reader))
        self.reader = readers[0]
        self.conn: Any = None

    def detect(self) -> CardInfo:
        import time

        self.field_off()
        deadline = time.monotonic() + self.wait_s
        while True:
            conn = self.reader.createConnection()
            try:
                conn.connect()
                atr = bytes(conn.getATR())
                data, sw1, sw2 = conn.transmit(GET_UID)
                break
            except self._nocard:
                self._drop(conn)
                if time.monotonic() >= deadline:
                    raise NoCard(_("no card on the PC/SC reader")) from None
            except self._lost as exc:  # a card still settling in (unpowered, reset) is retried
                self._drop(conn)
                if time.monotonic() >= deadline:
                    raise LinkLost(_(CARD_LINK_LOST, reason=f"PC/SC: {exc}")) from None
            time.sleep(0.1)
        if (sw1, sw2) != (0x90, 0x00):
            raise EncoderError(
                _("the PC/SC reader does not give the UID (SW {sw})", sw=f"{sw1:02X}{sw2:02X}")
            )
        self.conn = conn
        storage = PCSC_RID in atr
        hist = atr[4:-1] if len(atr) > 5 and atr[2:4] == b"\x80\x01" else b""
        # PC/SC tells neither ATQA nor SAK: storage cards are not ISO-DEP (SAK 08), the rest are.
        return CardInfo(bytes(data), b"", 0x08 if storage else 0x20, bytes([len(hist) + 1]) + hist)

    def _drop(self, conn: Any) -> None:
        """Release a connection now (pyscard would otherwise do it at garbage collection)."""
        with contextlib.suppress(*self._lost, *self._nocard):
            conn.release()

    def transceive(self, apdu: bytes) -> bytes:
        if self.conn is None:
            raise LinkLost(_("no card connected: present the card again"))
        try:
            data, sw1, sw2 = self.conn.transmit(list(apdu))
        except self._lost as exc:
            self.conn = None
            raise LinkLost(_(CARD_LINK_LOST, reason=f"PC/SC: {exc}")) from None
        return bytes(data) + bytes((sw1, sw2))

    def field_off(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(*self._lost):
                conn.disconnect()  # SCARD_UNPOWER_CARD: the card loses its session
            self._drop(conn)

    def close(self) -> None:
        self.field_off()
