"""``--encoder`` specifications: one string per kind of encoder, for the command line.

==========================  ==============================================================
``serial:/dev/ttyUSB0``     ESP32 + MFRC522 running the reader firmware in encoder mode
``pcsc`` / ``pcsc:NAME``    the first PC/SC reader (whose name contains NAME)
``rpi`` / ``rpi:0.1``       Raspberry Pi, MFRC522 on /dev/spidev0.0 (0.1: CE1), reset GPIO25
``virtual``                 the RF simulator with a hopper of blank cards (demos, benchmarks)
==========================  ==============================================================
"""

from __future__ import annotations

from messages import _
from provisioning.encoders.base import Encoder, EncoderError

KINDS = ("serial", "pcsc", "rpi", "virtual")


def open_encoder(spec: str) -> Encoder:
    kind, _sep, arg = spec.partition(":")
    if kind == "serial":
        if not arg:
            raise EncoderError(_("serial encoder needs a device: serial:/dev/ttyUSB0"))
        from provisioning.encoders.serial_link import SerialEncoder

        return SerialEncoder.open(arg)
    if kind == "pcsc":
        from provisioning.encoders.pcsc import PcscEncoder

        return PcscEncoder(arg)
    if kind == "rpi":
        from provisioning.encoders.rpi import RpiEncoder

        bus, _dot, dev = (arg or "0.0").partition(".")
        if not bus.isdigit() or not (dev or "0").isdigit():
            raise EncoderError(_("rpi encoder: {arg!r} is not BUS.DEVICE", arg=arg))
        return RpiEncoder(int(bus), int(dev or 0))
    if kind == "virtual":
        from provisioning.encoders.rfstack import VirtualEncoder

        return VirtualEncoder()
    raise EncoderError(
        _(
            "unknown encoder {spec!r}: one of {kinds} (e.g. serial:/dev/ttyUSB0)",
            spec=spec,
            kinds=", ".join(KINDS),
        )
    )
