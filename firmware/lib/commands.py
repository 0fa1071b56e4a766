# Signed commands from the gateway (docs/mqtt.md, "Signed objects from the gateway").
#
# A command is a COSE_Sign1 (RS256) under the configuration key pinned on the reader, payload
#   {0: "cmd", 1: 1, 2: seq, 3: iat, 4: reader id or "*", 5: exp, 6: action, 7: arguments}
# It is executed at most once: its seq must exceed the last executed one, which is kept on flash
# (written before the action runs, so a crash in between never runs it twice), and it is refused
# after exp when the reader's clock is trustworthy. A refused command does not consume its seq.
# One seq counter per reader covers its own topic and the broadcast topic: the gateway numbers
# all commands from one increasing counter.
import binascii
import struct

import signed
import statefile

MAX_SIZE = 2048
TYPE = "cmd"
VERSION = 1
ACTIONS = ("open", "lockdown", "release", "reboot", "resync")
ANY_READER = "*"

# statuses besides those of signed (ok, malformed, unsupported_alg, unknown_root, bad_signature)
WRONG_READER = "wrong_reader"
REPLAY = "replay"
EXPIRED = "expired"
UNKNOWN_ACTION = "unknown_action"


def _encode_seq(seq):
    b = struct.pack(">Q", seq)
    return b + struct.pack(">I", binascii.crc32(b) & 0xFFFFFFFF)


def _decode_seq(data):
    if data is None or len(data) != 12:
        return None
    if struct.unpack(">I", data[8:12])[0] != binascii.crc32(data[0:8]) & 0xFFFFFFFF:
        return None
    return struct.unpack(">Q", data[0:8])[0]


def _load(p):
    # The highest valid copy (the file, or the temporary copy a cut rename left): a damaged file
    # must not lower the replay floor when a good copy exists.
    best = None
    for q in (p, p + statefile.TMP):
        try:
            with open(q, "rb") as f:
                seq = _decode_seq(f.read(13))
        except OSError:
            continue
        if seq is not None and (best is None or seq > best):
            best = seq
    return best


class Commands:
    """Verification and replay store. check() never raises; commit() persists the seq (OSError
    when the flash fails: then the command must not run)."""

    def __init__(self, key, reader_id, store_path):
        self.key = key
        self.reader_id = reader_id
        self.path = store_path
        self.last = _load(store_path)

    def check(self, blob, now=None, time_ok=False):
        """Returns (status, seq, action, args); seq/action are filled in as far as they parsed."""
        status, p = signed.open_signed(blob, MAX_SIZE, self.key)
        if status != signed.OK:
            return status, None, None, None
        seq = p.get(2)
        exp = p.get(5)
        target = p.get(4)
        action = p.get(6)
        t = p.get(0)
        if not (isinstance(t, str) and t == TYPE and signed.is_version(p.get(1), VERSION)
                and signed.is_uint(seq) and signed.is_uint(p.get(3)) and signed.is_uint(exp)
                and isinstance(target, str) and isinstance(action, str)):
            return signed.MALFORMED, None, None, None
        if target != self.reader_id and target != ANY_READER:
            return WRONG_READER, seq, action, None
        if action not in ACTIONS:
            return UNKNOWN_ACTION, seq, action, None
        if self.last is not None and seq <= self.last:
            return REPLAY, seq, action, None
        if time_ok and now is not None and now > exp:
            return EXPIRED, seq, action, None
        return signed.OK, seq, action, p.get(7)

    def commit(self, seq):
        statefile.write(self.path, _encode_seq(seq))
        self.last = seq
