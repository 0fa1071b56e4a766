"""A virtual contactless card for PC/SC: the project's DESFire card model behind vsmartcard's ``vpcd``.

``vpcd`` (Debian ``vsmartcard-vpcd``) is a PC/SC reader driver for ``pcscd`` that listens on a TCP
port (35963 by default) for a virtual card. Its protocol (vsmartcard's ``virtualsmartcard``
documentation): every message is a 2-byte big-endian length then that many bytes. From vpcd, a
1-byte message is a control command — ``00`` power off, ``01`` power on, ``02`` reset (no answer),
``04`` "send the ATR" (answered with the ATR); any longer message is an APDU, answered with the
card's response. This module is that card: the simulator's DESFire model (``firmware/sim``) answers
the APDUs, and the pseudo-APDU ``FF CA 00 00 00`` (PC/SC part 3 GET DATA: UID) is answered as a
contactless PC/SC reader would. Used by the PC/SC tests and the demo, never in production.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

# PC/SC part 3 ATR of an ISO 14443-4 card with historical byte 80 (as DESFire EV1-3 show it).
DESFIRE_ATR = bytes.fromhex("3B8180018080")
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4
MAX_MESSAGE = 4096


class VirtualCard:
    """Connects to vpcd and serves one simulated card until :meth:`stop` (a daemon thread)."""

    def __init__(self, card: Any, port: int, host: str = "127.0.0.1") -> None:
        self.card = card
        self.atr = DESFIRE_ATR
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.apdus = 0
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def start(self, timeout_s: float = 10.0) -> VirtualCard:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sock = socket.create_connection((self.host, self.port), timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._serve, name="vicc", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    def pull(self) -> None:
        """The card leaves the reader now (called from inside an answer: no thread join)."""
        self._stop.set()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            if self.sock is None:
                raise ConnectionError("card pulled away")
            got = self.sock.recv(n - len(out))
            if not got:
                raise ConnectionError("vpcd closed the connection")
            out += got
        return out

    def _send(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionError("card pulled away")
        self.sock.sendall(len(data).to_bytes(2, "big") + data)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                n = int.from_bytes(self._recv(2), "big")
                if n > MAX_MESSAGE:
                    raise ConnectionError(f"vpcd message of {n} bytes")
                msg = self._recv(n)
                if n == 1:
                    if msg[0] in (CTRL_ON, CTRL_RESET):
                        self.card.on_power_up()
                    elif msg[0] == CTRL_OFF:
                        self.card.on_power_down()
                    elif msg[0] == CTRL_ATR:
                        self._send(self.atr)
                    continue
                self.apdus += 1
                self._send(self.answer(msg))
        except (OSError, ConnectionError) as exc:
            if not self._stop.is_set():
                self.error = exc

    def answer(self, apdu: bytes) -> bytes:
        if apdu[:4] == b"\xff\xca\x00\x00":  # GET DATA: UID, answered by a contactless reader
            return bytes(self.card.active_uid()) + b"\x90\x00"
        if apdu[:1] == b"\xff":
            return b"\x6a\x81"
        resp, _us = self.card.process_apdu(apdu)
        return bytes(resp)
