# Runs an MFRC522 driver written by others, unmodified, against the simulator as a board
# (firmware/sim/as_board: machine and os first on the path, then the driver's folder). The driver
# is only called through its own public methods; this script is the "application" a user of that
# driver would write. Prints one JSON object of what the driver saw.
#   micropython tests/mpy/outside_driver.py wendlers|danjperron [WIRING_JSON]
import json
import sys

import machine  # the simulated board (firmware/sim/as_board/machine.py)
import sim

driver = sys.argv[1]
wiring = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
rig = sim.Rig(seed=7)
machine.attach(rig, wiring)
w = machine._state["wiring"]

UID4 = b"\x8e\x3f\x12\xa0"
UID7 = b"\x04\xa1\xb2\xc3\xd4\xe5\xf6"
KEY = [0xFF] * 6
BLOCK = 8
out = {"driver": driver, "sysname": machine.sysname()}

card = sim.cards.Classic(uid=UID4)
card.write_block(BLOCK, bytes(range(16)))
rig.field.add(card)

import mfrc522  # noqa: E402 - the outside driver, after the board is wired

rdr = mfrc522.MFRC522(w["rfid_sck"], w["rfid_mosi"], w["rfid_miso"], w["rfid_rst"], w["rfid_ss"])
stat, bits = rdr.request(rdr.REQIDL)
out["request"] = [stat, bits]
if driver == "wendlers":
    stat, raw = rdr.anticoll()
    out["anticoll"] = [stat, list(raw)]
    out["select"] = rdr.select_tag(raw)
    out["auth"] = rdr.auth(rdr.AUTHENT1A, BLOCK, KEY, raw)
    out["read_before"] = rdr.read(BLOCK)
    out["write"] = rdr.write(BLOCK, list(range(100, 116)))
    out["read_after"] = rdr.read(BLOCK)
    out["auth_wrong_key"] = None
    rdr.stop_crypto1()
else:
    stat, uid = rdr.SelectTagSN()
    out["select"] = [stat, list(uid)]
    out["auth"] = rdr.auth(rdr.AUTHENT1A, BLOCK, KEY, uid)
    out["read_before"] = list(rdr.read(BLOCK))
    out["write"] = rdr.write(BLOCK, list(range(100, 116)))
    out["read_after"] = list(rdr.read(BLOCK))
    rdr.stop_crypto1()
out["card_block"] = list(card.blocks[BLOCK])

# a wrong key is refused by the chip's MFAuthent (a fresh presentation)
rig.field.remove(card)
rig.field.add(card)
if driver == "wendlers":
    rdr.request(rdr.REQIDL)
    stat, raw = rdr.anticoll()
    rdr.select_tag(raw)
    out["auth_wrong_key"] = rdr.auth(rdr.AUTHENT1A, BLOCK, [0x00] * 6, raw)
else:
    rdr.request(rdr.REQIDL)
    stat, uid = rdr.SelectTagSN()
    out["auth_wrong_key"] = rdr.auth(rdr.AUTHENT1A, BLOCK, [0x00] * 6, uid)
    # a 7-byte UID card: cascade level 2
    rig.field.remove(card)
    card7 = sim.cards.Classic(uid=UID7)
    rig.field.add(card7)
    rdr.stop_crypto1()
    out["request7"] = list(rdr.request(rdr.REQIDL))
    stat, uid = rdr.SelectTagSN()
    out["select7"] = [stat, list(uid)]
print(json.dumps(out))
