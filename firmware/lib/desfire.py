# MIFARE DESFire EV1/EV2/EV3 command layer over an abstract ISO 14443-4 transport.
#
# The transport is any object with exchange(apdu: bytes) -> bytes that sends one APDU in
# I-blocks (with whatever chaining the ISO-DEP layer needs) and returns the card's complete
# answer, DATA || SW1 SW2. On the reader that is isodep.py over the MFRC522; on a host it can
# be PC/SC or the RF simulator, so provisioning reuses this module unchanged.
#
# Commands travel as ISO/IEC 7816-4 wrapped native commands, 90 CMD 00 00 [Lc DATA] 00, and the
# card answers DATA 91 STATUS. Wrapping is used (not raw native frames) because it is the one
# format every ISO-DEP stack carries — PC/SC readers, phones, our isodep.py — without knowing
# DESFire, and because a card that does not speak DESFire answers with an ISO status word
# (6E 00, 6D 00, ...) instead of something that could be mistaken for a DESFire status.
#
# Long data goes in DESFire "additional frames" in both directions (status 91 AF, command AF).
# Every loop is bounded: at most MAX_FRAMES frames and MAX_RESPONSE bytes per response, and
# exact lengths are checked wherever the command fixes them, so a hostile or broken card ends in
# rferror.CardError (TOO_LONG, PROTOCOL, INTEGRITY, AUTH, STATUS, UNSUPPORTED), never a hang.
import os
import struct

import desfire_crypto as dc
from desfire_crypto import FULL, MAC, PLAIN
from rferror import AUTH, INTEGRITY, PROTOCOL, STATUS, TOO_LONG, UNSUPPORTED, CardError

# Native command codes.
CMD_AUTH_EV2_FIRST = 0x71
CMD_AUTH_EV2_NON_FIRST = 0x77
CMD_AUTH_AES = 0xAA
CMD_ADDITIONAL_FRAME = 0xAF
CMD_GET_VERSION = 0x60
CMD_SELECT_APPLICATION = 0x5A
CMD_GET_CARD_UID = 0x51
CMD_READ_SIG = 0x3C
CMD_READ_DATA = 0xBD
CMD_WRITE_DATA = 0x3D
CMD_CREATE_APPLICATION = 0xCA
CMD_CREATE_STD_DATA_FILE = 0xCD
CMD_CHANGE_KEY = 0xC4
CMD_CHANGE_KEY_SETTINGS = 0x54
CMD_GET_KEY_SETTINGS = 0x45
CMD_SET_CONFIGURATION = 0x5C
CMD_CHANGE_FILE_SETTINGS = 0x5F
CMD_GET_FILE_SETTINGS = 0xF5

# Card status codes (SW2 after SW1 = 0x91).
ST_OK = 0x00
ST_NO_CHANGES = 0x0C
ST_OUT_OF_EEPROM = 0x0E
ST_ILLEGAL_COMMAND = 0x1C
ST_INTEGRITY_ERROR = 0x1E
ST_NO_SUCH_KEY = 0x40
ST_LENGTH_ERROR = 0x7E
ST_PERMISSION_DENIED = 0x9D
ST_PARAMETER_ERROR = 0x9E
ST_APPLICATION_NOT_FOUND = 0xA0
ST_AUTHENTICATION_ERROR = 0xAE
ST_ADDITIONAL_FRAME = 0xAF
ST_BOUNDARY_ERROR = 0xBE
ST_COMMAND_ABORTED = 0xCA
ST_DUPLICATE_ERROR = 0xDE
ST_FILE_NOT_FOUND = 0xF0

STATUS_NAMES = {
    0x0C: "no changes", 0x0E: "out of EEPROM", 0x1C: "illegal command", 0x1E: "integrity error",
    0x40: "no such key", 0x7E: "length error", 0x9D: "permission denied", 0x9E: "parameter error",
    0xA0: "application not found", 0xA1: "application integrity error",
    0xAE: "authentication error", 0xBE: "boundary error", 0xC1: "PICC integrity error",
    0xCA: "command aborted", 0xCD: "PICC disabled", 0xCE: "count error", 0xDE: "duplicate",
    0xEE: "EEPROM error", 0xF0: "file not found", 0xF1: "file integrity error",
}

