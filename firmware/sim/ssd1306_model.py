# An SSD1306 on the simulated I2C bus (sim.i2c_bus.SimI2C): parses the command stream the way the
# controller does (arguments may arrive in a later write), keeps the GDDRAM (8 pages x 128
# columns) and the settings the init sequence programs, so tests can assert what the panel would
# show. Control byte 0x00/0x80 = commands, 0x40/0xC0 = display data. Horizontal, vertical and
# page addressing are modelled; scrolling is recorded, not animated. The image is GDDRAM as
# addressed (column 0 = first byte of a page); segment remap / COM scan direction only change how
# the module's glass is wired, and are kept as flags.

# Number of argument bytes after each command that takes any.
_ARGS = {0x81: 1, 0x8D: 1, 0x20: 1, 0x21: 2, 0x22: 2, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1,
         0xDB: 1, 0xA3: 2, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5}


class SSD1306Model:
    def __init__(self, width=128, pages=8):
        self.width = width
        self.pages = pages
        self.ram = bytearray(width * pages)
        self.display_on = False
        self.charge_pump = False
        self.contrast = 0x7F
        self.mux = 63
        self.offset = 0
        self.start_line = 0
        self.clock = 0x80
        self.precharge = 0x22
        self.vcomh = 0x20
        self.com_pins = 0x12
        self.mem_mode = 2  # page addressing after reset
        self.seg_remap = False
        self.com_scan_dec = False
        self.inverted = False
        self.entire_on = False
        self.scrolling = False
        self.col_start, self.col_end = 0, width - 1
        self.page_start, self.page_end = 0, pages - 1
        self.col = 0
        self.page = 0
        self.commands = []  # every complete command, as a tuple of bytes
        self.unknown = []
        self.data_bytes = 0
        self._pending = []
        self._need = 0

    # --- the I2C device interface -------------------------------------------------------------------
    def read(self, reg, n):
        """Status read: bit 6 = display off."""
        return bytes([0x00 if self.display_on else 0x40]) * n

    def write(self, reg, data):
        if reg & 0x40:
            for b in data:
                self._data(b)
        else:
            for b in data:
                self._command_byte(b)

    # --- commands -----------------------------------------------------------------------------------
    def _command_byte(self, b):
        if self._need:
            self._pending.append(b)
            self._need -= 1
            if not self._need:
                self._execute(tuple(self._pending))
            return
        n = _ARGS.get(b, 0)
        if n:
            self._pending = [b]
            self._need = n
        else:
            self._execute((b,))

    def _execute(self, cmd):
        self.commands.append(cmd)
        c = cmd[0]
        if c in (0xAE, 0xAF):
            self.display_on = c == 0xAF
        elif c == 0x81:
            self.contrast = cmd[1]
        elif c == 0x8D:
            self.charge_pump = bool(cmd[1] & 0x04)
        elif c == 0x20:
            self.mem_mode = cmd[1] & 3
        elif c == 0x21:
            self.col_start, self.col_end = cmd[1] & 0x7F, cmd[2] & 0x7F
            self.col = self.col_start
        elif c == 0x22:
            self.page_start, self.page_end = cmd[1] & 7, cmd[2] & 7
            self.page = self.page_start
        elif c == 0xA8:
            self.mux = cmd[1] & 0x3F
        elif c == 0xD3:
            self.offset = cmd[1] & 0x3F
        elif c == 0xD5:
            self.clock = cmd[1]
        elif c == 0xD9:
            self.precharge = cmd[1]
        elif c == 0xDA:
            self.com_pins = cmd[1]
        elif c == 0xDB:
            self.vcomh = cmd[1]
        elif 0x40 <= c <= 0x7F:
            self.start_line = c & 0x3F
        elif c in (0xA0, 0xA1):
            self.seg_remap = c == 0xA1
        elif c in (0xC0, 0xC8):
            self.com_scan_dec = c == 0xC8
        elif c in (0xA4, 0xA5):
            self.entire_on = c == 0xA5
        elif c in (0xA6, 0xA7):
            self.inverted = c == 0xA7
        elif c in (0x2E, 0x2F):
            self.scrolling = c == 0x2F
        elif c <= 0x0F:
            self.col = (self.col & 0xF0) | c
        elif c <= 0x1F:
            self.col = (self.col & 0x0F) | ((c & 0x0F) << 4)
        elif 0xB0 <= c <= 0xB7:
            self.page = c & 7
        elif c in _ARGS or c == 0xE3:
            pass
        else:
            self.unknown.append(cmd)

    # --- display data -------------------------------------------------------------------------------
    def _data(self, b):
        if self.col < self.width and self.page < self.pages:
            self.ram[self.page * self.width + self.col] = b
        self.data_bytes += 1
        if self.mem_mode == 0:  # horizontal
            if self.col >= self.col_end:
                self.col = self.col_start
                self.page = self.page_start if self.page >= self.page_end else self.page + 1
            else:
                self.col += 1
        elif self.mem_mode == 1:  # vertical
            if self.page >= self.page_end:
                self.page = self.page_start
                self.col = self.col_start if self.col >= self.col_end else self.col + 1
            else:
                self.page += 1
        elif self.col < self.width - 1:  # page addressing: stays in the page
            self.col += 1

    # --- assertions ---------------------------------------------------------------------------------
    def pixel(self, x, y):
        return (self.ram[(y >> 3) * self.width + x] >> (y & 7)) & 1

    def visible(self):
        """Would the glass light up at all: display on with its charge pump running."""
        return self.display_on and self.charge_pump

    def to_ascii(self, x0=0, y0=0, x1=None, y1=None, on="#", off="."):
        x1 = self.width if x1 is None else x1
        y1 = self.pages * 8 if y1 is None else y1
        rows = []
        for y in range(y0, y1):
            rows.append("".join(on if self.pixel(x, y) else off for x in range(x0, x1)))
        return "\n".join(rows)
