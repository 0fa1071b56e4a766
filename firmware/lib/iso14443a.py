# ISO/IEC 14443-3 type A on an MFRC522: REQA/WUPA, bit-oriented anticollision with cascade
# levels (4-, 7- and 10-byte UIDs), BCC check, SELECT/SAK, HLTA, and several cards in the field
# (resolve each collision bit by bit, select one card, halt it, look for the next).
#
# The chip object is mfrc522.MFRC522 (or anything with transceive_raw/transceive/set_crc).
import rferror
from rferror import CardError

REQA = 0x26
WUPA = 0x52
HLTA = 0x50
SEL_CODES = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88
SAK_CASCADE = 0x04       # UID not complete
SAK_ISO14443_4 = 0x20    # PICC compliant with ISO/IEC 14443-4

ERR_COLL = 0x08
ERR_CRC_OR_PARITY = 0x06
COLL_POS_NOT_VALID = 0x20

# Frame delay of a type A PICC is ~86-91 us; the timer only has to cover the start of the answer
# (it stops after the fifth received bit), so 1 ms is ample and keeps empty polls short.
T_ANSWER_US = 1000
_REQA = bytes((REQA,))
_WUPA = bytes((WUPA,))
MAX_CARDS = 8
FIELD_OFF_US = 6000      # carrier off long enough for every card to reset
FIELD_SETTLE_US = 5000   # ISO 14443-3: a PICC is ready within 5 ms of the field coming on


class Target:
    """A selected card: uid (4, 7 or 10 bytes), sak, atqa (2 bytes)."""

    def __init__(self, uid, sak, atqa):
        self.uid = uid
        self.sak = sak
        self.atqa = atqa

    def iso_dep(self):
        return bool(self.sak & SAK_ISO14443_4)

    def __repr__(self):
        return "Target(uid=%s, sak=%02x)" % (_hex(self.uid), self.sak)


def _hex(b):
    return "".join("%02x" % x for x in b)


def bcc(b4):
    return b4[0] ^ b4[1] ^ b4[2] ^ b4[3]


def request(chip, wake=False):
    """REQA (cards in IDLE answer) or WUPA (IDLE and HALT): returns ATQA, raises NO_CARD.

    Several cards answering with different ATQAs collide; that still means cards are present,
    so the (partly garbled) ATQA is returned."""
    chip.set_crc(False, False)
    try:
        rx, last, err, _ = chip.transceive_raw(_WUPA if wake else _REQA, T_ANSWER_US, 7, 0, 2)
    except CardError as e:
        if e.reason == rferror.TIMEOUT:
            raise CardError(rferror.NO_CARD, "no answer to " + ("WUPA" if wake else "REQA"))
        raise
    if err & ERR_COLL:
        return (bytes(rx) + b"\x00\x00")[:2]
    if err & ERR_CRC_OR_PARITY:
        raise CardError(rferror.CRC, "ATQA parity")
    if len(rx) != 2 or last:
        raise CardError(rferror.PROTOCOL, "ATQA of %d bytes" % len(rx))
    return rx


def _anticollision_level(chip, sel):
    """Bit-oriented anticollision on one cascade level: returns the 4 UID CLn bytes of one card
    (choosing the 1 branch at every collision)."""
    known = bytearray(5)      # UID CLn (4) + BCC
    nbits = 0                 # bits of `known` that are certain
    chip.set_crc(False, False)
    for _ in range(34):       # at most one round per UID bit, plus the first and the last
        full = nbits >> 3
        extra = nbits & 7
        nvb = ((2 + full) << 4) | extra
        frame = bytes((sel, nvb)) + bytes(known[:full + (1 if extra else 0)])
        rx, last, err, coll = chip.transceive_raw(frame, T_ANSWER_US, extra, extra, 5 - full)
        if len(rx) > 5 - full:
            raise CardError(rferror.PROTOCOL, "anticollision answer too long")
        out = bytearray(known)
        for i in range(len(rx)):
            b = rx[i]
            if i == 0 and extra:
                keep = (1 << extra) - 1
                out[full] = (known[full] & keep) | (b & ~keep & 0xFF)
            else:
                out[full + i] = b
        if err & ERR_COLL:
            if coll & COLL_POS_NOT_VALID:
                raise CardError(rferror.COLLISION, "collision position not valid")
            pos = coll & 0x1F
            if pos == 0:
                pos = 32
            # CollPos counts the FIFO bits of the answer, the RxAlign offset included
            bit = full * 8 + pos - 1
            if bit < nbits or bit >= 32:
                raise CardError(rferror.COLLISION, "collision at bit %d (known %d)" % (bit, nbits))
            bi = bit >> 3
            m = 1 << (bit & 7)
            out[bi] = (out[bi] & (m - 1)) | m      # keep the bits below, take the 1 branch
            for j in range(bi + 1, 5):
                out[j] = 0
            known = out
            nbits = bit + 1
            if nbits == 32:
                return bytes(known[:4])
            continue
        if err & ERR_CRC_OR_PARITY:
            raise CardError(rferror.CRC, "anticollision parity")
        if err:
            raise CardError(rferror.PROTOCOL, "anticollision ErrorReg %02x" % err)
        if len(rx) != 5 - full or last:
            raise CardError(rferror.PROTOCOL, "anticollision answer of %d bytes" % len(rx))
        if bcc(out) != out[4]:
            raise CardError(rferror.CRC, "BCC mismatch")
        return bytes(out[:4])
    raise CardError(rferror.COLLISION, "anticollision did not converge")


