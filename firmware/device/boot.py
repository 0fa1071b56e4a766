# Runs first on every power-up, reset and crash-reboot of the reader (MicroPython boot.py).
# Its only job: drive the lock relay to its off (locked) level before anything else runs. The
# hardware already holds it off through reset (4.7 kΩ pull-down, hardware/pinmap.md); this line
# takes over from the resistor the moment Python starts. Pin(..., value=0) sets the level before
# the output driver is enabled, so there is no glitch. Nothing here may import the application.
import board_pins
from machine import Pin

Pin(board_pins.LOCK_RELAY, Pin.OUT, value=0)