# Bounds on what a card may send back for one command.
MAX_RESPONSE = 2048       # bytes, all frames together (credential 1024 + header + padding + MAC)
MAX_FRAMES = 48           # frames per command in either direction
MAX_FRAME_DATA = 52       # command data bytes per APDU: 5 + 52 + 1 = 58 <= 61 (FSC 64 - PCB - CRC)
MAX_IO = 1536             # largest ReadData/WriteData length this layer accepts
# Data bytes a DESFire puts in one answer frame before asking for an additional frame (91 AF):
# 59 + SW1 SW2 + PCB + CRC_A = 64 = FSD. Only used to tell the ISO-DEP layer how long an answer
# frame should be (a timing hint); nothing depends on a card actually doing so.
CARD_FRAME_DATA = 59

FILE_STANDARD = 0x00


class DesfireError(CardError):
    """The card answered with a DESFire error status; `status` holds the code."""

    def __init__(self, status, cmd):
        name = STATUS_NAMES.get(status, "status")
        if status == ST_AUTHENTICATION_ERROR:
            reason = AUTH
        elif status == ST_INTEGRITY_ERROR:
            reason = INTEGRITY
        elif status == ST_ILLEGAL_COMMAND:
            reason = UNSUPPORTED
        else:
            reason = STATUS
        CardError.__init__(self, reason, "cmd %02X: %s (91 %02X)" % (cmd, name, status))
        self.status = status
        self.cmd = cmd


_APDU_AF = b"\x90\xaf\x00\x00\x00"    # the additional-frame request, the most frequent APDU


def apdu(cmd, data=b""):
    """ISO 7816-4 wrapping of a native command: 90 CMD 00 00 [Lc DATA] 00 (a bytearray when it
    carries data: transports copy it into their frame anyway)."""
    n = len(data)
    if not n:
        return _APDU_AF if cmd == 0xAF else bytes((0x90, cmd, 0, 0, 0))
    if n > 255:
        raise CardError(TOO_LONG, "APDU data over 255 bytes")
    a = bytearray(n + 6)
    a[0] = 0x90
    a[1] = cmd
    a[4] = n
    a[5:5 + n] = data
    return a


def access_rights(read, write, read_write, change):
    """The two access-right bytes as sent: (RW << 4 | Change), (Read << 4 | Write)."""
    return bytes([(read_write << 4) | change, (read << 4) | write])


def parse_access_rights(b):
    return {"read": b[1] >> 4, "write": b[1] & 15, "read_write": b[0] >> 4, "change": b[0] & 15}


def _u24(n):
    if not 0 <= n < 0x1000000:
        raise CardError(TOO_LONG, "offset or length beyond 24 bits")
    return struct.pack("<I", n)[:3]


