# A MIFARE DESFire EV3 card model on top of ISO-DEP: the PICC level and applications (AID, key
# settings, up to 14 AES keys with versions), standard data files (access rights read / write /
# read&write / change, communication modes plain / MAC / full), EV2 and EV1 AES authentication
# with card-side secure messaging, additional frames (AF) both ways, native and ISO 7816-4
# wrapped framing, random UID, GetCardUID and the ECDSA originality signature (ReadSig).
# Only AES keys are modelled (factory cards ship with a DES PICC master key; here it is AES).
import aes

from . import crc as crcmod
from . import ecdsa_p224, timing
from .desfire_sm import Ev1Session, Ev2Session, SmError, rotl1
from .picc_isodep import IsoDepCard

OK = 0x00
NO_CHANGES = 0x0C
ILLEGAL_COMMAND = 0x1C
INTEGRITY_ERROR = 0x1E
NO_SUCH_KEY = 0x40
LENGTH_ERROR = 0x7E
PERMISSION_DENIED = 0x9D
PARAMETER_ERROR = 0x9E
APPLICATION_NOT_FOUND = 0xA0
AUTHENTICATION_ERROR = 0xAE
ADDITIONAL_FRAME = 0xAF
BOUNDARY_ERROR = 0xBE
COMMAND_ABORTED = 0xCA
COUNT_ERROR = 0xCE
DUPLICATE_ERROR = 0xDE
FILE_NOT_FOUND = 0xF0

COMM_PLAIN = 0x00
COMM_MAC = 0x01
COMM_FULL = 0x03
FREE = 0x0E
NEVER = 0x0F

FRAME_DATA_MAX = 59     # data bytes per native response frame before AF continuation
MAX_APPS = 28


class DesfireError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _le(b):
    return b[0] | (b[1] << 8) | (b[2] << 16)


def _le3(v):
    return bytes((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF))


def _mode_name(comm):
    if comm == COMM_FULL:
        return "full"
    if comm == COMM_MAC:
        return "mac"
    return "plain"


class DesfireFile:
    """A standard data file. access = Read<<12 | Write<<8 | ReadWrite<<4 | Change."""

    def __init__(self, file_no, comm_mode, access, size, iso_fid=None):
        self.file_no = file_no
        self.comm_mode = comm_mode
        self.access = access
        self.size = size
        self.data = bytearray(size)
        self.iso_fid = iso_fid

    def right(self, which):
        shift = {"read": 12, "write": 8, "rw": 4, "change": 0}[which]
        return (self.access >> shift) & 0x0F

    def settings(self):
        return bytes((0x00, self.comm_mode, self.access & 0xFF, self.access >> 8)) + _le3(self.size)


class DesfireApp:
    def __init__(self, aid, ks1, n_keys, key_bytes=None, iso=False):
        self.aid = aid
        self.ks1 = ks1
        self.n_keys = n_keys
        self.iso = iso
        k = bytes(16) if key_bytes is None else bytes(key_bytes)
        self.keys = [k] + [bytes(16) for _ in range(n_keys - 1)]
        self.key_versions = [0] * n_keys
        self.files = {}

    def ks2(self):
        return 0x80 | (0x20 if self.iso else 0) | self.n_keys


