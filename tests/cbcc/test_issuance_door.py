"""Done means: a blank simulated DESFire card issued through each encoder path opens a virtual door.

Each path issues a card for a staff member of agency 000.00.36 (allowed through "cong-chinh" by the
reader configuration of test_virtual_reader), the card's state is saved as an image, and the real
reader firmware under the MicroPython unix port (firmware/tools/virtual_reader.py, real Mosquitto
with TLS) taps it: granted, relay energised."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import host as hs
from support.broker import Broker
from support.issuance import CARD_KEYS, STATION, database, uid_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware"))  # the virtual reader's set-up
from test_virtual_reader import PASSWORD, RID, _run, _setup

from cbcc.issuance.service import Issued, Issuer, Staff, issue_card
from provisioning.encoders.base import Encoder
from provisioning.encoders.rfstack import VirtualEncoder, blank_card
from provisioning.encoders.serial_link import SerialEncoder
from simulators.encoder_pty import FirmwareOnPty

STAFF = Staff("CB-00002001", "Phạm Thu Hà", "000.00.36.H40", "Phòng Tổ chức cán bộ", "Chuyên viên")


BROKER_USERS = {RID: PASSWORD, "gateway": "pw-gateway"}  # for the shared ``broker`` fixture


def _issue(tmp: Path, enc: Encoder) -> Issued:
    s = hs.setup()
    issuer = Issuer(s.issuer, s.entry, "000.00.36.H40", CARD_KEYS)
    return issue_card(database(tmp), enc, issuer, STAFF, STATION, now=hs.NOW - 3600)


def via_virtual(tmp: Path) -> tuple[Issued, Path]:
    enc = VirtualEncoder()
    card = blank_card(uid_for(21))
    enc.place(card)
    got = _issue(tmp, enc)
    image = tmp / "card.json"
    image.write_text(json.dumps(card.image()))
    return got, image


def via_serial_firmware(tmp: Path) -> tuple[Issued, Path]:
    image = tmp / "card.json"
    with FirmwareOnPty(blank=uid_for(21), save=image) as dev:
        enc = SerialEncoder.open(dev.device)
        got = _issue(tmp, enc)
        enc.close()
    return got, image


def via_pcsc(tmp: Path) -> tuple[Issued, Path]:
    from support.pcsc import pcscd_with_vpcd

    from provisioning.encoders.pcsc import PcscEncoder
    from simulators.vicc import VirtualCard

    card = blank_card(uid_for(21))
    with pcscd_with_vpcd(tmp) as port:
        vc = VirtualCard(card, port).start()
        enc = PcscEncoder("Virtual PCD 00 00")
        got = _issue(tmp, enc)
        enc.close()
        vc.stop()
    image = tmp / "card.json"
    image.write_text(json.dumps(card.image()))
    return got, image


def via_rpi(tmp: Path) -> tuple[Issued, Path]:
    import sys
    from unittest import mock

    from support.rpi_stand import Stand as _Stand

    from provisioning.encoders.rpi import RpiEncoder

    stand = _Stand()
    card = blank_card(uid_for(21))
    stand.rig.field.add(card)
    with mock.patch.dict(sys.modules, {"spidev": stand.spidev, "RPi": stand.rpi, "RPi.GPIO": stand.gpio}):
        rig = stand.rig
        enc = RpiEncoder(clock_us=lambda: int(rig.clock.us), sleep_us=rig.sleep_us)
        got = _issue(tmp, enc)
        enc.close()
    image = tmp / "card.json"
    image.write_text(json.dumps(card.image()))
    return got, image


PATHS: dict[str, Callable[[Path], tuple[Issued, Path]]] = {
    "rpi": via_rpi,
    "virtual": via_virtual,
    "serial-firmware": via_serial_firmware,
    "pcsc": via_pcsc,
}


@pytest.mark.micropython
@pytest.mark.parametrize("path", sorted(PATHS))
def test_card_issued_through_encoder_opens_a_virtual_door(broker: Broker, tmp_path: Path, path: str) -> None:
    got, image = PATHS[path](tmp_path)
    assert got.uid == uid_for(21)
    cfg_path = _setup(tmp_path, broker)
    cfg = json.loads(cfg_path.read_text())
    k = CARD_KEYS
    cfg["issuer_keys"] = {"amk": k.amk.hex(), "read": k.read.hex(), "uid": k.uid.hex(), "picc": k.picc.hex()}
    cfg["cards"] = {"issued": {"image": str(image)}}
    cfg_path.write_text(json.dumps(cfg))
    steps = [{"at_ms": 300, "present": "issued"}, {"at_ms": 1500, "remove": "issued"},
             {"at_ms": 1700, "exit": True}]
    out = _run(cfg_path, steps, tmp_path)
    decisions = [(o["decision"], o["reason"], o["serial"], o["tech"]) for o in out if "decision" in o]
    assert decisions == [("grant", "granted", got.serial, "desfire")]
    assert out[-1]["relay_changes"] >= 1