def enciphered_length(session, length, mode):
    """Exact number of response bytes ReadData(length) must return in `mode` (0 = unknown)."""
    if length == 0:
        return 0
    if mode == PLAIN:
        return length
    if mode == MAC:
        return length + 8
    if session is not None and session.kind == "ev1":
        return len(dc.pad_zero(bytes(length + 4)))
    return (length // 16 + 1) * 16 + 8


def read_header(file_no, offset, length):
    """ReadData's 7-byte header: FileNo, Offset (3, LE), Length (3, LE); length <= MAX_IO."""
    if not 0 <= offset < 0x1000000:
        raise CardError(TOO_LONG, "offset beyond 24 bits")
    header = bytearray(7)
    header[0] = file_no
    header[1] = offset & 0xFF
    header[2] = (offset >> 8) & 0xFF
    header[3] = offset >> 16
    header[4] = length & 0xFF
    header[5] = length >> 8
    return header


def _non_first_session(key, rnda, rndb, key_no, ti, ctr, then):
    # the EV2 session of an AuthenticateEV2NonFirst and the next command's payload (or None)
    m = dc.ev2_session_material(key, rnda, rndb)
    s = dc.EV2Session(m[0], m[1], ti, key_no, ctr, m[2])
    return s, (s.wrap(then[0], then[1], b"", MAC) if then is not None else None)


def _key_and_nonce(key, derive, arg, rng):
    # (the key, a fresh RndA); key None: derive(arg) gives it
    return (derive(arg) if key is None else key), rng(16)


class Desfire:
    """One card in the field. `session` is the secure-messaging state (None when not authenticated)."""

    def __init__(self, transport, rng=None, max_frame_data=MAX_FRAME_DATA):
        self.transport = transport
        self.rng = rng or os.urandom
        self.max_frame_data = max_frame_data
        self.session = None  # type: dc.EV2Session | dc.EV1Session | None
        self._prepared = None  # type: tuple | None
        self.exchanges = 0
        # Transports that take a response-length timing hint (isodep.IsoDep) get one.
        self._hint = bool(getattr(transport, "takes_expect", False))
        # The driver that can run work while an answer is awaited (isodep.IsoDep.idle_chip).
        self._chip = getattr(transport, "idle_chip", None)
        keep = getattr(transport, "keep", None)
        if keep is not None:
            keep(_APDU_AF)              # the additional-frame request goes out framed once

    # ------------------------------------------------------------ framing

    def _exchange(self, cmd, data=b"", expect=None):
        """One APDU; returns (status, data). Anything but 91 xx is refused. expect: the data
        bytes the answer should carry (None = unknown), a timing hint for the transport."""
        self.exchanges += 1
        if expect is not None and self._hint:
            resp = self.transport.exchange(apdu(cmd, data), expect + 2)
        else:
            resp = self.transport.exchange(apdu(cmd, data))
        n = len(resp) if resp is not None else 0
        if n < 2 or resp[n - 2] != 0x91:
            self._bad_sw(resp)
        return resp[n - 1], resp[:n - 2]

    @staticmethod
    def _bad_sw(resp):
        """Raise for an answer that is not DATA || 91 xx."""
        if resp is None or len(resp) < 2:
            raise CardError(PROTOCOL, "answer shorter than a status word")
        sw1 = resp[-2]
        sw2 = resp[-1]
        if (sw1, sw2) in ((0x6E, 0x00), (0x6D, 0x00), (0x6A, 0x81)):
            raise CardError(UNSUPPORTED, "not a DESFire card (SW %02X%02X)" % (sw1, sw2))
        raise CardError(PROTOCOL, "unexpected status word %02X%02X" % (sw1, sw2))

    def _transceive(self, cmd, payload, limit=MAX_RESPONSE, wire=None):
        """Send cmd || payload in frames, collect the answer's frames; returns (status, data).
        wire: the answer's total length over all frames when known (timing hint only)."""
        step = self.max_frame_data
        n = len(payload)
        if n > step * MAX_FRAMES:
            raise CardError(TOO_LONG, "command too long")
        if n <= step:
            pos = n
            # _exchange() inlined: this runs for every command
            self.exchanges += 1
            a = apdu(cmd, payload)
            if wire is not None and self._hint:
                resp = self.transport.exchange(a, (wire if wire < CARD_FRAME_DATA else CARD_FRAME_DATA) + 2)
            else:
                resp = self.transport.exchange(a)
            k = len(resp) if resp is not None else 0
            if k < 2 or resp[k - 2] != 0x91:
                self._bad_sw(resp)
            status = resp[k - 1]
            data = resp[:k - 2]
            if status != ST_ADDITIONAL_FRAME:
                # one frame each way, the usual case: no reassembly
                if len(data) > limit:
                    self._abort(TOO_LONG, "cmd %02X: answer over %d bytes" % (cmd, limit))
                return status, data
        else:
            pos = step
            status, data = self._exchange(cmd, payload[:pos])
        while pos < n:  # at most MAX_FRAMES - 1 more frames, by the check above
            if status != ST_ADDITIONAL_FRAME or len(data):
                break  # the card ended (or failed) the command before taking all data
            nxt = min(n, pos + step)
            status, data = self._exchange(CMD_ADDITIONAL_FRAME, payload[pos:nxt])
            pos = nxt
        if pos < n:
            if status in (ST_OK, ST_ADDITIONAL_FRAME):
                self._abort(PROTOCOL, "cmd %02X: card answered before taking all data" % cmd)
            self._fail(status, cmd)
        out = bytearray(data)
        frames = 0
        exchange = self.transport.exchange
        hint = self._hint and wire is not None
        while True:
            if len(out) > limit:
                self._abort(TOO_LONG, "cmd %02X: answer over %d bytes" % (cmd, limit))
            if status != ST_ADDITIONAL_FRAME:
                return status, bytes(out)
            frames += 1
            if frames > MAX_FRAMES:
                self._abort(TOO_LONG, "cmd %02X: more than %d answer frames" % (cmd, MAX_FRAMES))
            # the next frame of the answer: _exchange(AF) inlined, it runs once per frame
            self.exchanges += 1
            left = wire - len(out) if hint else 0
            if left > 0:
                resp = exchange(_APDU_AF, (left if left < CARD_FRAME_DATA else CARD_FRAME_DATA) + 2)
            else:
                resp = exchange(_APDU_AF)
            k = len(resp) if resp is not None else 0
            if k < 2 or resp[k - 2] != 0x91:
                self._bad_sw(resp)
            status = resp[k - 1]
            out.extend(memoryview(resp)[:k - 2])

    def _abort(self, reason, detail):
        # The card's state is unknown after a broken exchange: drop the session.
        self.session = None
        raise CardError(reason, detail)

    def _fail(self, status, cmd):
        # Any error status ends the card's authenticated state; forget ours too.
        self.session = None
        raise DesfireError(status, cmd)

    def command(self, cmd, header=b"", data=b"", cmd_mode=PLAIN, resp_mode=PLAIN, length=None,
                limit=MAX_RESPONSE, wire=None):
        """Run one native command through the current secure-messaging session (if any).

        cmd_mode protects the command (header in clear, data MACed or enciphered), resp_mode
        opens the answer; `length` is the plain response length where it is known (EV1
        enciphered answers need it; for all sessions a different length is refused). `wire`:
        the answer's length on the wire when known (a timing hint for the transport).
        """
        s = self.session
        p = self._prepared
        if p is not None:
            # built while the last authentication's answer was awaited: the same command of the
            # same session at the same counter only
            self._prepared = None
            if (p[2] is s and p[0] == cmd and cmd_mode == MAC and not data and p[1] == header
                    and p[3] == s.cmd_ctr):
                payload = p[4]
            else:
                p = None
        if p is None:
            payload = s.wrap(cmd, header, data, cmd_mode) if s is not None else bytes(header) + bytes(data)
        status, resp = self._transceive(cmd, payload, limit, wire)
        if status != ST_OK:
            self._fail(status, cmd)
        if s is not None:
            try:
                resp = s.unwrap(status, resp, resp_mode, length)
            except CardError:
                self.session = None
                raise
        if length is not None and len(resp) != length:
            self._abort(PROTOCOL, "cmd %02X: %d bytes where %d were due" % (cmd, len(resp), length))
        return resp

    # ------------------------------------------------------------ general commands

    def get_version(self):
        """GetVersion (60): hardware, software and production data; UID is zero on random-UID cards."""
        mode = MAC if self.session is not None else PLAIN
        v = self.command(CMD_GET_VERSION, cmd_mode=mode, resp_mode=mode, limit=64)
        if len(v) < 28:
            raise CardError(PROTOCOL, "GetVersion: %d bytes" % len(v))
        return {
            "hw": bytes(v[0:7]), "sw": bytes(v[7:14]), "uid": bytes(v[14:21]),
            "batch": bytes(v[21:26]), "week": v[26], "year": v[27],
            "hw_type": v[1], "hw_major": v[3], "storage": v[5],
        }

    def select_application(self, aid):
        """SelectApplication (5A); AID as 3 bytes in the card's order (least significant first)."""
        if len(aid) != 3:
            raise ValueError("AID is 3 bytes")
        self.session = None  # selecting always drops authentication on the card
        self.command(CMD_SELECT_APPLICATION, aid, b"", PLAIN, PLAIN, 0, MAX_RESPONSE, 0)

    # ------------------------------------------------------------ authentication

    def authenticate_ev2_first(self, key_no, key, subkeys=None, derive=None, arg=None):
        """AuthenticateEV2First (71) with an AES-128 key; returns (PDcap2, PCDcap2).
        subkeys: the key's CMAC subkeys (K1, K2) when the caller keeps them (a fixed key).
        key None: derive(arg) gives the key (derived while the card works on part 1)."""
        self.session = None
        # RndA is drawn (and the key derived) while the card works on part 1, the session keys
        # (they need only RndA and RndB) while it works on part 2: off the critical path.
        self._while_waiting(_key_and_nonce, (key, derive, arg, self.rng))
        status, data = self._exchange(CMD_AUTH_EV2_FIRST, bytes([key_no, 0]), 16)
        pre = self._waited()
        if status != ST_ADDITIONAL_FRAME:
            self._fail(status, CMD_AUTH_EV2_FIRST)
        if len(data) == 17 and data[0] == 0x01:
            raise CardError(UNSUPPORTED, "card is in LRP mode")
        if len(data) != 16:
            raise CardError(PROTOCOL, "EV2 auth part 1: %d bytes" % len(data))
        key, rnda = pre or _key_and_nonce(key, derive, arg, self.rng)
        rndb, token = dc.ev2_auth_step1(key, data, rnda)
        self._while_waiting(dc.ev2_session_material, (key, rnda, rndb, subkeys))
        status, data = self._exchange(CMD_ADDITIONAL_FRAME, token, 32)
        material = self._waited()
        if status != ST_OK:
            self._fail(status, CMD_AUTH_EV2_FIRST)
        session, pd, pcd = dc.ev2_auth_step2(key, data, rnda, rndb, key_no, subkeys, material)
        self.session = session
        return pd, pcd

    def authenticate_ev2_non_first(self, key_no, key, derive=None, arg=None, then=None):
        """AuthenticateEV2NonFirst (77): authenticate `key_no` inside the current EV2 transaction.

        Same three-pass proof of the key as EV2First (the card must return E(K, RndA')), fresh
        session keys from the new RndA/RndB, but the transaction identifier and the command
        counter carry on and the card's last answer is one block (no TI, no capabilities), so
        the exchange is 16 bytes shorter. Needs an EV2 session (raises PROTOCOL otherwise).

        key None: derive(arg) gives the key; it is then derived (and RndA drawn) while the
        card works on part 1. then: (cmd, header) of the MAC-mode command without data that
        follows (ReadData): it is MACed while the card works on part 2."""
        old = self.session
        if not isinstance(old, dc.EV2Session):
            raise CardError(PROTOCOL, "AuthenticateEV2NonFirst needs an EV2 session")
        self.session = None
        self._while_waiting(_key_and_nonce, (key, derive, arg, self.rng))
        status, data = self._exchange(CMD_AUTH_EV2_NON_FIRST, bytes([key_no]), 16)
        pre = self._waited()
        if status != ST_ADDITIONAL_FRAME:
            self._fail(status, CMD_AUTH_EV2_NON_FIRST)
        if len(data) != 16:
            raise CardError(PROTOCOL, "EV2 auth part 1: %d bytes" % len(data))
        key, rnda = pre or _key_and_nonce(key, derive, arg, self.rng)
        rndb, token = dc.ev2_auth_step1(key, data, rnda)
        # the new session (TI and counter carry on) and, when the caller names it, the next
        # MAC-mode command already MACed, while the card works on part 2
        self._while_waiting(_non_first_session, (key, rnda, rndb, key_no, old.ti, old.cmd_ctr, then))
        status, data = self._exchange(CMD_ADDITIONAL_FRAME, token, 16)
        pre = self._waited()
        if status != ST_OK:
            self._fail(status, CMD_AUTH_EV2_NON_FIRST)
        if pre is None:
            self.session = dc.ev2_non_first_step2(key, data, rnda, rndb, key_no, old.ti, old.cmd_ctr)
            return
        dc.ev2_non_first_check(key, data, rnda)
        self.session = pre[0]
        if pre[1] is not None:
            self._prepared = (then[0], then[1], pre[0], pre[0].cmd_ctr, pre[1])

    def authenticate_aes(self, key_no, key):
        """AuthenticateAES (AA), the DESFire EV1 AES authentication."""
        self.session = None
        status, data = self._exchange(CMD_AUTH_AES, bytes([key_no]))
        if status != ST_ADDITIONAL_FRAME:
            self._fail(status, CMD_AUTH_AES)
        if len(data) != 16:
            raise CardError(PROTOCOL, "AES auth part 1: %d bytes" % len(data))
        rnda = self.rng(16)
        rndb, token, iv = dc.ev1_auth_step1(key, data, rnda)
        status, data = self._exchange(CMD_ADDITIONAL_FRAME, token)
        if status != ST_OK:
            self._fail(status, CMD_AUTH_AES)
        self.session = dc.ev1_auth_step2(key, iv, data, rnda, rndb, key_no)

    def authenticate(self, key_no, key, allow_ev1=True, subkeys=None, derive=None, arg=None):
        """EV2First, falling back to AES EV1 on cards without it; returns "ev2" or "ev1".
        key None: derive(arg) gives the key."""
        try:
            self.authenticate_ev2_first(key_no, key, subkeys, derive, arg)
            return "ev2"
        except DesfireError as e:
            if not allow_ev1 or e.status != ST_ILLEGAL_COMMAND:
                raise
        self.authenticate_aes(key_no, derive(arg) if key is None else key)
        return "ev1"

    def _while_waiting(self, fn, args):
        """Have the driver run fn(*args) while the next command's answer is awaited; its result
        is then what _waited() returns (None if it did not run: the caller computes it)."""
        c = self._chip
        if c is not None:
            c.idle_result = None
            c.idle_args = args
            c.idle = fn

    def _waited(self):
        c = self._chip
        if c is None:
            return None
        c.idle = None
        return c.idle_result

    def _need_session(self, what):
        if self.session is None:
            raise CardError(PROTOCOL, what + " needs an authenticated session")

    # ------------------------------------------------------------ reading

    def get_card_uid(self):
        """GetCardUID (51): the real UID (random-UID cards), always enciphered."""
        self._need_session("GetCardUID")
        s = self.session
        ev1 = s is not None and s.kind == "ev1"
        # EV2: a 4-, 7- or 10-byte UID enciphers to one block, plus the MAC
        uid = self.command(CMD_GET_CARD_UID, b"", b"", MAC, FULL, 7 if ev1 else None, 40,
                           None if ev1 else 24)
        if len(uid) not in (4, 7, 10):
            raise CardError(PROTOCOL, "GetCardUID: %d-byte UID" % len(uid))
        return uid

    def send_get_card_uid(self):
        """GetCardUID of an EV2 session, the answer kept unopened: open_card_uid(sent) checks it
        and returns the UID. Lets a reader send its next command (one that does not depend on
        the UID) first and open this answer while that one is on its way."""
        s = self.session
        if s is None or s.kind != "ev2":
            raise CardError(PROTOCOL, "send_get_card_uid needs an EV2 session")
        status, resp = self._transceive(CMD_GET_CARD_UID, s.wrap(CMD_GET_CARD_UID, b"", b"", MAC),
                                        40, 24)
        if status != ST_OK:
            self._fail(status, CMD_GET_CARD_UID)
        return s, status, resp

    @staticmethod
    def open_card_uid(sent):
        """The UID from send_get_card_uid()'s answer (MAC checked, deciphered); once per answer."""
        s, status, resp = sent
        uid = s.unwrap(status, resp, FULL)
        if len(uid) not in (4, 7, 10):
            raise CardError(PROTOCOL, "GetCardUID: %d-byte UID" % len(uid))
        return uid

    def read_sig(self):
        """Read_Sig (3C, address 00): NXP's 56-byte originality signature (r || s)."""
        mode = FULL if self.session is not None else PLAIN
        return self.command(CMD_READ_SIG, b"\x00", cmd_mode=MAC if mode else PLAIN, resp_mode=mode,
                            length=56, limit=96)

    def read_data(self, file_no, offset, length, mode):
        """ReadData (BD) of a standard file in the file's communication mode; length 0 = to the end."""
        if not 0 <= length <= MAX_IO:
            raise CardError(TOO_LONG, "read of %d bytes" % length)
        header = read_header(file_no, offset, length)
        if mode != PLAIN:
            self._need_session("ReadData")
        wire = enciphered_length(self.session, length, mode)
        return self.command(CMD_READ_DATA, header, b"", MAC if mode != PLAIN else PLAIN, mode,
                            length or None, wire or MAX_RESPONSE, wire or None)

    def write_data(self, file_no, offset, data, mode):
        """WriteData (3D) in the file's communication mode."""
        if not 0 < len(data) <= MAX_IO:
            raise CardError(TOO_LONG, "write of %d bytes" % len(data))
        if mode != PLAIN:
            self._need_session("WriteData")
        header = bytes([file_no]) + _u24(offset) + _u24(len(data))
        self.command(CMD_WRITE_DATA, header, data, cmd_mode=mode,
                     resp_mode=MAC if mode != PLAIN else PLAIN, length=0, limit=16)

    def get_file_settings(self, file_no):
        """GetFileSettings (F5): dict with type, comm mode, access rights and (data files) size."""
        mode = MAC if self.session is not None else PLAIN
        r = self.command(CMD_GET_FILE_SETTINGS, bytes([file_no]), cmd_mode=mode, resp_mode=mode,
                         limit=64)
        if len(r) < 4:
            raise CardError(PROTOCOL, "GetFileSettings: %d bytes" % len(r))
        out = {"type": r[0], "option": r[1], "comm": r[1] & 3, "access": parse_access_rights(r[2:4])}
        if r[0] in (0x00, 0x01) and len(r) >= 7:  # standard and backup data files
            out["size"] = r[4] | (r[5] << 8) | (r[6] << 16)
        return out

    def get_key_settings(self):
        """GetKeySettings (45): (key settings byte, max keys / key type byte)."""
        mode = MAC if self.session is not None else PLAIN
        r = self.command(CMD_GET_KEY_SETTINGS, cmd_mode=mode, resp_mode=mode, limit=32)
        if len(r) < 2:
            raise CardError(PROTOCOL, "GetKeySettings: %d bytes" % len(r))
        return r[0], r[1]

    # ------------------------------------------------------------ personalisation

    def _mac_mode(self):
        return MAC if self.session is not None else PLAIN

    def create_application(self, aid, key_settings, num_keys, aes=True):
        """CreateApplication (CA): AID, KeySettings1, KeySettings2 (number of keys | 0x80 for AES)."""
        if len(aid) != 3 or not 1 <= num_keys <= 14:
            raise ValueError("bad AID or key count")
        ks2 = num_keys | (0x80 if aes else 0)
        m = self._mac_mode()
        self.command(CMD_CREATE_APPLICATION, bytes(aid) + bytes([key_settings, ks2]),
                     cmd_mode=m, resp_mode=m, length=0, limit=16)

    def create_std_data_file(self, file_no, comm, rights, size):
        """CreateStdDataFile (CD): FileNo, CommSett, AccessRights (2), FileSize (3)."""
        m = self._mac_mode()
        self.command(CMD_CREATE_STD_DATA_FILE, bytes([file_no, comm]) + bytes(rights) + _u24(size),
                     cmd_mode=m, resp_mode=m, length=0, limit=16)

    def change_file_settings(self, file_no, comm, rights):
        """ChangeFileSettings (5F), enciphered when authenticated."""
        m = FULL if self.session is not None else PLAIN
        self.command(CMD_CHANGE_FILE_SETTINGS, bytes([file_no]), bytes([comm]) + bytes(rights),
                     cmd_mode=m, resp_mode=self._mac_mode(), length=0, limit=16)

    def change_key_settings(self, settings):
        """ChangeKeySettings (54) of the selected application or PICC (enciphered)."""
        self._need_session("ChangeKeySettings")
        self.command(CMD_CHANGE_KEY_SETTINGS, b"", bytes([settings]), cmd_mode=FULL, resp_mode=MAC,
                     length=0, limit=16)

    def set_configuration(self, option, data):
        """SetConfiguration (5C); option 00 with data 02 enables the random UID (irreversible)."""
        self._need_session("SetConfiguration")
        self.command(CMD_SET_CONFIGURATION, bytes([option]), bytes(data), cmd_mode=FULL,
                     resp_mode=MAC, length=0, limit=16)

    def change_key(self, key_no, new_key, version, old_key=None):
        """ChangeKey (C4). key_no may carry the key-type bits (0x80 = AES for the PICC master key).

        Changing the key that opened the session ends the session (the card answers 91 00 with
        no MAC); changing another key needs that key's current value (XOR + CRC32 of the new key).
        """
        s = self.session
        if s is None:
            raise CardError(PROTOCOL, "ChangeKey needs an authenticated session")
        body, same = dc.change_key_data(s, CMD_CHANGE_KEY, key_no, new_key, version, old_key)
        payload = s.wrap(CMD_CHANGE_KEY, bytes([key_no]), body, FULL, crc=False)
        status, resp = self._transceive(CMD_CHANGE_KEY, payload, 16)
        if status != ST_OK:
            self._fail(status, CMD_CHANGE_KEY)
        if same:
            self.session = None
            if len(resp):
                raise CardError(PROTOCOL, "ChangeKey of the session key answered with data")
            return
        try:
            if len(s.unwrap(status, resp, MAC)):
                raise CardError(PROTOCOL, "ChangeKey answered with data")
        except CardError:
            self.session = None
            raise
