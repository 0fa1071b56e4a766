# The reader's board under the unix port: the RF simulator for the MFRC522, settable door inputs,
# and a recorded relay and feedback, behind the same interface as the ESP32 board
# (firmware/lib/board_esp32.py): ms(), relay(on), inputs(), feedback(pattern, info).
import ticks


class SimBoard:
    def __init__(self, rig=None, clock_ms=None, max_history=512, display=None):
        """rig: a sim.Rig (the MFRC522 and the RF field); clock_ms: a function returning a
        non-wrapping millisecond count (default: the host's monotonic clock, for real-time runs
        against a broker; tests pass a manual clock)."""
        self.rig = rig
        self._clock_ms = clock_ms
        self._t0 = ticks.ticks_ms()
        self.door_open = False
        self.rex = False
        self.emergency = False
        self.tamper = False
        self.relay_on = False
        self.relay_history = []   # (ms, on) for every change, bounded
        self.feedback_log = []    # (ms, pattern, info), bounded
        self.max_history = max_history
        self.display = display    # an ssd1306.SSD1306 on a simulated I2C bus, or None

    def ms(self):
        if self._clock_ms is not None:
            return self._clock_ms()
        return ticks.elapsed_ms(self._t0)

    def relay(self, on):
        on = bool(on)
        if on != self.relay_on:
            self.relay_on = on
            self._log(self.relay_history, (self.ms(), on))

    def inputs(self):
        return self.door_open, self.rex, self.emergency, self.tamper

    def feedback(self, pattern, info):
        self._log(self.feedback_log, (self.ms(), pattern, info))
        if self.display is not None and isinstance(info, tuple):
            import terminal_display

            terminal_display.show_decision(self.display, info)

    def _log(self, log, item):
        if len(log) >= self.max_history:
            log.pop(0)
        log.append(item)
