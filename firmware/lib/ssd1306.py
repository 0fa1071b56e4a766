# SSD1306 128x64 OLED over I2C (address 0x3C; some modules strap 0x3D), for attendance terminals.
# The display is optional: every bus error is caught, the driver then reports present = False and
# all calls become no-ops, so a missing, unplugged or broken OLED never stops the terminal.
#
# I2C framing (SSD1306 datasheet 8.1.5): control byte 0x00 = a stream of command bytes follows,
# 0x40 = a stream of GDDRAM data bytes follows. The frame buffer is 1024 bytes in the controller's
# own layout (MONO_VLSB: byte = 8 vertical pixels of one page, bit 0 on top), so show() copies it
# as-is in horizontal addressing mode: one 128-byte write per page.
try:
    import framebuf

    def _frame_buffer(buf, w, h):
        return framebuf.FrameBuffer(buf, w, h, framebuf.MONO_VLSB)

except ImportError:  # CPython (host tests): the same drawing primitives in Python

    def _frame_buffer(buf, w, h):
        return MonoVlsb(buf, w, h)


ADDR = 0x3C
WIDTH = 128
HEIGHT = 64
PAGES = HEIGHT // 8

# Power-on sequence (datasheet "Software initialization" flow + the charge-pump application note)
INIT = bytes((
    0xAE,        # display off
    0xD5, 0x80,  # display clock divide ratio / oscillator frequency (reset value)
    0xA8, 0x3F,  # multiplex ratio 64
    0xD3, 0x00,  # display offset 0
    0x40,        # display start line 0
    0x8D, 0x14,  # charge pump on (internal DC-DC; modules have no external VCC)
    0x20, 0x00,  # memory addressing mode: horizontal
    0xA1,        # segment remap: column 127 -> SEG0
    0xC8,        # COM output scan direction: remapped (COM63 -> COM0)
    0xDA, 0x12,  # COM pins: alternative configuration, no left/right remap (128x64 panels)
    0x81, 0xCF,  # contrast
    0xD9, 0xF1,  # pre-charge period (phase 1 = 1, phase 2 = 15 DCLK) for the internal charge pump
    0xDB, 0x40,  # VCOMH deselect level
    0xA4,        # display follows RAM
    0xA6,        # normal (not inverted)
    0x2E,        # scrolling off
    0xAF,        # display on
))
# Address window for a full-frame write: columns 0-127, pages 0-7.
_WINDOW = bytes((0x21, 0, WIDTH - 1, 0x22, 0, PAGES - 1))


class SSD1306:
    def __init__(self, i2c, addr=ADDR, init=True):
        self.i2c = i2c
        self.addr = addr
        self.buf = bytearray(WIDTH * HEIGHT // 8)
        self.fb = _frame_buffer(self.buf, WIDTH, HEIGHT)
        self.present = False
        self.errors = 0
        self.on = False
        if init:
            self.init()

    def _cmd(self, data):
        if not self.present:
            return False
        try:
            self.i2c.writeto_mem(self.addr, 0x00, data)
            return True
        except OSError:
            self._lost()
            return False

    def _lost(self):
        self.present = False
        self.on = False
        self.errors += 1

    def init(self):
        """(Re)initialise; True when the controller acknowledged. Safe to call again to look for a
        display plugged in later."""
        self.present = True
        if self._cmd(INIT):
            self.on = True
            self.fb.fill(0)
            self.show()
        return self.present

    def show(self):
        """Copy the frame buffer to the display (8 writes of 128 bytes)."""
        if not self._cmd(_WINDOW):
            return False
        mv = memoryview(self.buf)
        try:
            for p in range(PAGES):
                self.i2c.writeto_mem(self.addr, 0x40, mv[p * WIDTH:(p + 1) * WIDTH])
        except OSError:
            self._lost()
            return False
        return True

    def clear(self):
        self.fb.fill(0)
        return self.show()

    def poweroff(self):
        if self._cmd(b"\xae"):
            self.on = False

    def poweron(self):
        if self._cmd(b"\xaf"):
            self.on = True

    def contrast(self, level):
        self._cmd(bytes((0x81, max(0, min(255, level)))))

    def invert(self, flag):
        self._cmd(b"\xa7" if flag else b"\xa6")

    def rotate(self, upside_down):
        """Mounted the other way up: mirror columns and rows in the controller (no redraw cost)."""
        self._cmd(b"\xa0\xc0" if upside_down else b"\xa1\xc8")


class MonoVlsb:
    """framebuf.FrameBuffer(buf, w, h, MONO_VLSB) for CPython: the primitives the terminal uses,
    with the same clipping, so both interpreters produce the same bytes."""

    def __init__(self, buf, w, h):
        self.buf = buf
        self.w = w
        self.h = h

    def pixel(self, x, y, c=None):
        if not (0 <= x < self.w and 0 <= y < self.h):
            return None
        i = (y >> 3) * self.w + x
        bit = 1 << (y & 7)
        if c is None:
            return 1 if self.buf[i] & bit else 0
        if c:
            self.buf[i] |= bit
        else:
            self.buf[i] &= ~bit & 0xFF
        return None

    def fill(self, c):
        v = 0xFF if c else 0
        for i in range(len(self.buf)):
            self.buf[i] = v

    def fill_rect(self, x, y, w, h, c):
        x0 = max(x, 0)
        y0 = max(y, 0)
        x1 = min(x + w, self.w)
        y1 = min(y + h, self.h)
        for yy in range(y0, y1):
            for xx in range(x0, x1):
                self.pixel(xx, yy, c)

    def hline(self, x, y, w, c):
        self.fill_rect(x, y, w, 1, c)

    def vline(self, x, y, h, c):
        self.fill_rect(x, y, 1, h, c)

    def rect(self, x, y, w, h, c, f=False):
        if f:
            self.fill_rect(x, y, w, h, c)
            return
        self.fill_rect(x, y, w, 1, c)
        self.fill_rect(x, y + h - 1, w, 1, c)
        self.fill_rect(x, y, 1, h, c)
        self.fill_rect(x + w - 1, y, 1, h, c)
