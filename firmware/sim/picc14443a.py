# Card side of ISO/IEC 14443-3 type A: the PICC state machine (POWER-OFF, IDLE, READY, ACTIVE,
# HALT; READY*/ACTIVE* are READY/ACTIVE with `halted` set), REQA/WUPA -> ATQA, bit-oriented
# anticollision and SELECT over one, two or three cascade levels, SAK and HLTA. Card types
# derive from it and handle what an ACTIVE card receives.
from . import crc as crcmod
from .field import Response

POWER_OFF = "POWER-OFF"
IDLE = "IDLE"
READY = "READY"
ACTIVE = "ACTIVE"
HALT = "HALT"
PROTOCOL = "PROTOCOL"      # ISO/IEC 14443-4 activated (after RATS)

REQA = 0x26
WUPA = 0x52
SEL_CODES = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88
SAK_CASCADE = 0x04


def bcc(four):
    return four[0] ^ four[1] ^ four[2] ^ four[3]


def get_bit(data, i):
    return (data[i >> 3] >> (i & 7)) & 1


def pack_bits(bits):
    out = bytearray((len(bits) + 7) // 8)
    for i in range(len(bits)):
        if bits[i]:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def is_hlta(data, nbits):
    return nbits == 32 and len(data) == 4 and data[0] == 0x50 and data[1] == 0x00 and \
        crcmod.check_crc_a(data)


class Picc14443A:
    def __init__(self, uid, atqa, sak):
        if len(uid) not in (4, 7, 10):
            raise ValueError("UID must be 4, 7 or 10 bytes")
        self.uid = bytes(uid)
        self.atqa = bytes(atqa)
        self.sak = sak
        self.state = POWER_OFF
        self.halted = False
        self.level = 0
        self.field = None
        self.rng = None             # set by the field (seeded) unless given
        self.rx_speed = 0
        self.tx_speed = 0
        self.ready_at = 0.0
        self.frames_received = 0
        self.trace = []             # last frames and answers, for debugging tests
        self._muted = False
        self._remove_after = -1
        self._leaving = False
        self._corrupt = []

    # ---- fault injection -------------------------------------------------------------
    def mute(self, on=True):
        """The card stops answering (and processing) anything until unmute()."""
        self._muted = bool(on)

    def unmute(self):
        self._muted = False

    def remove_after_frames(self, n):
        """The card leaves the field after receiving n more reader frames (it still answers the
        n-th); n=0 removes it before the next frame."""
        self._remove_after = n
        if n == 0:
            self._leaving = True

    def corrupt_next(self, n=1, kind="crc"):
        """Corrupt the card's next n answers: kind "crc" flips a bit inside the frame (CRC check
        fails), "parity" also breaks a parity bit (ParityErr at 106 kbit/s)."""
        if kind not in ("crc", "parity"):
            raise ValueError("kind must be 'crc' or 'parity'")
        for _ in range(n):
            self._corrupt.append(kind)

    def after_frame(self):
        if self._remove_after > 0:
            self._remove_after -= 1
            if self._remove_after == 0:
                self._leaving = True

    def leaving(self):
        return self._leaving

    # ---- power -----------------------------------------------------------------------
    def power_on(self):
        self.state = IDLE
        self.halted = False
        self.level = 0
        self.rx_speed = 0
        self.tx_speed = 0
        self.ready_at = 0.0
        self.on_power_up()

    def power_off(self):
        self.state = POWER_OFF
        self.on_power_down()

    def on_power_up(self):
        pass

    def on_power_down(self):
        pass

    def on_halt(self):
        pass

    def active_uid(self):
        return self.uid

    def cascade_levels(self):
        uid = self.active_uid()
        if len(uid) == 4:
            parts = [uid]
        elif len(uid) == 7:
            parts = [bytes([CASCADE_TAG]) + uid[0:3], uid[3:7]]
        else:
            parts = [bytes([CASCADE_TAG]) + uid[0:3], bytes([CASCADE_TAG]) + uid[3:6], uid[6:10]]
        return [p + bytes([bcc(p)]) for p in parts]

    def expects_crypto(self):
        return False

    def _to_idle(self):
        self.state = HALT if self.halted else IDLE
        self.level = 0
        self.on_halt()

    # ---- air interface ---------------------------------------------------------------
    def receive(self, data, nbits, speed, crypto_card, t_start):
        if self.state == POWER_OFF or self._muted or self._leaving:
            return None
        if speed != self.rx_speed:
            return None
        if t_start < self.ready_at:
            return None
        self.frames_received += 1
        if (crypto_card is self) != self.expects_crypto():
            # Enciphered for someone else, or plain while we expect ciphertext: noise to us.
            if self.state in (READY, ACTIVE):
                self._to_idle()
            return None
        speed_before = self.tx_speed     # a PPS switches speed only after its answer
        r = self.dispatch(bytes(data), nbits)
        if r is not None:
            r.speed = speed_before
            if self.expects_crypto():
                r.encrypted_for = self
            if self._corrupt:
                kind = self._corrupt.pop(0)
                self._apply_corruption(r, kind)
        self.trace.append((bytes(data), nbits, None if r is None else r.data))
        if len(self.trace) > 32:
            self.trace.pop(0)
        return r

    def _apply_corruption(self, r, kind):
        if not r.data:
            return
        b = bytearray(r.data)
        b[len(b) // 2] ^= 0x10
        r.data = bytes(b)
        if kind == "parity":
            r.parity_error = True

    def dispatch(self, data, nbits):
        st = self.state
        if nbits == 7:
            cmd = data[0] & 0x7F
            if cmd == REQA and st == IDLE:
                self.state = READY
                self.halted = False
                self.level = 0
                return Response(self.atqa)
            if cmd == WUPA and st in (IDLE, HALT):
                self.halted = st == HALT
                self.state = READY
                self.level = 0
                return Response(self.atqa)
            if st in (READY, ACTIVE):
                self._to_idle()
            return None
        if st == READY:
            return self._anticollision(data, nbits)
        if st == ACTIVE:
            if is_hlta(data, nbits):
                self.state = HALT
                self.halted = True
                self.on_halt()
                return None
            return self.handle_active(data, nbits)
        if st == PROTOCOL:
            return self.handle_protocol(data, nbits)
        return None

    def _anticollision(self, data, nbits):
        if nbits < 16 or data[0] not in SEL_CODES:
            self._to_idle()
            return None
        levels = self.cascade_levels()
        if data[0] != SEL_CODES[self.level] or self.level >= len(levels):
            return None
        cl = levels[self.level]
        nvb = data[1]
        if nvb == 0x70:
            if nbits != 72 or not crcmod.check_crc_a(data) or data[2:7] != cl:
                return None
            final = self.level == len(levels) - 1
            if final:
                self.state = ACTIVE
                sak = self.sak
            else:
                self.level += 1
                sak = SAK_CASCADE
            return Response(crcmod.with_crc_a(bytes([sak])))
        nbytes = nvb >> 4
        nbit = nvb & 0x0F
        if nbytes < 2 or nbytes > 6 or nbit > 7:
            return None
        known = (nbytes - 2) * 8 + nbit
        if known >= 40 or nbits != 16 + known:
            return None
        sent = data[2:]
        for i in range(known):
            if get_bit(sent, i) != get_bit(cl, i):
                return None
        rest = [get_bit(cl, i) for i in range(known, 40)]
        return Response(pack_bits(rest), nbits=len(rest))

    def handle_active(self, data, nbits):
        """An ACTIVE card received a frame that is not HLTA. Default: not understood -> IDLE."""
        self._to_idle()
        return None

    def handle_protocol(self, data, nbits):
        return None

    # ---- MIFARE Classic authentication (only Classic cards take part) ----------------
    def mf_auth_begin(self, auth_cmd, block, crypto_card, speed, t_start):
        if self.state in (READY, ACTIVE) and not self._muted and not self._leaving:
            # The auth command is not something this card understands.
            self._to_idle()
        return False

    def mf_auth_finish(self, auth_cmd, block, key, uid4):
        return False
