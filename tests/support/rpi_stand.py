"""Stand-ins for ``spidev`` and ``RPi.GPIO`` that carry each transfer to the RF simulator's MFRC522
(shared by the Pi encoder tests and the encoder-to-door test)."""

from __future__ import annotations

import types
from typing import Any

from provisioning import fw


class Stand:
    """One simulated MFRC522 (sim.Rig) behind module stand-ins for spidev and RPi.GPIO."""

    def __init__(self) -> None:
        self.rig: Any = fw.module("sim").Rig(seed=3)
        self.opened: list[tuple[int, int]] = []
        self.gpio_out: list[tuple[int, int]] = []
        stand = self

        class SpiDev:
            max_speed_hz = 0
            mode = 0

            def open(self, bus: int, device: int) -> None:
                stand.opened.append((bus, device))

            def xfer2(self, data: list[int]) -> list[int]:
                rig = stand.rig
                rig.cs(0)
                got = bytearray(len(data))
                rig.spi.write_readinto(bytes(data), got)
                rig.cs(1)
                return list(got)

            def close(self) -> None:
                stand.opened.append((-1, -1))

        gpio = types.ModuleType("RPi.GPIO")
        gpio.BCM, gpio.OUT, gpio.HIGH, gpio.LOW = 11, 0, 1, 0  # type: ignore[attr-defined]

        def setup(pin: int, mode: int, initial: int = 1) -> None:
            output(pin, initial)

        def output(pin: int, level: int) -> None:
            stand.gpio_out.append((pin, level))
            stand.rig.rst(level)

        gpio.setup, gpio.output = setup, output  # type: ignore[attr-defined]
        gpio.setmode = gpio.setwarnings = gpio.cleanup = lambda *a: None  # type: ignore[attr-defined]
        self.spidev = types.ModuleType("spidev")
        self.spidev.SpiDev = SpiDev  # type: ignore[attr-defined]
        self.rpi = types.ModuleType("RPi")
        self.rpi.GPIO = gpio  # type: ignore[attr-defined]
        self.gpio = gpio
