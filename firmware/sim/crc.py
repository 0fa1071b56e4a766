# CRC_A (ISO/IEC 14443-3 Annex B) and the DESFire CRC32 (IEEE 802.3 polynomial, reflected,
# preset FFFFFFFF, no final inversion), both computed bit-serially from their definitions.

CRC_A_PRESET = 0x6363


def crc16_reflected(data, preset):
    """CRC with polynomial x^16 + x^12 + x^5 + 1, LSB first (reflected 0x8408), no final XOR."""
    crc = preset & 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0x8408
            else:
                crc >>= 1
    return crc


def crc_a(data):
    """CRC_A of data as the two bytes sent on air (least significant byte first)."""
    c = crc16_reflected(data, CRC_A_PRESET)
    return bytes((c & 0xFF, c >> 8))


def with_crc_a(data):
    return bytes(data) + crc_a(data)


def check_crc_a(frame):
    """True if frame (payload followed by two CRC bytes) carries a correct CRC_A."""
    if len(frame) < 3:
        return False
    return crc_a(frame[:-2]) == bytes(frame[-2:])


def bit_reverse8(b):
    r = 0
    for i in range(8):
        if b & (1 << i):
            r |= 0x80 >> i
    return r


def crc32_desfire(data):
    """DESFire CRC32 (JAMCRC) as 4 bytes, least significant first."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xEDB88320
            else:
                crc >>= 1
    return bytes((crc & 0xFF, (crc >> 8) & 0xFF, (crc >> 16) & 0xFF, (crc >> 24) & 0xFF))
