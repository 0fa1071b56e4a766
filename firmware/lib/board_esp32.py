# The reader's board on an ESP32: pins from hardware/pinmap.json (copied to the device as
# /pinmap.json), the MFRC522 on SPI, LEDs and buzzer, door inputs, watchdog. Same interface as
# sim/board.py: ms(), relay(on), inputs(), feedback(pattern, info), plus tick() for patterns.
# Signals on the PoE board's MCP23017 expander are handled here too (never the relay, which is
# always a native GPIO held off by a pull-down through reset).
import json

import ticks
from machine import I2C, SPI, Pin

# LED/buzzer patterns: (green, red, buzzer_ms)
PATTERNS = {
    "grant": (True, False, 80),
    "punch": (True, False, 80),
    "duplicate": (True, False, 0),
    "deny": (False, True, 400),
    "error": (False, True, 40),
    "maintenance": (True, True, 0),
}
SHOW_MS = 1500

_MCP_IODIR = 0x00   # IODIRA; +1 for port B
_MCP_GPPU = 0x0C    # pull-ups A; +1 for B
_MCP_GPIO = 0x12
_MCP_OLAT = 0x14


class _Mcp23017:
    def __init__(self, i2c, addr, inputs_b_mask):
        self.i2c = i2c
        self.addr = addr
        self.olat = bytearray(2)
        # Outputs first written low, then directions set: nothing turns on while configuring.
        self.i2c.writeto_mem(addr, _MCP_OLAT, bytes(2))
        self.i2c.writeto_mem(addr, _MCP_IODIR, bytes((0x00, inputs_b_mask)))
        self.i2c.writeto_mem(addr, _MCP_GPPU, bytes((0x00, inputs_b_mask)))

    def set(self, port, bit, on):
        i = 0 if port == "A" else 1
        if on:
            self.olat[i] |= 1 << bit
        else:
            self.olat[i] &= ~(1 << bit) & 0xFF
        self.i2c.writeto_mem(self.addr, _MCP_OLAT + i, self.olat[i:i + 1])

    def read(self):
        return self.i2c.readfrom_mem(self.addr, _MCP_GPIO, 2)


class _Out:
    def __init__(self, sig, mcp):
        self.active_high = sig.get("active", "high") == "high"
        self.pin = None
        self.exp = sig.get("expander")
        self.mcp = mcp
        if sig.get("gpio") is not None:
            self.pin = Pin(sig["gpio"], Pin.OUT, value=0 if self.active_high else 1)

    def __call__(self, on):
        level = bool(on) == self.active_high
        if self.pin is not None:
            self.pin.value(level)
        elif self.exp is not None and self.mcp is not None:
            self.mcp.set(self.exp["port"], self.exp["bit"], level)


class _In:
    def __init__(self, sig):
        self.active_high = sig.get("active", "high") == "high"
        self.pin = Pin(sig["gpio"], Pin.IN) if sig.get("gpio") is not None else None
        self.exp = sig.get("expander")

    def get(self, mcp_bytes):
        if self.pin is not None:
            return bool(self.pin.value()) == self.active_high
        if self.exp is not None and mcp_bytes is not None:
            b = mcp_bytes[0 if self.exp["port"] == "A" else 1]
            return bool(b & (1 << self.exp["bit"])) == self.active_high
        return False


