# Gateway time in answer to the heartbeat (docs/mqtt.md, "Status and health").
#
# Each health message carries a fresh 8-byte nonce; the gateway answers on the reader's `time`
# topic with [nonce, unix_ms, mac], mac = HMAC-SHA256(K_reader, "cbcc-time1" ‖ rid ‖ nonce ‖
# unix_ms as 8 bytes big-endian). A reply is accepted once, only for the latest nonce and only
# within window_ms of the heartbeat, so it can be neither forged (the MAC) nor replayed (the
# nonce) nor held back by a broker to skew the clock by more than the window.
import os
import struct

import cbor
import hmac_sha256
from ticks import elapsed_ms, ticks_ms

DOMAIN = b"cbcc-time1"
NONCE = 8

OK = "ok"
MALFORMED = "malformed"
BAD_MAC = "bad_mac"
STALE = "stale"      # not the outstanding nonce, already used, or too late


class TimeSync:
    def __init__(self, mac, reader_id, window_ms=10000):
        self._mac = mac
        self._rid = reader_id.encode()
        self.window_ms = window_ms
        self._nonce = None
        self._t = ticks_ms()

    def nonce(self):
        """A fresh nonce for the next heartbeat; it replaces any outstanding one."""
        self._nonce = os.urandom(NONCE)
        self._t = ticks_ms()
        return self._nonce

    def mac_of(self, nonce, unix_ms):
        return self._mac.digest(DOMAIN, self._rid, nonce, struct.pack(">Q", unix_ms))

    def check(self, payload):
        """Returns (status, unix_ms corrected by half the round trip, round trip ms)."""
        try:
            w = cbor.decode(payload)
        except Exception:  # noqa: BLE001 - CborError, or anything a hostile buffer provokes
            return MALFORMED, None, None
        if not isinstance(w, list) or len(w) != 3:
            return MALFORMED, None, None
        nonce, ms, tag = w[0], w[1], w[2]
        if (not isinstance(nonce, bytes) or len(nonce) != NONCE or not is_u64(ms)
                or not isinstance(tag, bytes) or len(tag) != 32):
            return MALFORMED, None, None
        if not hmac_sha256.equal(tag, self.mac_of(nonce, ms)):
            return BAD_MAC, None, None
        held = self._nonce
        if held is None or not hmac_sha256.equal(nonce, held):
            return STALE, None, None
        rtt = elapsed_ms(self._t)
        self._nonce = None  # single use
        if rtt > self.window_ms:
            return STALE, None, None
        return OK, ms + rtt // 2, rtt


def is_u64(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 64)
