"""The ESP32 encoder path: the reader firmware in encoder mode (firmware/lib/encoder.py) under the
MicroPython unix port with the simulated MFRC522 and card, on a pseudo-terminal; the host talks
pyserial to it (provisioning/encoders/serial_link.py). Issuance, a refused protocol version, the
encoder pulled out mid-issuance and resumed, and the frame parser under random bytes."""

from __future__ import annotations

import json
from pathlib import Path

import encoder as fw_encoder
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.issuance import STAFF, STATION, database, make_issuer, uid_for

from cbcc.issuance.service import issue_card, pending_issuances
from provisioning.encoders import serial_link
from provisioning.encoders.base import LinkLost, ProtocolVersionError
from provisioning.encoders.serial_link import SerialEncoder
from simulators.encoder_pty import FirmwareOnPty

pytestmark = pytest.mark.micropython


def test_issue_through_the_firmware_encoder(tmp_path: Path) -> None:
    engine = database(tmp_path)
    image = tmp_path / "card.json"
    with FirmwareOnPty(blank=uid_for(1), save=image) as dev:
        enc = SerialEncoder.open(dev.device)
        assert enc.info == {"version": 1, "max_payload": 300, "name": "cbcc-encoder mfrc522"}
        got = issue_card(engine, enc, make_issuer(), STAFF[0], STATION)
        enc.close()
    assert got.serial == 1000000 and got.uid == uid_for(1) and got.generation == "DESFire EV3"
    card = json.loads(image.read_text())
    assert card["random_uid"] and [a["aid"] for a in card["apps"]] == [0x314356]
    assert dev.exit["exit"] > 60  # every frame answered, then the line closed


def test_other_protocol_version_is_refused_before_any_card_command(tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    with FirmwareOnPty(blank=uid_for(1), save=image, version=2) as dev, \
            pytest.raises(ProtocolVersionError, match="version 2"):  # fmt: skip
        SerialEncoder.open(dev.device)
    card = json.loads(image.read_text())
    assert card["apps"] == [] and not card["random_uid"] and card["picc_key_version"] == 0


@pytest.mark.parametrize("unplug_at", [2, 9, 17, 25, 33, 41, 49, 57, 65])
def test_encoder_pulled_out_mid_issuance_then_resumed(tmp_path: Path, unplug_at: int) -> None:
    """The encoder carries out request N and is gone before answering; a new encoder with the same
    card (its saved state) finishes the same issuance."""
    engine = database(tmp_path)
    issuer = make_issuer()
    image = tmp_path / "card.json"
    with FirmwareOnPty(blank=uid_for(1), save=image, unplug_at=unplug_at) as dev:
        enc = SerialEncoder.open(dev.device, timeout_s=2.0)
        with pytest.raises(LinkLost):
            issue_card(engine, enc, issuer, STAFF[0], STATION)
        enc.close()
    pending = pending_issuances(engine)
    with FirmwareOnPty(image=image, save=image) as dev:
        enc = SerialEncoder.open(dev.device)
        got = issue_card(engine, enc, issuer, STAFF[0], STATION)
        enc.close()
    assert got.serial == 1000000 and got.resumed == bool(pending)
    assert not pending_issuances(engine)


def test_host_and_firmware_agree_on_frames() -> None:
    for payload in (b"", b"\x90\x60\x00\x00\x00", bytes(range(256)) + bytes(44)):
        assert serial_link.encode(4, 7, payload) == fw_encoder.frame(4, 7, payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_frame_parser_never_hangs_or_crashes_on_noise(data: bytes) -> None:
    pos = [0]

    def read(n: int) -> bytes:
        out = data[pos[0] : pos[0] + n]
        pos[0] += len(out)
        return out

    for _ in range(len(data) + 2):
        try:
            f = fw_encoder.read_frame(read)
        except fw_encoder.Noise:
            continue
        if f is None:
            break
        assert len(f[3]) <= fw_encoder.MAX_PAYLOAD
    assert pos[0] == len(data)