class EspBoard:
    timebase = None  # the MFRC522 driver's clock: None is the chip's own ticks_us (tests: a rig's)

    def __init__(self, board_name, pinmap_path="/pinmap.json"):
        with open(pinmap_path) as f:
            spec = json.load(f)["boards"][board_name]
        sig = spec["signals"]
        self._t0 = ticks.ticks_ms()
        self._last = self._t0
        self._ms = 0
        # The relay first, to its off level (boot.py did this already; it costs nothing twice).
        self._relay = Pin(sig["lock_relay"]["gpio"], Pin.OUT, value=0)
        self.relay_on = False
        buses = spec["buses"]
        self.i2c = None
        self.mcp = None
        if "i2c" in buses:
            b = buses["i2c"]
            self.i2c = I2C(b.get("micropython_i2c_id", 0), sda=Pin(b["sda"]), scl=Pin(b["scl"]),
                           freq=b.get("freq_hz", 400000))
            if "expanders" in spec:
                mask = 0
                for s in sig.values():
                    e = s.get("expander")
                    if e and s.get("dir") == "in" and e["port"] == "B":
                        mask |= 1 << e["bit"]
                self.mcp = _Mcp23017(self.i2c, 0x20, mask)
        r = buses["spi_rfid"]
        self.spi = SPI(r.get("micropython_spi_id", 2), baudrate=4000000, polarity=0, phase=0,
                       sck=Pin(r["sck"]), mosi=Pin(r["mosi"]), miso=Pin(r["miso"]))
        self.rfid_cs = Pin(sig["rfid_ss"]["gpio"], Pin.OUT, value=1)
        self.rfid_rst = Pin(sig["rfid_rst"]["gpio"], Pin.OUT, value=0)
        self.green = _Out(sig["led_green"], self.mcp)
        self.red = _Out(sig["led_red"], self.mcp)
        self.buzzer = _Out(sig["buzzer"], self.mcp)
        self._door = _In(sig["door_contact"])
        self._rex = _In(sig["rex"])
        self._fire = _In(sig["fire_release"])
        self._tamper = _In(sig["tamper"])
        self._safe = _In(sig["safe_mode_button"])
        self._show_until = None
        self._buzz_until = None
        self.display = None   # an SSD1306 on the I2C bus, if one answers (attendance terminals)
        if self.i2c is not None:
            try:
                if 0x3C in self.i2c.scan():
                    import ssd1306

                    self.display = ssd1306.SSD1306(self.i2c)
            except OSError:
                self.display = None

    def status_extra(self):
        """What this board adds to the retained status: free heap and the last reset cause."""
        import gc

        import machine

        return {2: gc.mem_free(), 3: machine.reset_cause()}

    def ms(self):
        # A non-wrapping count built from wrapping ticks (door logic compares plain integers).
        now = ticks.ticks_ms()
        self._ms += ticks.ticks_diff(now, self._last)
        self._last = now
        return self._ms

    def relay(self, on):
        self.relay_on = bool(on)
        self._relay.value(1 if on else 0)

    def inputs(self):
        exp = self.mcp.read() if self.mcp is not None else None
        return self._door.get(exp), self._rex.get(exp), self._fire.get(exp), self._tamper.get(exp)

    def serial_stream(self):
        """(read, write) on the USB serial line, for encoder mode: raw bytes both ways (Ctrl-C
        no longer interrupts, so a 0x03 in a frame is data). The REPL is gone until reset."""
        import sys

        import micropython

        micropython.kbd_intr(-1)
        rd, wr = sys.stdin.buffer, sys.stdout.buffer

        def write(b):
            wr.write(b)
            if hasattr(wr, "flush"):
                wr.flush()

        return rd.read, write

    def safe_mode_requested(self):
        return self._safe.get(self.mcp.read() if self.mcp is not None else None)

    def feedback(self, pattern, info):
        if self.display is not None and isinstance(info, tuple):
            import terminal_display

            terminal_display.show_decision(self.display, info)
        green, red, buzz = PATTERNS.get(pattern, (False, True, 40))
        self.green(green)
        self.red(red)
        now = self.ms()
        self._show_until = now + SHOW_MS
        if buzz:
            self.buzzer(True)
            self._buzz_until = now + buzz

    def tick(self):
        """Called from the door loop: ends buzzer beeps and LED displays on time."""
        now = self.ms()
        if self._buzz_until is not None and now >= self._buzz_until:
            self.buzzer(False)
            self._buzz_until = None
        if self._show_until is not None and now >= self._show_until:
            self.green(False)
            self.red(False)
            self._show_until = None
