"""A Raspberry Pi with an MFRC522 on its SPI bus as the encoder: ``pip install cbcc[rpi]``.

The project's own MFRC522 driver (``firmware/lib/mfrc522.py``, the one the door readers run) works
on CPython once it has MicroPython's ``machine.SPI`` / ``machine.Pin`` call shapes; this module
gives it those over ``spidev`` (the kernel's SPI device, chip select CE0/CE1 driven by the kernel
for each transfer — the driver frames every register access in its own chip-select window, so one
``xfer2`` per call is exactly its framing) and ``RPi.GPIO`` (the reset line, BCM numbering).

Why not the ``mfrc522`` package from PyPI (pimylifeup's SimpleMFRC522): its top-level module is
also named ``mfrc522`` and would shadow the project's driver, it speaks MIFARE Classic only (no
ISO-DEP, so no DESFire), and legacy Classic/NTAG badges are already read by the project's stack
(``classic.py``, ``ntag.py``). Wiring: docs/encoder-protocol.md, "Raspberry Pi".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from messages import _
from provisioning import fw
from provisioning.encoders.base import EncoderError
from provisioning.encoders.rfstack import RfStackEncoder

DEFAULT_RST_BCM = 25  # GPIO25, header pin 22 (the common RC522 HAT wiring)
SPI_HZ = 4_000_000  # the MFRC522 allows 10 MHz; 4 MHz keeps long jumper wires honest


class SpidevSPI:
    """``machine.SPI``'s write / write_readinto over a ``spidev.SpiDev``."""

    def __init__(self, dev: Any) -> None:
        self.dev = dev

    def write(self, buf: bytes | bytearray | memoryview) -> None:
        self.dev.xfer2(list(bytes(buf)))

    def write_readinto(self, tx: bytes | bytearray | memoryview, rx: bytearray | memoryview) -> None:
        got = self.dev.xfer2(list(bytes(tx)))
        for i in range(len(rx)):
            rx[i] = got[i]


class KernelChipSelect:
    """The driver's chip-select calls: a no-op, the kernel asserts CE for each ``xfer2``."""

    def __call__(self, level: int | None = None) -> int:
        return 0 if level is None else level


class GpioPin:
    """``machine.Pin``'s call shape for one RPi.GPIO output (the MFRC522's NRSTPD)."""

    def __init__(self, gpio: Any, bcm: int) -> None:
        self.gpio, self.bcm = gpio, bcm
        gpio.setup(bcm, gpio.OUT, initial=gpio.HIGH)
        self._level = 1

    def __call__(self, level: int | None = None) -> int:
        if level is not None:
            self._level = 1 if level else 0
            self.gpio.output(self.bcm, self.gpio.HIGH if level else self.gpio.LOW)
        return self._level

    def value(self, level: int | None = None) -> int:
        return self(level)


class RpiEncoder(RfStackEncoder):
    """The encoder on ``/dev/spidev{bus}.{device}`` with the reset line on BCM ``rst``."""

    name = "rpi"

    def __init__(self, bus: int = 0, device: int = 0, rst: int = DEFAULT_RST_BCM, speed_hz: int = SPI_HZ,
                 clock_us: Callable[[], int] | None = None,
                 sleep_us: Callable[[float], None] | None = None) -> None:  # fmt: skip
        try:
            import spidev  # type: ignore[import-not-found,unused-ignore]
            from RPi import GPIO  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except (ImportError, RuntimeError) as exc:  # RPi.GPIO raises RuntimeError off a Pi
            raise EncoderError(
                _("the Raspberry Pi encoder needs spidev and RPi.GPIO on a Pi: {reason}", reason=exc)
            ) from None
        dev = spidev.SpiDev()
        try:
            dev.open(bus, device)
        except OSError as exc:
            hint = _("enable SPI in raspi-config")
            raise EncoderError(
                _(
                    "cannot open {path} ({hint}): {reason}",
                    path=f"/dev/spidev{bus}.{device}",
                    hint=hint,
                    reason=exc,
                )
            ) from None
        dev.max_speed_hz = speed_hz
        dev.mode = 0
        GPIO.setwarnings(False)
        GPIO.setmode(GPIO.BCM)
        self._dev, self._gpio = dev, GPIO
        mfrc522 = fw.module("mfrc522")
        chip = mfrc522.MFRC522(SpidevSPI(dev), KernelChipSelect(), GpioPin(GPIO, rst), None,
                               clock_us=clock_us, sleep_us=sleep_us)  # fmt: skip
        super().__init__(chip)

    def close(self) -> None:
        try:
            self.field_off()
        finally:
            self._dev.close()
            self._gpio.cleanup()
