# Timing model of the reader: modelled microseconds for SPI traffic between the ESP32 and the
# MFRC522, for frames on air, and for the time cards take to answer. Sources and assumptions are
# listed in docs/simulator.md; every constant here can be overridden on the Rig.

FC_MHZ = 13.56                      # carrier frequency fc
ETU_106_US = 128.0 / FC_MHZ         # one bit at 106 kbit/s = 128/fc = 9.44 us
SPEED_KBPS = (106, 212, 424, 848)   # TxSpeed/RxSpeed codes 0..3

# ISO/IEC 14443-3 frame delay time PICC -> PCD for REQA/WUPA/ANTICOLLISION/SELECT:
# (n * 128 + 84) / fc with n = 9 (last PCD bit 1), the bound used for every answer here; a
# card's own processing time is added on top for commands that need it.
FDT_MIN_US = (9 * 128 + 84) / FC_MHZ

# SPI cost on an ESP32 running MicroPython (../shared/context/esp32-projection.md: "a MicroPython
# SPI.write/readinto call costs tens of us"): fixed cost per call plus 8 bit-times per byte.
SPI_CALL_US = 25.0
PIN_CALL_US = 4.0                   # one machine.Pin.value() call
SPI_DEFAULT_BAUDRATE = 10000000     # the MFRC522 SPI maximum (10 Mbit/s)

# MFRC522 reset: 512 clocks of internal reset (37.74 us) after the crystal has started.
RESET_PHASE_US = 37.74
XTAL_START_US = 500.0               # crystal start-up: board dependent, an assumption

# Card processing (beyond FDT_MIN_US), per command class.
CARD_US = {
    "iso3": 0.0,                # ATQA, anticollision, SAK: answered at FDT
    "rats": 400.0,              # RATS -> ATS
    "pps": 100.0,
    "block": 100.0,             # R(ACK) during chaining, S(DESELECT), S(WTX) answers
    "desfire": 1000.0,          # a DESFire command (esp32-projection.md: "order of a millisecond")
    "desfire_af": 300.0,        # next frame of an answer already computed
    "desfire_crypto": 1500.0,   # AuthenticateEV2First / AES parts
    "desfire_write": 3000.0,    # EEPROM-writing commands, plus per 32 bytes below
    "desfire_write_32": 1000.0,
    "desfire_format": 20000.0,
    "ntag_read": 0.0,
    "ntag_write": 4100.0,       # NTAG21x EEPROM programming time
    "classic_read": 0.0,
    "classic_write": 2500.0,
    "classic_auth": 0.0,
}


def bit_us(speed_code):
    """Duration of one bit at TxSpeed/RxSpeed code 0..3 (106..848 kbit/s)."""
    return ETU_106_US / (1 << (speed_code & 3))


def frame_bits(nbits):
    """Bits on air for a frame carrying nbits data bits: start + data + a parity bit after each
    complete byte + end of communication."""
    return 1 + nbits + nbits // 8 + 1


def frame_air_us(nbits, speed_code):
    return frame_bits(nbits) * bit_us(speed_code)


def fwt_us(fwi):
    """Frame waiting time (ISO/IEC 14443-4): (256 * 16 / fc) * 2^FWI."""
    return 256.0 * 16.0 / FC_MHZ * (1 << fwi)


def sfgt_us(sfgi):
    if sfgi == 0:
        return 0.0
    return 256.0 * 16.0 / FC_MHZ * (1 << sfgi)


KINDS = ("spi", "air", "card", "timeout", "reset", "idle")


class Clock:
    """Modelled time. It only moves when the firmware does something that costs time on the
    reader (an SPI call, a pin access, an explicit sleep), so polling loops see chip events at
    the modelled instant they happen. Elapsed time is attributed to the RF activity it overlaps
    (frames on air, card processing, waiting for a timeout) or else to the kind of the call."""

    def __init__(self):
        self.now = 0.0          # absolute modelled time; never goes back
        self._origin = 0.0
        self._segments = []     # [start, end, kind], in time order, RF activity
        self.reset()

    @property
    def us(self):
        """Modelled microseconds since the rig was made or the clock last reset()."""
        return self.now - self._origin

    def reset(self):
        """Start a new measurement: elapsed time and the breakdown restart from zero (the chip
        and the cards keep running on the same time line)."""
        self._origin = self.now
        self._acct = {}
        for k in KINDS:
            self._acct[k] = 0.0
        self.frames = 0         # frames transmitted by the reader
        self.rx_frames = 0      # frames received from cards
        self.spi_calls = 0
        self.spi_total_us = 0.0

    def add_segment(self, start, end, kind):
        if end > start:
            self._segments.append([start, end, kind])

    def truncate_segments(self, at):
        """Activity after `at` will not happen (the command was cancelled)."""
        keep = []
        for seg in self._segments:
            if seg[0] >= at:
                continue
            if seg[1] > at:
                seg[1] = at
            keep.append(seg)
        self._segments = keep

    def advance(self, dt, kind="spi"):
        if dt <= 0:
            return
        start = self.now
        end = start + dt
        covered = 0.0
        keep = []
        for seg in self._segments:
            s0 = seg[0] if seg[0] > start else start
            s1 = seg[1] if seg[1] < end else end
            if s1 > s0:
                self._acct[seg[2]] += s1 - s0
                covered += s1 - s0
            if seg[1] > end:
                keep.append(seg)
        self._segments = keep
        self._acct[kind] += dt - covered
        self.now = end

    def sleep_us(self, us):
        """Model the firmware waiting (e.g. time.sleep_us) while the chip and cards carry on."""
        self.advance(us, "idle")

    def sleep_ms(self, ms):
        self.advance(ms * 1000.0, "idle")

    def breakdown(self):
        a = self._acct
        return {
            "total_us": self.us,
            "spi_us": a["spi"],
            "air_us": a["air"],
            "card_us": a["card"],
            "timeout_us": a["timeout"],
            "reset_us": a["reset"],
            "idle_us": a["idle"],
            "frames": self.frames,
            "rx_frames": self.rx_frames,
            "spi_calls": self.spi_calls,
            "spi_total_us": self.spi_total_us,
        }
