# Encoder mode: the reader's RF stack (mfrc522 -> iso14443a -> isodep) serving an issuing host over
# a byte stream (USB serial). The host does all the cryptography; this side only switches the
# field, activates a card and carries APDUs. docs/encoder-protocol.md defines every byte:
#
#   frame = C5 | VER | TYPE | SEQ | LEN_hi LEN_lo | PAYLOAD (LEN <= MAX_PAYLOAD) | CRC32 (4, BE)
#   CRC-32 (IEEE, as zlib) over VER .. PAYLOAD
#
# Bounded everywhere: a frame longer than MAX_PAYLOAD is refused after its header, the hunt for a
# start byte gives up after MAX_HUNT bytes (and reports the noise), and a hostile card is bounded
# by the RF stack itself (isodep max_response, FWT, WTX limits).
from binascii import crc32

import iso14443a
import isodep
import rferror
from rferror import CardError

SOF = 0xC5
VERSION = 1
MAX_PAYLOAD = 300        # an APDU of 261 bytes (5 + 255 + 1) fits, and any DESFire answer frame
MAX_HUNT = 4096          # bytes skipped looking for SOF before the reader reports noise

# Request types (host -> encoder); the answer carries TYPE | 0x80 and the same SEQ.
T_HELLO = 0x01
T_FIELD_OFF = 0x02
T_DETECT = 0x03
T_APDU = 0x04
T_ERROR = 0xFF           # an answer to a frame the encoder could not take (bad CRC, version, type)

# Status, the first payload byte of every answer.
S_OK = 0x00
S_NO_CARD = 0x01
S_LINK_LOST = 0x02       # the card left or stopped answering mid-exchange (state unknown)
S_BAD_FRAME = 0x03       # CRC error or truncated frame: nothing was sent to a card
S_BAD_VERSION = 0x04     # the payload is the version this encoder speaks
S_TOO_LONG = 0x05
S_BAD_TYPE = 0x06
S_CHIP = 0x07            # the MFRC522 stopped answering
S_CARD_ERROR = 0x08      # anything else the RF stack refused (payload: reason text)

NAME = b"cbcc-encoder mfrc522"

_LOST = (rferror.TIMEOUT, rferror.CRC, rferror.CARD_REMOVED, rferror.COLLISION, rferror.PROTOCOL)


def crc(data):
    """CRC-32 (IEEE 802.3, the zlib one): native code in MicroPython's and CPython's binascii, so
    checking a frame costs the encoder next to nothing (a Python CRC-16 loop cost ~0.7 us a byte
    on the unix port, ~50 us a frame: x 70 on the ESP32)."""
    return crc32(data) & 0xFFFFFFFF


def frame(ftype, seq, payload=b"", version=VERSION):
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload too long")
    body = bytes((version, ftype, seq & 0xFF, n >> 8, n & 0xFF)) + bytes(payload)
    c = crc(body)
    return bytes((SOF,)) + body + bytes((c >> 24, (c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF))


class Noise(Exception):
    pass


def read_frame(read):
    """(version, type, seq, payload) or None at end of stream; raises Noise for a broken frame.

    read(n) returns up to n bytes (b"" at end of stream)."""
    hunted = 0
    while True:
        b = read(1)
        if not b:
            return None
        if b[0] == SOF:
            break
        hunted += 1
        if hunted >= MAX_HUNT:
            raise Noise("no start byte in %d bytes" % MAX_HUNT)
    head = _exactly(read, 5)
    if head is None:
        return None
    n = (head[3] << 8) | head[4]
    if n > MAX_PAYLOAD:
        raise Noise("payload %d over %d" % (n, MAX_PAYLOAD))
    rest = _exactly(read, n + 4)
    if rest is None:
        return None
    payload = rest[:n]
    if crc(head + payload) != (rest[n] << 24) | (rest[n + 1] << 16) | (rest[n + 2] << 8) | rest[n + 3]:
        raise Noise("CRC")
    return head[0], head[1], head[2], payload


def _exactly(read, n):
    out = b""
    for _ in range(n + 1):          # each read returns at least one byte or ends the stream
        if len(out) >= n:
            return out
        got = read(n - len(out))
        if not got:
            return None
        out += got
    return out


class Encoder:
    """One MFRC522 (mfrc522.MFRC522) in encoder mode."""

    def __init__(self, chip, max_kbps=848):
        self.chip = chip
        self.max_kbps = max_kbps
        self.dep = None
        self.frames = 0

    def _card_error(self, e):
        if e.reason == rferror.NO_CARD:
            return S_NO_CARD, b""
        if e.reason == rferror.CHIP:
            return S_CHIP, e.detail.encode()[:64]
        if e.reason in _LOST:
            return S_LINK_LOST, e.reason.encode()
        if e.reason == rferror.TOO_LONG:
            return S_TOO_LONG, e.detail.encode()[:64]
        return S_CARD_ERROR, (e.reason + ": " + e.detail).encode()[:64]

    def handle(self, ftype, payload):
        """(status, payload) for one request."""
        chip = self.chip
        if ftype == T_HELLO:
            return S_OK, bytes((VERSION, MAX_PAYLOAD >> 8, MAX_PAYLOAD & 0xFF)) + NAME
        try:
            if ftype == T_FIELD_OFF:
                self.dep = None
                chip.antenna(False)
                return S_OK, b""
            if ftype == T_DETECT:
                self.dep = None
                chip.ensure()
                iso14443a.reset_field(chip)
                chip.reset_protocol()
                t = iso14443a.activate(chip, True)
                ats = b""
                if t.sak & 0x20:
                    dep = isodep.IsoDep(chip, max_kbps=self.max_kbps)
                    ats = bytes(dep.activate().raw)
                    self.dep = dep
                uid = bytes(t.uid)
                return S_OK, (bytes((len(uid),)) + uid + bytes(t.atqa) + bytes((t.sak, len(ats))) + ats)
            if ftype == T_APDU:
                if self.dep is None:
                    return S_LINK_LOST, b"no card"
                if not payload:
                    return S_BAD_FRAME, b"empty APDU"
                resp = bytes(self.dep.exchange(payload))
                if len(resp) + 1 > MAX_PAYLOAD:
                    self.dep = None
                    return S_TOO_LONG, b""
                return S_OK, resp
        except CardError as e:
            self.dep = None
            return self._card_error(e)
        return S_BAD_TYPE, bytes((ftype,))

    def serve(self, read, write, max_frames=0, unplug_at=0):
        """Answer frames until the stream ends (or max_frames > 0 were answered). unplug_at > 0:
        carry out that request, then stop without answering (tests: an encoder pulled out)."""
        while True:
            try:
                f = read_frame(read)
            except Noise as e:
                write(frame(T_ERROR, 0, bytes((S_BAD_FRAME,)) + str(e).encode()[:64]))
                continue
            if f is None:
                return
            version, ftype, seq, payload = f
            if version != VERSION:
                write(frame(T_ERROR, seq, bytes((S_BAD_VERSION, VERSION))))
                continue
            try:
                status, out = self.handle(ftype, payload)
            except Exception as e:  # a bug below must not stop the encoder
                self.dep = None
                status, out = S_CARD_ERROR, ("internal: %r" % (e,)).encode()[:64]
            if unplug_at and self.frames + 1 >= unplug_at:
                return
            write(frame(ftype | 0x80, seq, bytes((status,)) + out))
            self.frames += 1
            if max_frames and self.frames >= max_frames:
                return