class DesfireEV3(IsoDepCard):
    def __init__(self, uid=bytes(7), random_uid=False, picc_master_key=bytes(16),
                 storage=0x1A, fsci=5, fwi=8, sfgi=1, ta=0x77, batch=b"\xba\x44\x97\xd6\x70",
                 production=(0x28, 0x21)):
        IsoDepCard.__init__(self, uid, b"\x44\x03", 0x20, fsci=fsci, fwi=fwi, sfgi=sfgi, ta=ta)
        if len(uid) != 7:
            raise ValueError("DESFire EV3 UIDs are 7 bytes")
        self.picc = DesfireApp(0, 0x0F, 1, picc_master_key)
        self.apps = {}
        self.random_uid = random_uid
        self.format_disabled = False
        self.storage = storage
        self.batch = bytes(batch)
        self.production = production
        self.session_uid = None
        self.originality_signature = None
        self.next_rndb = None       # test hooks: force the next RndB / TI the card picks
        self.next_ti = None
        self.commands = []          # native command codes received, for tests
        self.frame_data_max = FRAME_DATA_MAX
        self._reset_app_state()

    # ---- identity ---------------------------------------------------------------------------
    def _reset_app_state(self):
        self.selected = self.picc
        self.session = None
        self._af = None

    def on_power_up(self):
        IsoDepCard.on_power_up(self)
        self._reset_app_state()
        if self.random_uid:
            rnd = self.rng.bytes(3) if self.rng is not None else b"\x00\x00\x01"
            self.session_uid = b"\x08" + rnd
            self.atqa = b"\x04\x03"
        else:
            self.session_uid = None
            self.atqa = b"\x44\x03"

    def on_power_down(self):
        self._reset_app_state()

    def on_halt(self):
        IsoDepCard.on_halt(self)
        self._reset_app_state()

    def deselected(self):
        self._reset_app_state()

    def active_uid(self):
        if self.random_uid and self.session_uid is not None:
            return self.session_uid
        return self.uid

    def signature(self):
        if self.originality_signature is None:
            self.originality_signature = ecdsa_p224.sign_uid(self.uid)
        return self.originality_signature

    def _random(self, n, forced):
        if forced is not None:
            return bytes(forced)
        if self.rng is not None:
            return self.rng.bytes(n)
        import os
        return os.urandom(n)

    # ---- framing ---------------------------------------------------------------------------
    def process_apdu(self, apdu):
        if not apdu:
            return b"", timing.CARD_US["block"]
        if apdu[0] == 0x90 and len(apdu) >= 5:
            lc = 0
            data = b""
            if len(apdu) > 5:
                lc = apdu[4]
                data = apdu[5:5 + lc]
                trailer = len(apdu) - 5 - lc
                if len(data) != lc or trailer not in (0, 1):
                    return b"\x67\x00", timing.CARD_US["block"]
            if apdu[2] != 0 or apdu[3] != 0:
                return b"\x6a\x86", timing.CARD_US["block"]
            status, out, us = self._native(apdu[1], bytes(data))
            return out + bytes((0x91, status)), us
        if apdu[0] == 0x00 and len(apdu) >= 4:
            return b"\x6d\x00", timing.CARD_US["block"]     # ISO 7816-4 commands: not modelled
        status, out, us = self._native(apdu[0], bytes(apdu[1:]))
        return bytes([status]) + out, us

    def _native(self, cmd, data):
        self.commands.append(cmd)
        if cmd == ADDITIONAL_FRAME:
            af = self._af
            self._af = None
            if af is None:
                return ILLEGAL_COMMAND, b"", timing.CARD_US["desfire_af"]
            try:
                return af[0](af, data)
            except DesfireError as e:
                return self._fail(e.code)
            except SmError as e:
                return self._fail(e.code)
        self._af = None
        handler = self._handlers().get(cmd)
        if handler is None:
            return self._fail(ILLEGAL_COMMAND)
        try:
            return handler(data)
        except DesfireError as e:
            return self._fail(e.code)
        except SmError as e:
            return self._fail(e.code)

    def _fail(self, code):
        self.session = None
        self._af = None
        return code, b"", timing.CARD_US["desfire"]

    def _handlers(self):
        return {
            0x60: self._get_version, 0x5A: self._select_application,
            0x71: self._auth_ev2_first, 0x77: self._auth_ev2_non_first, 0xAA: self._auth_aes,
            0x51: self._get_card_uid, 0x3C: self._read_sig, 0xBD: self._read_data,
            0x3D: self._write_data, 0xCA: self._create_application,
            0xCD: self._create_std_data_file, 0xC4: self._change_key,
            0x5C: self._set_configuration, 0x5F: self._change_file_settings,
            0xF5: self._get_file_settings, 0x45: self._get_key_settings,
            0x64: self._get_key_version, 0x6F: self._get_file_ids,
            0x6A: self._get_application_ids, 0xFC: self._format_picc,
        }

    def _chunked(self, status, payload, us, sizes=None):
        """Send payload over as many frames as needed; the last carries `status`."""
        chunks = []
        rest = bytes(payload)
        i = 0
        while True:
            size = self.frame_data_max
            if sizes is not None and i < len(sizes):
                size = sizes[i]
            if len(rest) <= size and (sizes is None or i >= len(sizes) - 1):
                chunks.append(rest)
                break
            chunks.append(rest[:size])
            rest = rest[size:]
            i += 1
        if len(chunks) == 1:
            return status, chunks[0], us
        self._af = (self._af_more, chunks[1:], status)
        return ADDITIONAL_FRAME, chunks[0], us

    def _af_more(self, af, data):
        chunks = af[1]
        if data:
            raise DesfireError(LENGTH_ERROR)
        if len(chunks) > 1:
            self._af = (self._af_more, chunks[1:], af[2])
            return ADDITIONAL_FRAME, chunks[0], timing.CARD_US["desfire_af"]
        return af[2], chunks[0], timing.CARD_US["desfire_af"]

    # ---- secure messaging helpers -------------------------------------------------------------
    def _cmd_in(self, cmd, header, rest, mode, full_len=None):
        """Command data after secure messaging. Modes: "plain"; "mac" (EV2: MACt appended; EV1:
        no MAC, the IV follows the command); "macdata" (a MAC appended under EV1 too);
        "full" (enciphered)."""
        if self.session is None:
            return bytes(rest)
        return self.session.command_in(cmd, header, rest, mode, full_len)

    def _resp(self, data, mode, us, sizes=None):
        if self.session is not None:
            data = self.session.response_out(OK, data, mode)
        return self._chunked(OK, data, us, sizes)

    def _keys(self):
        return self.selected

    def _need_session(self):
        if self.session is None:
            raise DesfireError(AUTHENTICATION_ERROR)
        return self.session

    def _mode_if_auth(self, mode):
        return mode if self.session is not None else "plain"

    # ---- commands ---------------------------------------------------------------------------
    def _get_version(self, data):
        mode = self._mode_if_auth("mac")
        self._cmd_in(0x60, b"", data, mode)
        hw = bytes((0x04, 0x01, 0x01, 0x33, 0x00, self.storage, 0x05))
        sw = bytes((0x04, 0x01, 0x01, 0x03, 0x00, self.storage, 0x05))
        uid = bytes(7) if self.random_uid else self.uid
        prod = uid + self.batch + bytes(self.production)
        return self._resp(hw + sw + prod, mode, timing.CARD_US["desfire"], sizes=(7, 7))

    def _select_application(self, data):
        if len(data) != 3:
            raise DesfireError(LENGTH_ERROR)
        aid = _le(data)
        self.session = None
        if aid == 0:
            self.selected = self.picc
        elif aid in self.apps:
            self.selected = self.apps[aid]
        else:
            raise DesfireError(APPLICATION_NOT_FOUND)
        return OK, b"", timing.CARD_US["desfire"]

    def _key(self, key_no):
        app = self.selected
        if key_no >= app.n_keys:
            raise DesfireError(NO_SUCH_KEY)
        return app.keys[key_no]

    def _auth_ev2_first(self, data):
        if len(data) < 2 or len(data) != 2 + data[1]:
            raise DesfireError(LENGTH_ERROR)
        key_no = data[0] & 0x0F
        key = self._key(key_no)
        pcd_caps = bytes(data[2:8])
        self.session = None
        rnd_b = self._random(16, self.next_rndb)
        self.next_rndb = None
        enc = aes.cbc_encrypt(key, bytes(16), rnd_b)
        self._af = (self._ev2_part2, key_no, key, rnd_b, pcd_caps, True)
        return ADDITIONAL_FRAME, enc, timing.CARD_US["desfire_crypto"]

    def _auth_ev2_non_first(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        old = self.session
        if old is None or old.kind != "ev2":
            raise DesfireError(AUTHENTICATION_ERROR)
        key_no = data[0] & 0x0F
        key = self._key(key_no)
        rnd_b = self._random(16, self.next_rndb)
        self.next_rndb = None
        enc = aes.cbc_encrypt(key, bytes(16), rnd_b)
        self._af = (self._ev2_part2, key_no, key, rnd_b, (old.ti, old.cmd_ctr), False)
        self.session = None
        return ADDITIONAL_FRAME, enc, timing.CARD_US["desfire_crypto"]

    def _ev2_part2(self, af, data):
        key_no, key, rnd_b, extra, first = af[1], af[2], af[3], af[4], af[5]
        if len(data) != 32:
            raise DesfireError(LENGTH_ERROR)
        plain = aes.cbc_decrypt(key, bytes(16), data)
        rnd_a = plain[:16]
        if plain[16:] != rotl1(rnd_b):
            raise DesfireError(AUTHENTICATION_ERROR)
        if first:
            ti = self._random(4, self.next_ti)
            self.next_ti = None
            caps = extra + bytes(6 - len(extra))
            resp = aes.cbc_encrypt(key, bytes(16), ti + rotl1(rnd_a) + bytes(6) + caps)
            self.session = Ev2Session(key_no, key, rnd_a, rnd_b, ti, 0)
        else:
            resp = aes.cbc_encrypt(key, bytes(16), rotl1(rnd_a))
            self.session = Ev2Session(key_no, key, rnd_a, rnd_b, extra[0], extra[1])
        return OK, resp, timing.CARD_US["desfire_crypto"]

    def _auth_aes(self, data):
        if len(data) != 1:
            raise DesfireError(LENGTH_ERROR)
        key_no = data[0] & 0x0F
        key = self._key(key_no)
        self.session = None
        rnd_b = self._random(16, self.next_rndb)
        self.next_rndb = None
        enc = aes.cbc_encrypt(key, bytes(16), rnd_b)
        self._af = (self._aes_part2, key_no, key, rnd_b, enc)
        return ADDITIONAL_FRAME, enc, timing.CARD_US["desfire_crypto"]

    def _aes_part2(self, af, data):
        key_no, key, rnd_b, enc_b = af[1], af[2], af[3], af[4]
        if len(data) != 32:
            raise DesfireError(LENGTH_ERROR)
        plain = aes.cbc_decrypt(key, enc_b, data)
        rnd_a = plain[:16]
        if plain[16:] != rotl1(rnd_b):
            raise DesfireError(AUTHENTICATION_ERROR)
        resp = aes.cbc_encrypt(key, data[16:32], rotl1(rnd_a))
        self.session = Ev1Session(key_no, rnd_a, rnd_b)
        return OK, resp, timing.CARD_US["desfire_crypto"]

    def _get_card_uid(self, data):
        self._need_session()
        self._cmd_in(0x51, b"", data, "mac")
        return self._resp(self.uid, "full", timing.CARD_US["desfire"])

    def _read_sig(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        header = data[0:1]
        if header[0] != 0x00:
            raise DesfireError(PARAMETER_ERROR)
        if self.session is None:
            if len(data) != 1:
                raise DesfireError(LENGTH_ERROR)
            return self._chunked(OK, self.signature(), timing.CARD_US["desfire"])
        self._cmd_in(0x3C, header, data[1:], "mac")
        return self._resp(self.signature(), "full", timing.CARD_US["desfire"])

    def _file(self, file_no):
        app = self.selected
        if app is self.picc or file_no not in app.files:
            raise DesfireError(FILE_NOT_FOUND)
        return app.files[file_no]

    def _access(self, f, rights):
        """Communication mode for an access with any of `rights`, or raise if not allowed."""
        keys = [f.right(r) for r in rights]
        if FREE in keys:
            return "plain"
        s = self.session
        if s is None:
            raise DesfireError(AUTHENTICATION_ERROR)
        if s.key_no not in keys:
            raise DesfireError(AUTHENTICATION_ERROR)
        return _mode_name(f.comm_mode)

    def _read_data(self, data):
        if len(data) < 7:
            raise DesfireError(LENGTH_ERROR)
        header = data[0:7]
        f = self._file(header[0] & 0x1F)
        mode = self._access(f, ("read", "rw"))
        self._cmd_in(0xBD, header, data[7:], "plain" if mode == "plain" else "mac")
        offset = _le(header[1:4])
        length = _le(header[4:7])
        if offset > f.size or (length and offset + length > f.size):
            raise DesfireError(BOUNDARY_ERROR)
        if length == 0:
            length = f.size - offset
        content = bytes(f.data[offset:offset + length])
        us = timing.CARD_US["desfire"] + 2.0 * length
        return self._resp(content, mode, us)

    def _wire_len(self, mode, length):
        s = self.session
        if mode == "plain":
            return length
        if mode == "mac":
            return length + 8
        if s is not None and s.kind == "ev1":
            return ((length + 4 + 15) // 16) * 16
        return ((length + 1 + 15) // 16) * 16 + 8

    def _write_data(self, data):
        if len(data) < 7:
            raise DesfireError(LENGTH_ERROR)
        header = bytes(data[0:7])
        f = self._file(header[0] & 0x1F)
        mode = self._access(f, ("write", "rw"))
        offset = _le(header[1:4])
        length = _le(header[4:7])
        if length == 0:
            raise DesfireError(LENGTH_ERROR)
        if offset + length > f.size:
            raise DesfireError(BOUNDARY_ERROR)
        need = self._wire_len(mode, length)
        return self._write_collect((None, f, header, mode, length, need, bytes(data[7:])))

    def _write_collect(self, st):
        f, header, mode, length, need, got = st[1], st[2], st[3], st[4], st[5], st[6]
        if len(got) > need:
            raise DesfireError(LENGTH_ERROR)
        if len(got) < need:
            self._af = (self._write_more, f, header, mode, length, need, got)
            return ADDITIONAL_FRAME, b"", timing.CARD_US["desfire_af"]
        plain = self._cmd_in(0x3D, header, got, "macdata" if mode == "mac" else mode,
                             full_len=length)
        if len(plain) != length:
            raise DesfireError(LENGTH_ERROR)
        offset = _le(header[1:4])
        f.data[offset:offset + length] = plain
        us = timing.CARD_US["desfire_write"] + timing.CARD_US["desfire_write_32"] * \
            ((length + 31) // 32)
        return self._resp(b"", "plain" if mode == "plain" else "mac", us)

    def _write_more(self, af, data):
        return self._write_collect((None, af[1], af[2], af[3], af[4], af[5], af[6] + bytes(data)))

    def _create_application(self, data):
        if self.selected is not self.picc:
            raise DesfireError(PERMISSION_DENIED)
        mode = self._mode_if_auth("mac")
        body = self._cmd_in(0xCA, b"", data, mode)
        if len(body) < 5:
            raise DesfireError(LENGTH_ERROR)
        self._need_picc_master_unless(0x04)
        aid = _le(body[0:3])
        ks1 = body[3]
        ks2 = body[4]
        if aid == 0 or (ks2 & 0xC0) != 0x80 or not 1 <= (ks2 & 0x0F) <= 14:
            raise DesfireError(PARAMETER_ERROR)
        if aid in self.apps:
            raise DesfireError(DUPLICATE_ERROR)
        if len(self.apps) >= MAX_APPS:
            raise DesfireError(COUNT_ERROR)
        self.apps[aid] = DesfireApp(aid, ks1, ks2 & 0x0F, iso=(ks2 & 0x20) != 0)
        return self._resp(b"", mode, timing.CARD_US["desfire_write"])

    def _need_picc_master_unless(self, free_bit):
        if self.picc.ks1 & free_bit:
            return
        s = self.session
        if s is None or self.selected is not self.picc or s.key_no != 0:
            raise DesfireError(AUTHENTICATION_ERROR)

    def _create_std_data_file(self, data):
        app = self.selected
        if app is self.picc:
            raise DesfireError(PERMISSION_DENIED)
        mode = self._mode_if_auth("mac")
        body = self._cmd_in(0xCD, b"", data, mode)
        iso_len = 2 if app.iso else 0
        if len(body) != 7 + iso_len:
            raise DesfireError(LENGTH_ERROR)
        if not app.ks1 & 0x04:
            s = self.session
            if s is None or s.key_no != 0:
                raise DesfireError(AUTHENTICATION_ERROR)
        file_no = body[0]
        if file_no > 31:
            raise DesfireError(PARAMETER_ERROR)
        if file_no in app.files:
            raise DesfireError(DUPLICATE_ERROR)
        p = 1 + iso_len
        comm = body[p] & 0x03
        access = body[p + 1] | (body[p + 2] << 8)
        size = _le(body[p + 3:p + 6])
        if comm == 0x02:
            comm = COMM_PLAIN
        app.files[file_no] = DesfireFile(file_no, comm, access, size,
                                         bytes(body[1:3]) if iso_len else None)
        return self._resp(b"", mode, timing.CARD_US["desfire_write"])

    def _change_key(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        s = self._need_session()
        header = bytes(data[0:1])
        app = self.selected
        target = header[0] & 0x0F
        if app is self.picc:
            if target != 0:
                raise DesfireError(NO_SUCH_KEY)
        elif target >= app.n_keys:
            raise DesfireError(NO_SUCH_KEY)
        ck = app.ks1 >> 4
        if target == 0:
            if not app.ks1 & 0x01 or s.key_no != 0:
                raise DesfireError(PERMISSION_DENIED if not app.ks1 & 0x01 else
                                   AUTHENTICATION_ERROR)
        elif ck == 0x0F:
            raise DesfireError(PERMISSION_DENIED)
        else:
            need = target if ck == 0x0E else ck
            if s.key_no != need:
                raise DesfireError(AUTHENTICATION_ERROR)
        same = target == s.key_no
        old = app.keys[target]
        if s.kind == "ev2":
            plain = s.command_in(0xC4, header, data[1:], "full")
            if same:
                if len(plain) != 17:
                    raise DesfireError(LENGTH_ERROR)
                new = plain[:16]
            else:
                if len(plain) != 21:
                    raise DesfireError(LENGTH_ERROR)
                new = aes.xor(plain[:16], old)
                if crcmod.crc32_desfire(new) != plain[17:21]:
                    raise DesfireError(INTEGRITY_ERROR)
            version = plain[16]
        else:
            raw = s.decipher_raw(data[1:])
            body = raw[:17]
            if crcmod.crc32_desfire(b"\xc4" + header + body) != raw[17:21]:
                raise DesfireError(INTEGRITY_ERROR)
            if same:
                new = body[:16]
            else:
                new = aes.xor(body[:16], old)
                if crcmod.crc32_desfire(new) != raw[21:25]:
                    raise DesfireError(INTEGRITY_ERROR)
            version = body[16]
        app.keys[target] = bytes(new)
        app.key_versions[target] = version
        us = timing.CARD_US["desfire_write"]
        if same:
            self.session = None
            return OK, b"", us
        return self._resp(b"", "mac", us)

    def _set_configuration(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        s = self._need_session()
        if self.selected is not self.picc or s.key_no != 0:
            raise DesfireError(PERMISSION_DENIED)
        header = bytes(data[0:1])
        plain = self._cmd_in(0x5C, header, data[1:], "full", full_len=1)
        if header[0] != 0x00:
            raise DesfireError(PARAMETER_ERROR)
        if len(plain) != 1:
            raise DesfireError(LENGTH_ERROR)
        if plain[0] & 0x02:
            self.random_uid = True
        if plain[0] & 0x01:
            self.format_disabled = True
        return self._resp(b"", "mac", timing.CARD_US["desfire_write"])

    def _change_file_settings(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        header = bytes(data[0:1])
        f = self._file(header[0] & 0x1F)
        change = f.right("change")
        if change == NEVER:
            raise DesfireError(PERMISSION_DENIED)
        if change == FREE:
            mode = "plain"
        else:
            s = self._need_session()
            if s.key_no != change:
                raise DesfireError(AUTHENTICATION_ERROR)
            mode = "full"
        plain = self._cmd_in(0x5F, header, data[1:], mode, full_len=3)
        if len(plain) != 3:
            raise DesfireError(LENGTH_ERROR)
        f.comm_mode = plain[0] & 0x03
        if f.comm_mode == 0x02:
            f.comm_mode = COMM_PLAIN
        f.access = plain[1] | (plain[2] << 8)
        return self._resp(b"", "plain" if mode == "plain" else "mac",
                          timing.CARD_US["desfire_write"])

    def _get_file_settings(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        header = bytes(data[0:1])
        mode = self._mode_if_auth("mac")
        self._cmd_in(0xF5, header, data[1:], mode)
        f = self._file(header[0] & 0x1F)
        return self._resp(f.settings(), mode, timing.CARD_US["desfire"])

    def _get_key_settings(self, data):
        mode = self._mode_if_auth("mac")
        self._cmd_in(0x45, b"", data, mode)
        app = self.selected
        return self._resp(bytes((app.ks1, app.ks2())), mode, timing.CARD_US["desfire"])

    def _get_key_version(self, data):
        if len(data) < 1:
            raise DesfireError(LENGTH_ERROR)
        header = bytes(data[0:1])
        mode = self._mode_if_auth("mac")
        self._cmd_in(0x64, header, data[1:], mode)
        app = self.selected
        n = header[0] & 0x0F
        if n >= app.n_keys:
            raise DesfireError(NO_SUCH_KEY)
        return self._resp(bytes((app.key_versions[n],)), mode, timing.CARD_US["desfire"])

    def _get_file_ids(self, data):
        mode = self._mode_if_auth("mac")
        self._cmd_in(0x6F, b"", data, mode)
        app = self.selected
        if app is self.picc:
            raise DesfireError(PERMISSION_DENIED)
        ids = sorted(app.files.keys())
        return self._resp(bytes(ids), mode, timing.CARD_US["desfire"])

    def _get_application_ids(self, data):
        mode = self._mode_if_auth("mac")
        self._cmd_in(0x6A, b"", data, mode)
        if self.selected is not self.picc:
            raise DesfireError(PERMISSION_DENIED)
        out = b""
        for aid in sorted(self.apps.keys()):
            out += _le3(aid)
        return self._resp(out, mode, timing.CARD_US["desfire"])

    def _format_picc(self, data):
        mode = self._mode_if_auth("mac")
        self._cmd_in(0xFC, b"", data, mode)
        s = self._need_session()
        if self.selected is not self.picc or s.key_no != 0:
            raise DesfireError(AUTHENTICATION_ERROR)
        if self.format_disabled:
            raise DesfireError(PERMISSION_DENIED)
        self.apps = {}
        return self._resp(b"", mode, timing.CARD_US["desfire_format"])

    # ---- convenience for tests and the benchmark (personalise without the RF path) -----------
    def provision_app(self, aid, keys, files=(), ks1=0x0B):
        """Create an application with the given AES keys (list of 16-byte keys) and files
        [(file_no, comm_mode, access, data_bytes)], as a personalised card would carry."""
        app = DesfireApp(aid, ks1, len(keys), keys[0])
        for i in range(len(keys)):
            app.keys[i] = bytes(keys[i])
        for file_no, comm, access, content in files:
            f = DesfireFile(file_no, comm, access, len(content))
            f.data[:] = bytes(content)
            app.files[file_no] = f
        self.apps[aid] = app
        return app

    # ---- card images: a card personalised in one process (an encoder) tapped in another ----------
    def image(self):
        """The card's persistent state as a JSON-able dict (what its EEPROM holds)."""
        from binascii import hexlify

        def h(b):
            return hexlify(bytes(b)).decode()

        apps = []
        for aid in sorted(self.apps):
            a = self.apps[aid]
            apps.append({"aid": aid, "ks1": a.ks1, "n_keys": a.n_keys, "iso": a.iso,
                         "keys": [h(k) for k in a.keys], "versions": list(a.key_versions),
                         "files": [{"no": f.file_no, "comm": f.comm_mode, "access": f.access,
                                    "data": h(f.data)} for f in a.files.values()]})
        return {"model": "desfire-ev3", "uid": h(self.uid), "random_uid": self.random_uid,
                "format_disabled": self.format_disabled, "picc_key": h(self.picc.keys[0]),
                "picc_key_version": self.picc.key_versions[0], "picc_ks1": self.picc.ks1, "apps": apps}

    @classmethod
    def from_image(cls, d):
        from binascii import unhexlify

        card = cls(uid=unhexlify(d["uid"]), random_uid=bool(d["random_uid"]),
                   picc_master_key=unhexlify(d["picc_key"]))
        card.format_disabled = bool(d.get("format_disabled", False))
        card.picc.key_versions[0] = d.get("picc_key_version", 0)
        card.picc.ks1 = d.get("picc_ks1", 0x0F)
        for a in d.get("apps", ()):
            app = DesfireApp(a["aid"], a["ks1"], a["n_keys"], iso=a.get("iso", False))
            app.keys = [unhexlify(k) for k in a["keys"]]
            app.key_versions = list(a["versions"])
            for f in a.get("files", ()):
                data = unhexlify(f["data"])
                df = DesfireFile(f["no"], f["comm"], f["access"], len(data))
                df.data[:] = data
                app.files[f["no"]] = df
            card.apps[a["aid"]] = app
        return card
