"""The PC/SC encoder path: pyscard → a real pcscd → vsmartcard's vpcd reader driver → our virtual
card (simulators/vicc.py) played by the simulator's DESFire model. Issuance, the card
pulled away mid-issuance then completed, and a storage card refused as the wrong type."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.issuance import STAFF, STATION, database, make_issuer, uid_for
from support.pcsc import pcscd_with_vpcd

from cbcc.issuance.service import issue_card, pending_issuances
from provisioning.encoders.base import LinkLost
from provisioning.encoders.pcsc import PcscEncoder
from provisioning.encoders.rfstack import blank_card
from provisioning.issuance import card as cardmod
from simulators.vicc import VirtualCard


def _encoder() -> PcscEncoder:
    return PcscEncoder("Virtual PCD 00 00")


def test_issue_through_pcsc_then_pull_mid_issuance_and_resume(tmp_path: Path) -> None:
    engine = database(tmp_path)
    issuer = make_issuer()
    with pcscd_with_vpcd(tmp_path) as port:
        first = blank_card(uid_for(3))
        vc = VirtualCard(first, port).start()
        enc = _encoder()
        got = issue_card(engine, enc, issuer, STAFF[0], STATION)
        enc.close()
        vc.stop()
        assert got.serial == 1000000 and got.uid == uid_for(3) and first.random_uid
        assert first.apps[0x314356].key_versions == [1, 1, 1]

        # a second card, pulled away (the virtual card disconnects) after its 30th APDU
        second = blank_card(uid_for(4))
        vc = VirtualCard(second, port)
        plain_answer = vc.answer

        def answer_then_pull(apdu: bytes) -> bytes:
            out = plain_answer(apdu)
            if vc.apdus == 30:
                vc.pull()
            return out

        vc.answer = answer_then_pull  # type: ignore[method-assign]
        vc.start()
        enc = _encoder()
        with pytest.raises(LinkLost) as lost:
            issue_card(engine, enc, issuer, STAFF[1], STATION)
        enc.close()
        assert vc.apdus == 30, lost.value
        assert [p.serial for p in pending_issuances(engine)] == [1000001]
        vc = VirtualCard(second, port).start()
        enc = _encoder()
        again = issue_card(engine, enc, issuer, STAFF[1], STATION)
        enc.close()
        vc.stop()
    assert again.resumed and again.serial == 1000001 and not pending_issuances(engine)


def test_storage_card_atr_is_refused_as_wrong_type(tmp_path: Path) -> None:
    engine = database(tmp_path)
    with pcscd_with_vpcd(tmp_path) as port:
        vc = VirtualCard(blank_card(uid_for(5)), port)
        # a MIFARE Classic 1K as a PC/SC reader presents it (PC/SC part 3 storage-card ATR)
        vc.atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
        vc.start()
        enc = _encoder()
        with pytest.raises(cardmod.CardRefused, match="wrong card type"):
            issue_card(engine, enc, make_issuer(), STAFF[0], STATION)
        enc.close()
        vc.stop()
    assert pending_issuances(engine) == []
