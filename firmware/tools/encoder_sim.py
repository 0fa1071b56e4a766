# The reader firmware in encoder mode under the MicroPython unix port, on a serial line (a tty or
# a pseudo-terminal), with the RF simulator as its MFRC522 and one simulated card on it.
#   micropython firmware/tools/encoder_sim.py TTY [--blank UIDHEX] [--random-uid 1] [--image IN.json]
#       [--save OUT.json] [--version N] [--unplug-at N]
# --blank puts a factory-fresh DESFire EV3 (AES zero PICC key) in the field, --image a saved card;
# --save writes the card's state when the line closes (for a virtual reader to tap it later);
# --version makes the encoder speak another protocol version (tests of the refusal); --unplug-at N
# carries out request N, then leaves without answering (an encoder pulled out mid-command).
# TTY "-": the line is stdin/stdout. Prints {"encoder": "ready"} on stderr when it listens and
# {"exit": frames} when the line closes.
import sys

import toolkit  # first: puts the reader's modules on the path

# isort: split
import binascii
import json

import encoder
import mfrc522
import sim
from sim.desfire_card import DesfireEV3


def say(obj):
    sys.stderr.write(json.dumps(obj) + "\n")   # stdout may be the serial line


def main():
    pos, opts = toolkit.parse(sys.argv[1:], {"blank": "", "random-uid": "0", "image": "", "save": "",
                                              "version": "", "unplug-at": "0"}, 1)
    rig = sim.Rig(seed=1)
    chip = mfrc522.MFRC522(rig.spi, rig.cs, rig.rst, None, clock_us=lambda: int(rig.clock.us),
                           sleep_us=rig.sleep_us)
    card = None
    if opts["image"]:
        with open(opts["image"]) as f:
            card = DesfireEV3.from_image(json.load(f))
    elif opts["blank"]:
        card = DesfireEV3(uid=binascii.unhexlify(opts["blank"]), random_uid=opts["random-uid"] == "1")
    if card is not None:
        rig.field.add(card)
    if opts["version"]:
        encoder.VERSION = int(opts["version"])
    enc = encoder.Encoder(chip)
    if pos[0] == "-":          # the serial line on stdin/stdout (a pseudo-terminal's master side)
        rd = sys.stdin.buffer
        wr = sys.stdout.buffer
    else:
        rd = open(pos[0], "rb")
        wr = open(pos[0], "wb")

    def read(n):
        try:
            return rd.read(n)
        except OSError:        # the other end of a pseudo-terminal closed (EIO)
            return b""

    def write(b):
        wr.write(b)
        wr.flush()

    say({"encoder": "ready", "version": encoder.VERSION})
    try:
        enc.serve(read, write, 0, int(opts["unplug-at"]))
    except OSError:
        pass
    if opts["save"] and card is not None:
        with open(opts["save"], "w") as f:
            json.dump(card.image(), f)
    say({"exit": enc.frames, "rf_us": int(rig.clock.us)})


main()
