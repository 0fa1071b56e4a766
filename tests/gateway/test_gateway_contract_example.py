"""Issue 15, finding 9: the event contract is complete enough to implement from the text alone.

The worked example in docs/mqtt.md ("Sealing, byte by byte") is recomputed here from the document's
own lines, with nothing but ``hmac`` and ``cbor2`` (not the gateway's sealing code), then fed to the
gateway; the limits the text states are checked against the code's, and docs/broker.md and
docs/asyncapi.yaml must state the same payload cap."""

from __future__ import annotations

import hmac
import re
from typing import Any

import cbor2
import yaml
from support.micropython_runner import ROOT

from gateway import sealed

MQTT_MD = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")


def _section() -> str:
    start = MQTT_MD.index("### Sealing, byte by byte")
    return MQTT_MD[start : MQTT_MD.index("\n## ", start)]


def _example() -> dict[str, str]:
    block = _section().split("**Worked example**", 1)[1].split("```", 2)[1]
    out: dict[str, str] = {}
    for line in block.splitlines():
        m = re.match(r"^([a-z ]+):\s+(\S+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_worked_example_recomputes_from_the_text() -> None:
    ex = _example()
    key, rid, seq = bytes.fromhex(ex["key"]), ex["rid"], int(ex["seq"])
    record = bytes.fromhex(ex["record"])
    # the MAC input as the numbered rules say: "cbcc-ev1", ONE length byte, rid, 8-byte BE seq
    head = b"cbcc-ev1" + len(rid.encode()).to_bytes(1, "big") + rid.encode() + seq.to_bytes(8, "big")
    assert head.hex() == ex["mac input"]
    mac = hmac.new(key, head + record, "sha256").digest()
    assert mac.hex() == ex["mac"]
    payload = bytes.fromhex(ex["payload"])
    assert payload == cbor2.dumps([1, seq, record, mac])  # cbor2 writes shortest form
    decoded: dict[Any, Any] = cbor2.loads(record)
    assert decoded[3] == "tap" and decoded[13] == "CB000123" and decoded[15] is True
    opened = sealed.open_sealed(rid, key, payload)  # and the gateway agrees
    assert opened.mac == mac and opened.fields["staff_code"] == "CB000123"


def test_stated_limits_are_the_codes() -> None:
    text = _section()
    assert f"at most **{sealed.MAX_PAYLOAD:,}".replace(",", " ") + " bytes**" in text
    for key, (_col, kind, bound) in sealed.FIELDS.items():
        row = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith(f"| {key} |")), None)
        assert row is not None, f"key {key} is not in the table"
        if kind == "str" and key != sealed.DOOR:
            assert re.search(rf"\b{bound}\b", row), (key, bound, row)
    rows = [ln.strip() for ln in text.splitlines()]
    for key in (sealed.TIME, sealed.TIME_QUALITY, sealed.KIND):
        assert next(r for r in rows if r.startswith(f"| {key} |")).endswith("yes |")
    broker_md = (ROOT / "docs" / "broker.md").read_text(encoding="utf-8")
    assert "1 024 bytes" in broker_md and "readers cap at 8 KiB" not in broker_md
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    desc = doc["components"]["messages"]["sealedEvent"]["description"]
    assert f"{sealed.MAX_PAYLOAD} bytes" in desc and "one byte" in desc