def _select_level(chip, sel, uid4):
    chip.set_crc(True, True)
    rx = chip.transceive(bytes((sel, 0x70)) + uid4 + bytes((bcc(uid4),)), T_ANSWER_US, 0, 1)
    if len(rx) != 1:
        raise CardError(rferror.PROTOCOL, "SAK of %d bytes" % len(rx))
    return rx[0]


def select(chip, atqa=b"\x00\x00"):
    """Anticollision and SELECT over the cascade levels. Returns a Target."""
    uid = b""
    for level in range(3):
        sel = SEL_CODES[level]
        part = _anticollision_level(chip, sel)
        sak = _select_level(chip, sel, part)
        if sak & SAK_CASCADE:
            if part[0] != CASCADE_TAG:
                raise CardError(rferror.PROTOCOL, "cascade bit without cascade tag")
            uid += part[1:]
            continue
        return Target(uid + part, sak, atqa)
    raise CardError(rferror.PROTOCOL, "UID longer than three cascade levels")


def uid_levels(uid):
    """The UID CLn blocks SELECT sends for a complete UID."""
    n = len(uid)
    if n == 4:
        return [bytes(uid)]
    if n == 7:
        return [bytes((CASCADE_TAG,)) + uid[:3], bytes(uid[3:])]
    if n == 10:
        return [bytes((CASCADE_TAG,)) + uid[:3], bytes((CASCADE_TAG,)) + uid[3:6], bytes(uid[6:])]
    raise CardError(rferror.PROTOCOL, "UID of %d bytes" % n)


def select_uid(chip, uid, wake=True):
    """Wake the field (WUPA) and select the card with a known UID without anticollision: only
    that card answers the SELECTs. Returns a Target."""
    atqa = request(chip, wake)
    levels = uid_levels(uid)
    sak = 0
    for i in range(len(levels)):
        sak = _select_level(chip, SEL_CODES[i], levels[i])
        if (i < len(levels) - 1) != bool(sak & SAK_CASCADE):
            raise CardError(rferror.PROTOCOL, "SAK cascade bit does not match the UID length")
    return Target(bytes(uid), sak, atqa)


def halt(chip):
    """HLTA. A card that is halted does not answer; any answer within 1 ms is a NAK (ISO 14443-3
    6.4.3). Returns True if the card went quiet."""
    chip.set_crc(True, True)
    try:
        chip.transceive(bytes((HLTA, 0x00)), T_ANSWER_US)
    except CardError as e:
        if e.reason == rferror.TIMEOUT:
            return True
        if e.reason == rferror.CHIP:
            raise
        return False
    return False


def activate(chip, wake=False):
    """REQA/WUPA + anticollision + SELECT of one card. Raises NO_CARD when the field is empty."""
    atqa = request(chip, wake)
    return select(chip, atqa)


def reset_field(chip, off_us=FIELD_OFF_US, settle_us=FIELD_SETTLE_US):
    """Switch the carrier off and on: every card loses power and comes back IDLE."""
    chip.antenna(False)
    chip.delay_us(off_us)
    chip.antenna(True)
    chip.delay_us(settle_us)


def scan(chip, max_cards=MAX_CARDS, fresh=True):
    """All cards in the field: select one, halt it, ask again (REQA leaves halted cards quiet).
    fresh: reset the field first, so cards halted earlier take part (a card woken from HALT by
    WUPA goes back to HALT when another card is selected, so WUPA alone finds only one).
    Returns a list of Targets; the cards are left halted (select_uid wakes one again)."""
    found = []  # type: list
    if fresh:
        reset_field(chip)
    for _ in range(max_cards):
        try:
            atqa = request(chip, not fresh and not found)
        except CardError as e:
            if e.reason == rferror.NO_CARD:
                break
            raise
        t = select(chip, atqa)
        for f in found:
            if f.uid == t.uid:
                raise CardError(rferror.PROTOCOL, "card did not halt")
        found.append(t)
        halt(chip)
    return found


def mifare_read(chip, addr, timeout_us=5000):
    """MIFARE READ (0x30): 16 bytes from a Classic block or four Type 2 (NTAG) pages; the command
    both legacy card families share on top of ISO 14443-3."""
    chip.set_crc(True, True)
    rx = chip.transceive(bytes((0x30, addr)), timeout_us)
    if len(rx) != 16:
        raise CardError(rferror.PROTOCOL, "READ answered %d bytes" % len(rx))
    return rx
