# The encoder's side of one card's personalisation, under the MicroPython unix port.
#   micropython firmware/tools/bench_encoder.py [--rounds R]
# One round: a blank simulated DESFire EV3 is personalised per docs/card-layout.md
# (card_layout.personalise, the same commands the host sends) where every APDU goes through
# the firmware encoder exactly as a frame from the host would: frame() built by the host side,
# read_frame() + Encoder.handle() + frame() of the answer on the encoder side.
#   modelled_rf_ms        the simulator's clock: SPI traffic, frames on air, card processing;
#   encoder_cpu_ms        unix-port time inside the encoder (framing, CRC, the MFRC522 driver,
#                         ISO-DEP) x 70 (ESP32 at 240 MHz), less the time spent in the simulator
#                         (every SPI transfer, pin edge and modelled sleep is timed and taken
#                         out: their real cost is in the modelled RF time). What stays in and
#                         makes this an UPPER BOUND: the timing wrappers and the machine.SPI /
#                         machine.Pin stand-ins (Python here, native code on the ESP32) - about
#                         570 SPI calls a card; bench_read's replay calibration is not applied;
#   frames, serial_bytes  request + answer frames and their bytes on the USB serial line.
# The median round is reported; the final line of output is one JSON object.
import gc
import sys

import toolkit  # first: puts the reader's modules (and firmware/ for sim) on the path

# isort: split
import card_layout
import encoder
import mfrc522
import sim

ESP32_FACTOR = 70


class Keys:
    amk_master = bytes(range(0x10, 0x20))


class Through:
    """desfire.Desfire's transport: each APDU as a frame through the encoder."""

    def __init__(self, enc):
        self.enc = enc
        self.us = 0
        self.frames = 0
        self.bytes = 0
        self.seq = 0

    def exchange(self, apdu, expect=0):
        self.seq = (self.seq + 1) & 0xFF
        req = encoder.frame(encoder.T_APDU, self.seq, bytes(apdu))   # built by the host: not counted
        buf = [req, 0]

        def read(n):
            b = buf[0]
            p = buf[1]
            buf[1] = p + n
            return b[p:p + n]

        gc.collect()      # the simulator's garbage is not the encoder's: collect it untimed
        t0 = toolkit.ticks_us()
        version, ftype, seq, payload = encoder.read_frame(read)
        status, out = self.enc.handle(ftype, payload)
        ans = encoder.frame(ftype | 0x80, seq, bytes((status,)) + out)
        self.us += toolkit.ticks_diff(toolkit.ticks_us(), t0)
        self.frames += 2
        self.bytes += len(req) + len(ans)
        if status != encoder.S_OK:
            raise OSError("encoder status %d" % status)
        return out


def _timed(rig, name, box):
    inner = getattr(rig, name)

    def wrapper(*a):
        t0 = toolkit.ticks_us()
        r = inner(*a)
        box[0] += toolkit.ticks_diff(toolkit.ticks_us(), t0)
        return r

    setattr(rig, name, wrapper)


def one_round(seed):
    rig = sim.Rig(seed=seed)
    box = [0]
    for name in ("_spi_transfer", "_pin_cost", "_pin_edge", "sleep_us"):
        _timed(rig, name, box)
    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, None, clock_us=lambda: int(rig.clock.us),
                           sleep_us=rig.sleep_us)
    box[0] = 0
    gc.collect()
    card = sim.cards.DesfireEV3(uid=bytes((4, 0x5A, 0x10, 0, 0, seed & 0xFF, 0x80)))
    rig.field.add(card)
    enc = encoder.Encoder(chip)
    t = Through(enc)
    rf0 = rig.clock.us
    t0 = toolkit.ticks_us()
    status, _ = enc.handle(encoder.T_DETECT, b"")
    t.us += toolkit.ticks_diff(toolkit.ticks_us(), t0)
    assert status == encoder.S_OK
    keys = card_layout.IssuerKeys(bytes(range(0x10, 0x20)), bytes(range(0x20, 0x30)),
                                  bytes(range(0x30, 0x40)), bytes(range(0x40, 0x50)))
    cred = bytes((i * 37 + 11) & 0xFF for i in range(420))
    card_layout.personalise(t, bytes(16), keys, cred)
    own = t.us - box[0]
    return ((rig.clock.us - rf0) / 1000.0, own * ESP32_FACTOR / 1000.0, t.frames + 2, t.bytes,
            rig.clock.spi_calls)


def main():
    _pos, opts = toolkit.parse(sys.argv[1:], {"rounds": "5"}, 0)
    rows = []
    for r in range(int(opts["rounds"])):
        rows.append(one_round(r + 1))
    rows.sort(key=lambda x: x[1])
    med = rows[len(rows) // 2]
    worst = rows[-1]
    print("encoder: modelled RF %.1f ms, encoder CPU (upper bound) %.1f ms, %d frames, %d serial bytes"
          % (med[0], med[1], med[2], med[3]))
    print(toolkit.json_line({"modelled_rf_ms": med[0], "encoder_cpu_ms": med[1],
                             "encoder_cpu_worst_ms": worst[1], "frames": med[2], "serial_bytes": med[3],
                             "spi_calls": med[4], "rounds": len(rows)}))


main()
