"""The simulator's core scenarios under the MicroPython unix port, checked against expected
values and against the same scenario run under CPython: with a fixed seed both interpreters must
produce identical results, modelled times included."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from support.micropython_runner import run_snippet

HELPER = (Path(__file__).parent / "test_sim_pcd.py").read_text()

SCENARIO = r'''
import json
import aes
import sim

out = {}

# ---- chip: reset values, CRC_A vectors, self test -------------------------------------------
rig = sim.Rig(seed=11)
pcd = Pcd(rig)
out["regs"] = [pcd.rd(a) for a in (0x01, 0x02, 0x04, 0x07, 0x0B, 0x0C, 0x11, 0x14, 0x36, 0x37)]
pcd.wr(ModeReg, 0x3D)
out["crc"] = [pcd.calc_crc(b"\x00\x00").hex(), pcd.calc_crc(b"\x12\x34").hex()]
pcd.wr(CommandReg, SOFT_RESET)
pcd.wr_fifo(bytes(25))
pcd.wr(CommandReg, MEM)
pcd.wr(AutoTestReg, 0x09)
pcd.wr_fifo(b"\x00")
pcd.wr(CommandReg, CALC_CRC)
out["selftest"] = pcd.rd_fifo(pcd.rd(FIFOLevelReg)).hex()

# ---- two cards, 7-byte UIDs, anticollision ----------------------------------------------------
rig = sim.Rig(seed=12)
rig.field.add(sim.cards.Ntag(213, uid=bytes.fromhex("04112233445566")))
rig.field.add(sim.cards.DesfireEV3(uid=bytes.fromhex("04112a3344556f")))
pcd = Pcd(rig)
pcd.init(timeout_ms=10)
out["atqa"] = pcd.reqa().data.hex()
first = pcd.select()
pcd.hlta()
pcd.reqa()
second = pcd.select()
out["select"] = [first[0].hex(), first[1], second[0].hex(), second[1]]
out["t_select"] = int(rig.clock.us * 1000)

# ---- muted card: the timer ends the wait --------------------------------------------------------
rig = sim.Rig(seed=13)
card = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
rig.field.add(card)
card.mute()
pcd = Pcd(rig)
pcd.init(timeout_ms=25)
t0 = rig.clock.us
rx = pcd.reqa()
out["muted"] = [rx.status, rx.irq & 0x01, int(rig.clock.us - t0)]

# ---- hung chip, recovered by NRSTPD ------------------------------------------------------------
rig.chip_hang(True, readback=0xFF)
hung = pcd.rd(VersionReg)
rig.rst(0)
rig.rst(1)
out["hang"] = [hung, pcd.rd(VersionReg), pcd.rd(WaterLevelReg)]

# ---- DESFire: GetVersion, EV2 authentication (NXP example), enciphered ReadData -------------
card = sim.cards.DesfireEV3(uid=bytes.fromhex("04112233445566"))
read_key = bytes(range(16))
content = bytes((i * 7) & 0xFF for i in range(300))
card.provision_app(0x123456, [bytes(16), read_key], files=[(1, 0x03, 0x1000, content)])
rig = sim.Rig(seed=14)
rig.field.add(card)
pcd, uid, ats = activate(rig)
df = Desfire(IsoDep(pcd))
st, ver = df.cmd(0x60)
out["version"] = [st, df.frames, ver[:7].hex()]
out["sig"] = df.cmd(0x3C, b"\x00")[1].hex()[:16]
card.next_rndb = bytes.fromhex("B9E2FC789B64BF237CCCAA20EC7E6E48")
card.next_ti = bytes.fromhex("9D00C4DF")
st1, encb = df.send(0x71, b"\x00\x00")
st2, resp = df.send(0xAF, bytes.fromhex(
    "35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D"))
out["ev2_vector"] = [st1, encb.hex(), st2, resp.hex(), card.session.enc.hex()]

df.cmd(0x5A, b"\x56\x34\x12")
st, encb = df.send(0x71, b"\x01\x00")
rndb = aes.cbc_decrypt(read_key, bytes(16), encb)
rnda = bytes(range(100, 116))
st, enc = df.send(0xAF, aes.cbc_encrypt(read_key, bytes(16), rnda + rndb[1:] + rndb[:1]))
plain = aes.cbc_decrypt(read_key, bytes(16), enc)
ti = plain[:4]
tail = rnda[0:2] + aes.xor(rnda[2:8], rndb[0:6]) + rndb[6:] + rnda[8:]
kenc = aes.cmac(read_key, b"\xa5\x5a\x00\x01\x00\x80" + tail)
kmac = aes.cmac(read_key, b"\x5a\xa5\x00\x01\x00\x80" + tail)
hdr = b"\x01\x00\x00\x00" + (300).to_bytes(3, "little")
m = aes.cmac(kmac, b"\xbd\x00\x00" + ti + hdr)
macc = bytes(m[i] for i in range(1, 16, 2))
rig.clock.reset()
st, payload = df.cmd(0xBD, hdr + macc)
iv = aes.ecb_encrypt(kenc, b"\x5a\xa5" + ti + b"\x01\x00" + bytes(8))
dec = aes.cbc_decrypt(kenc, iv, payload[:-8])
m = aes.cmac(kmac, b"\x00\x01\x00" + ti + payload[:-8])
out["read"] = [st, df.frames, dec[:300] == content, dec[300] == 0x80,
               payload[-8:] == bytes(m[i] for i in range(1, 16, 2))]
b = rig.clock.breakdown()
out["read_time"] = [b["frames"], int(b["air_us"] * 1000), int(b["total_us"] * 1000)]

# ---- NTAG and Classic ---------------------------------------------------------------------------
rig = sim.Rig(seed=15)
tag = sim.cards.Ntag(215, uid=bytes.fromhex("04a1b2c3d4e5f6"))
tag.write_user(b"hello, simulator")
rig.field.add(tag)
pcd = Pcd(rig)
pcd.init(timeout_ms=10)
pcd.reqa()
pcd.select()
out["ntag"] = [pcd.send_crc(b"\x60").data.hex(), pcd.send_crc(b"\x3a\x04\x07").data.decode()]

rig = sim.Rig(seed=16)
cl = sim.cards.Classic(uid=bytes.fromhex("a1b2c3d4"))
cl.write_block(4, b"classic block 4!")
rig.field.add(cl)
pcd = Pcd(rig)
pcd.init(timeout_ms=10)
pcd.reqa()
pcd.select()
pcd.wr(CommandReg, 0)
pcd.wr(ComIrqReg, 0x7F)
pcd.wr_fifo(b"\x60\x04" + b"\xff" * 6 + bytes.fromhex("a1b2c3d4"))
pcd.wr(CommandReg, MF_AUTHENT)
n = 0
while not pcd.rd(ComIrqReg) & 0x11 and n < 1000:
    n += 1
crypto = pcd.rd(Status2Reg) & 0x08
out["classic"] = [crypto, pcd.send_crc(b"\x30\x04").data.decode()]

print(json.dumps(out))
'''

EXPECTED_SELFTEST = (
    "00eb66ba57bf2395d0e30d3d27895cde9d3ba700215b8982513aeb020ca50049"
    "7c844db3ccd21b815d4876d5716121a986968338cf9d5b6ddc15ba3e7d953b2f"
)


@pytest.fixture(scope="module")
def results() -> tuple[dict[str, object], dict[str, object]]:
    proc = run_snippet(HELPER + SCENARIO, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    mp = json.loads(proc.stdout.strip().splitlines()[-1])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(HELPER + SCENARIO, "scenario", "exec"), {"__name__": "scenario"})
    cp = json.loads(buf.getvalue().strip().splitlines()[-1])
    return mp, cp


@pytest.mark.micropython
def test_core_scenarios_under_micropython(results: tuple[dict[str, object], dict[str, object]]) -> None:
    mp, _ = results
    assert mp["regs"] == [0x20, 0x80, 0x14, 0x21, 0x08, 0x10, 0x3F, 0x80, 0x40, 0x92]
    assert mp["crc"] == ["a01e", "26cf"]
    assert mp["selftest"] == EXPECTED_SELFTEST
    assert mp["atqa"] == "4403"      # 44 00 | 44 03: no collision in the set bits
    assert sorted([mp["select"][0], mp["select"][2]]) == ["04112233445566", "04112a3344556f"]
    assert mp["muted"][0] == "timeout" and mp["muted"][1] == 1 and 25000 <= mp["muted"][2] < 26000
    assert mp["hang"] == [0xFF, 0x92, 0x08]
    assert mp["version"] == [0, 3, "04010133001a05"]
    assert mp["ev2_vector"] == [
        0xAF, "a04c124213c186f22399d33ac2a30215", 0,
        "3fa64db5446d1f34cd6ea311167f5e4985b89690c04a05f17fa7ab2f08120663",
        "1309c877509e5a215007ff0ed19ca564",
    ]
    assert mp["read"] == [0, 6, True, True, True]
    assert mp["ntag"] == ["0004040201001103", "hello, simulator"]
    assert mp["classic"] == [0x08, "classic block 4!"]


@pytest.mark.micropython
def test_micropython_and_cpython_agree_exactly(results: tuple[dict[str, object], dict[str, object]]) -> None:
    mp, cp = results
    assert mp == cp
