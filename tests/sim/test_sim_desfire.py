"""The simulated DESFire EV3 card through the simulated MFRC522, driven by a reader side written
in this test from NXP's documents (AN12196 / AN12343 EV2 secure messaging) with `cryptography`
doing the crypto: GetVersion over additional frames, AuthenticateEV2First against NXP's worked
example, session keys, GetCardUID, enciphered ReadData over AF frames, personalisation, random
UID, ReadSig, EV1 AES authentication and status codes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import sim
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sim import ecdsa_p224
from sim.desfire_sm import Ev2Session, SmError
from test_sim_pcd import Desfire, IsoDep, activate

UID7 = bytes.fromhex("04112233445566")
AID = 0x123456
AID_WIRE = bytes((0x56, 0x34, 0x12))


# ---- reader-side crypto, independent of the simulator -------------------------------------
def cbc(key: bytes, iv: bytes, data: bytes, enc: bool = True) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = c.encryptor() if enc else c.decryptor()
    return ctx.update(data) + ctx.finalize()


def aes_cmac(key: bytes, msg: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(msg)
    return c.finalize()


def rotl(b: bytes) -> bytes:
    return b[1:] + b[:1]


def crc32_jam(data: bytes) -> bytes:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc.to_bytes(4, "little")


@dataclass
class Ev2:
    enc: bytes
    mac: bytes
    ti: bytes
    ctr: int = 0

    def _c(self) -> bytes:
        return self.ctr.to_bytes(2, "little")

    def mact(self, head: bytes, data: bytes) -> bytes:
        return aes_cmac(self.mac, head[:1] + self._c() + self.ti + head[1:] + data)[1::2]

    def cmd_mac(self, cmd: int, header: bytes = b"", data: bytes = b"") -> bytes:
        return header + data + self.mact(bytes((cmd,)) + header, data)

    def cmd_full(self, cmd: int, header: bytes, plain: bytes) -> bytes:
        iv = cbc(self.enc, bytes(16), b"\xa5\x5a" + self.ti + self._c() + bytes(8))
        padded = plain + b"\x80" + bytes(15 - len(plain) % 16)
        enc = cbc(self.enc, iv, padded)
        return header + enc + self.mact(bytes((cmd,)) + header, enc)

    def resp(self, status: int, payload: bytes, full: bool) -> bytes:
        """Count the command, check the response MAC and (for Full) decipher."""
        self.ctr += 1
        data, mac = payload[:-8], payload[-8:]
        assert aes_cmac(self.mac, bytes((status,)) + self._c() + self.ti + data)[1::2] == mac
        if not full:
            return data
        iv = cbc(self.enc, bytes(16), b"\x5a\xa5" + self.ti + self._c() + bytes(8))
        plain = cbc(self.enc, iv, data, enc=False)
        cut = plain.rstrip(b"\x00")
        assert cut.endswith(b"\x80")
        return cut[:-1]


def ev2_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    mixed = bytes(x ^ y for x, y in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    tail = rnd_a[0:2] + mixed + rnd_b[6:] + rnd_a[8:]
    enc = aes_cmac(key, b"\xa5\x5a\x00\x01\x00\x80" + tail)
    return enc, aes_cmac(key, b"\x5a\xa5\x00\x01\x00\x80" + tail)


def authenticate_ev2(df: Desfire, key_no: int, key: bytes, rnd_a: bytes | None = None) -> Ev2:
    rnd_a = rnd_a or os.urandom(16)
    status, enc_b = df.send(0x71, bytes((key_no, 0x00)))
    assert status == 0xAF and len(enc_b) == 16
    rnd_b = cbc(key, bytes(16), enc_b, enc=False)
    status, enc = df.send(0xAF, cbc(key, bytes(16), rnd_a + rotl(rnd_b)))
    assert status == 0x00, hex(status)
    plain = cbc(key, bytes(16), enc, enc=False)
    assert plain[4:20] == rotl(rnd_a)
    k_enc, k_mac = ev2_keys(key, rnd_a, rnd_b)
    return Ev2(k_enc, k_mac, plain[:4])


def reader(card: sim.cards.DesfireEV3, iso: bool = False, seed: int = 1) -> tuple[sim.Rig, Desfire]:
    rig = sim.Rig(seed=seed)
    rig.field.add(card)
    pcd, _, _ = activate(rig)
    return rig, Desfire(IsoDep(pcd), iso_wrap=iso)


# ---- tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("iso", [False, True])
def test_get_version_takes_three_frames(iso: bool) -> None:
    _, df = reader(sim.cards.DesfireEV3(uid=UID7), iso)
    status, v = df.cmd(0x60)
    assert status == 0 and df.frames == 3
    assert v[0:7] == bytes.fromhex("0401013300" "1a05")          # NXP, DESFire, EV3, 8 KB
    assert v[7:14] == bytes.fromhex("04010103001a05")
    assert v[14:21] == UID7 and len(v) == 28


def test_authenticate_ev2_first_reproduces_nxp_worked_example() -> None:
    # AN12196 / AN12343 AuthenticateEV2First example, key 00..00
    card = sim.cards.DesfireEV3(uid=UID7)
    card.next_rndb = bytes.fromhex("B9E2FC789B64BF237CCCAA20EC7E6E48")
    card.next_ti = bytes.fromhex("9D00C4DF")
    _, df = reader(card)
    status, enc_b = df.send(0x71, b"\x00\x00")
    assert status == 0xAF and enc_b == bytes.fromhex("A04C124213C186F22399D33AC2A30215")
    status, resp = df.send(0xAF, bytes.fromhex(
        "35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D"))
    assert status == 0
    assert resp == bytes.fromhex("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663")
    s = card.session
    assert s.enc == bytes.fromhex("1309C877509E5A215007FF0ED19CA564")
    assert s.mac == bytes.fromhex("4C6626F5E72EA694202139295C7A7FC7")
    assert s.ti == bytes.fromhex("9D00C4DF") and s.cmd_ctr == 0


def _session(enc: str, mac: str, ti: str, ctr: int) -> Ev2Session:
    s = Ev2Session(0, bytes(16), bytes(16), bytes(16), bytes.fromhex(ti), ctr)
    s.enc, s.mac = bytes.fromhex(enc), bytes.fromhex(mac)
    return s


def test_secure_messaging_matches_nxp_command_examples() -> None:
    # AN12196 ChangeFileSettings (Full): IV, encryption and MACt
    s = _session("1309C877509E5A215007FF0ED19CA564", "4C6626F5E72EA694202139295C7A7FC7",
                 "9D00C4DF", 1)
    plain = s.command_in(0x5F, b"\x02", bytes.fromhex(
        "61B6D97903566E84C3AE5274467E89EA" "D799B7C1A0EF7A04"), "full")
    assert plain == bytes.fromhex("4000E0C1F121200000430000430000")
    # AN12196 ChangeKey, key 2 changed under key 0 (new XOR old || version || CRC32(new))
    s = _session("4CF3CB41A22583A61E89B158D252FC53", "5529860B2FC5FB6154B7F28361D30BF9",
                 "7614281A", 2)
    plain = s.command_in(0xC4, b"\x02", bytes.fromhex(
        "2CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7" "5D0CE20BCD1D06E6"),
        "full")
    new = bytes.fromhex("F3847D627727ED3BC9C4CC050489B966")
    assert plain == new + b"\x01" + crc32_jam(new) and crc32_jam(new).hex() == "789dfadc"
    # AN12196 ChangeKey of the authenticated key 0
    s = _session("4CF3CB41A22583A61E89B158D252FC53", "5529860B2FC5FB6154B7F28361D30BF9",
                 "7614281A", 3)
    plain = s.command_in(0xC4, b"\x00", bytes.fromhex(
        "C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD" "A6610234BDED6432"),
        "full")
    assert plain == bytes.fromhex("5004BF991F408672B1EF00F08F9E8647") + b"\x01"
    with pytest.raises(SmError):   # a flipped MAC bit is an integrity error
        _session("4CF3CB41A22583A61E89B158D252FC53", "5529860B2FC5FB6154B7F28361D30BF9",
                 "7614281A", 3).command_in(0xC4, b"\x00", bytes.fromhex(
                     "C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FD"
                     "A6610234BDED6433"), "full")


@pytest.mark.parametrize("iso", [False, True])
def test_read_path_auth_card_uid_and_enciphered_read_over_af_frames(iso: bool) -> None:
    read_key, master = os.urandom(16), os.urandom(16)
    content = os.urandom(400)
    card = sim.cards.DesfireEV3(uid=UID7, random_uid=True)
    card.provision_app(AID, [master, read_key], files=[(1, 0x03, 0x1000, content)])
    rig, df = reader(card, iso)
    assert df.cmd(0x5A, AID_WIRE)[0] == 0
    s = authenticate_ev2(df, 1, read_key)
    status, payload = df.cmd(0x51, s.cmd_mac(0x51))
    assert status == 0 and s.resp(0, payload, full=True) == UID7
    rig.clock.reset()
    status, payload = df.cmd(0xBD, s.cmd_mac(0xBD, b"\x01" + bytes(3) + (400).to_bytes(3, "little")))
    assert status == 0 and df.frames == 8          # 416 + 8 bytes in frames of 59
    assert s.resp(0, payload, full=True) == content
    b = rig.clock.breakdown()
    assert b["frames"] >= 8 and b["card_us"] > 8 * 300
    # a wrong MAC is an integrity error and ends the session
    bad = bytearray(s.cmd_mac(0xBD, b"\x01" + bytes(6)))
    bad[-1] ^= 1
    assert df.cmd(0xBD, bytes(bad))[0] == 0x1E
    assert card.session is None
    assert df.cmd(0xBD, b"\x01" + bytes(6))[0] == 0xAE


def test_authenticate_ev2_non_first_keeps_ti_and_counter() -> None:
    # NonFirst inside an EV2 transaction (AN12196 Table 23): E(K, RndB), then E(K, RndA')
    # alone; new session keys from the new randoms, the TI and the command counter carry on.
    key0, key1 = os.urandom(16), os.urandom(16)
    card = sim.cards.DesfireEV3(uid=UID7)
    card.provision_app(AID, [key0, key1])
    _, df = reader(card)
    assert df.cmd(0x5A, AID_WIRE)[0] == 0
    s0 = authenticate_ev2(df, 0, key0)
    status, payload = df.cmd(0x51, s0.cmd_mac(0x51))
    assert status == 0 and s0.resp(0, payload, full=True) == UID7 and s0.ctr == 1
    rnd_a = os.urandom(16)
    status, enc_b = df.send(0x77, b"\x01")
    assert status == 0xAF and len(enc_b) == 16
    rnd_b = cbc(key1, bytes(16), enc_b, enc=False)
    status, enc = df.send(0xAF, cbc(key1, bytes(16), rnd_a + rotl(rnd_b)))
    assert status == 0x00 and len(enc) == 16
    assert cbc(key1, bytes(16), enc, enc=False) == rotl(rnd_a)
    s1 = Ev2(*ev2_keys(key1, rnd_a, rnd_b), ti=s0.ti, ctr=s0.ctr)
    assert card.session is not None and card.session.key_no == 1
    status, payload = df.cmd(0x51, s1.cmd_mac(0x51))
    assert status == 0 and s1.resp(0, payload, full=True) == UID7 and s1.ctr == 2
    # without an EV2 session NonFirst is refused
    assert df.cmd(0x5A, AID_WIRE)[0] == 0
    assert df.cmd(0x77, b"\x01")[0] == 0xAE


def test_wrong_key_is_an_authentication_error() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    card.provision_app(AID, [bytes(16), os.urandom(16)])
    _, df = reader(card)
    df.cmd(0x5A, AID_WIRE)
    status, enc_b = df.send(0x71, b"\x01\x00")
    assert status == 0xAF
    rnd_b = cbc(bytes(16), bytes(16), enc_b, enc=False)      # wrong key
    status, _ = df.send(0xAF, cbc(bytes(16), bytes(16), os.urandom(16) + rotl(rnd_b)))
    assert status == 0xAE and card.session is None
    assert df.cmd(0x71, b"\x05\x00")[0] == 0x40              # no such key


def test_personalisation_and_random_uid() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    rig, df = reader(card)
    s = authenticate_ev2(df, 0, bytes(16))                    # factory PICC master key
    st, p = df.cmd(0xCA, s.cmd_mac(0xCA, data=AID_WIRE + b"\x0b\x82"))   # 2 AES keys
    assert st == 0 and s.resp(0, p, full=False) == b""
    assert df.cmd(0x5A, AID_WIRE)[0] == 0
    s = authenticate_ev2(df, 0, bytes(16))
    k0, k1 = os.urandom(16), os.urandom(16)
    plain = bytes(x ^ y for x, y in zip(k1, bytes(16), strict=True)) + b"\x01" + crc32_jam(k1)
    st, p = df.cmd(0xC4, s.cmd_full(0xC4, b"\x01", plain))
    assert st == 0 and s.resp(0, p, full=False) == b""
    st, p = df.cmd(0xC4, s.cmd_full(0xC4, b"\x00", k0 + b"\x02"))
    assert st == 0 and p == b"" and card.session is None     # own key changed: session over
    assert card.apps[AID].keys == [k0, k1] and card.apps[AID].key_versions == [2, 1]
    s = authenticate_ev2(df, 0, k0)
    body = b"\x01" + b"\x03" + b"\x00\x10" + (100).to_bytes(3, "little")   # full, read key 1
    st, p = df.cmd(0xCD, s.cmd_mac(0xCD, data=body))
    assert st == 0 and s.resp(0, p, full=False) == b""
    st, p = df.cmd(0xF5, s.cmd_mac(0xF5, b"\x01"))
    assert st == 0 and s.resp(0, p, full=False) == bytes.fromhex("0003" "0010" "640000")
    # write needs a write key: give key 0 the write right (change right is key 0)
    st, p = df.cmd(0x5F, s.cmd_full(0x5F, b"\x01", b"\x03\x00\x10"))
    assert st == 0 and s.resp(0, p, full=False) == b""
    data = os.urandom(100)
    hdr = b"\x01" + bytes(3) + (100).to_bytes(3, "little")
    st, p = df.cmd(0x3D, s.cmd_full(0x3D, hdr, data))
    assert st == 0 and s.resp(0, p, full=False) == b""
    assert bytes(card.apps[AID].files[1].data) == data
    s = authenticate_ev2(df, 1, k1)
    st, p = df.cmd(0xBD, s.cmd_mac(0xBD, b"\x01" + bytes(6)))
    assert st == 0 and s.resp(0, p, full=True) == data
    # random UID, set at PICC level with the PICC master key
    assert df.cmd(0x5A, b"\x00\x00\x00")[0] == 0
    s = authenticate_ev2(df, 0, bytes(16))
    st, p = df.cmd(0x5C, s.cmd_full(0x5C, b"\x00", b"\x02"))
    assert st == 0 and s.resp(0, p, full=False) == b""
    seen = set()
    for _ in range(2):
        pcd = df.dep.pcd
        pcd.antenna(False)
        pcd.antenna(True)
        pcd, uid, _ = activate(rig)
        assert len(uid) == 4 and uid[0] == 0x08
        seen.add(uid)
        df = Desfire(IsoDep(pcd))
        st, v = df.cmd(0x60)
        assert v[14:21] == bytes(7)                        # GetVersion hides the UID
        df.cmd(0x5A, AID_WIRE)
        s = authenticate_ev2(df, 1, k1)
        st, p = df.cmd(0x51, s.cmd_mac(0x51))
        assert st == 0 and s.resp(0, p, full=True) == UID7
    assert len(seen) == 2


def test_read_sig_verifies_with_the_published_simulator_key() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    _, df = reader(card)
    status, sig = df.cmd(0x3C, b"\x00")
    assert status == 0 and len(sig) == 56
    assert ecdsa_p224.public_key_hex() == sim.cards.ORIGINALITY_PUBLIC_KEY
    pub = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP224R1(), bytes.fromhex(sim.cards.ORIGINALITY_PUBLIC_KEY))
    der = encode_dss_signature(int.from_bytes(sig[:28], "big"), int.from_bytes(sig[28:], "big"))
    pub.verify(der, UID7.rjust(28, b"\x00"), ec.ECDSA(Prehashed(hashes.SHA224())))
    # once authenticated it travels enciphered
    s = authenticate_ev2(df, 0, bytes(16))
    st, p = df.cmd(0x3C, s.cmd_mac(0x3C, b"\x00"))
    assert st == 0 and s.resp(0, p, full=True) == sig


def cmac_iv(key: bytes, iv: bytes, msg: bytes) -> bytes:
    def dbl(b: bytes) -> bytes:
        v = int.from_bytes(b, "big") << 1
        return ((v & (2 ** 128 - 1)) ^ (0x87 if v >> 128 else 0)).to_bytes(16, "big")
    k1 = dbl(cbc(key, bytes(16), bytes(16)))
    k2 = dbl(k1)
    if msg and len(msg) % 16 == 0:
        last = bytes(x ^ y for x, y in zip(msg[-16:], k1, strict=True))
        head = msg[:-16]
    else:
        cut = len(msg) - len(msg) % 16
        pad = msg[cut:] + b"\x80" + bytes(15 - len(msg) % 16)
        last = bytes(x ^ y for x, y in zip(pad, k2, strict=True))
        head = msg[:cut]
    return cbc(key, iv, head + last)[-16:]


def test_ev1_aes_authentication_and_card_uid() -> None:
    key = os.urandom(16)
    card = sim.cards.DesfireEV3(uid=UID7)
    card.provision_app(AID, [key])
    _, df = reader(card)
    df.cmd(0x5A, AID_WIRE)
    status, enc_b = df.send(0xAA, b"\x00")
    assert status == 0xAF
    rnd_b = cbc(key, bytes(16), enc_b, enc=False)
    rnd_a = os.urandom(16)
    msg = cbc(key, enc_b, rnd_a + rotl(rnd_b))
    status, enc_a = df.send(0xAF, msg)
    assert status == 0 and cbc(key, msg[16:], enc_a, enc=False) == rotl(rnd_a)
    ses = rnd_a[0:4] + rnd_b[0:4] + rnd_a[12:16] + rnd_b[12:16]
    iv = cmac_iv(ses, bytes(16), b"\x51")                    # the command moves the IV
    status, enc = df.cmd(0x51)
    assert status == 0 and len(enc) == 16
    plain = cbc(ses, iv, enc, enc=False)
    assert plain[:7] == UID7 and plain[7:11] == crc32_jam(UID7 + b"\x00")
    iv = enc[-16:]
    status, v = df.cmd(0x45)                                 # plain command: CMAC on answer
    assert status == 0 and v[:-8] == b"\x0b\x81"
    assert v[-8:] == cmac_iv(ses, cmac_iv(ses, iv, b"\x45"), b"\x0b\x81\x00")[:8]


def test_status_codes() -> None:
    card = sim.cards.DesfireEV3(uid=UID7)
    card.provision_app(AID, [bytes(16)], files=[(1, 0x00, 0xEEEE, bytes(32))])
    _, df = reader(card)
    assert df.cmd(0x5A, b"\x01\x02\x03")[0] == 0xA0        # application not found
    assert df.cmd(0x5A, b"\x01")[0] == 0x7E                # length error
    assert df.cmd(0x99)[0] == 0x1C                         # illegal command
    assert df.cmd(0x51)[0] == 0xAE                         # GetCardUID needs authentication
    df.cmd(0x5A, AID_WIRE)
    assert df.cmd(0xBD, b"\x07" + bytes(6))[0] == 0xF0     # file not found
    assert df.cmd(0xBD, b"\x01" + bytes(3) + b"\x21\x00\x00")[0] == 0xBE   # boundary
    assert df.cmd(0xBD, b"\x01" + bytes(6)) == (0, bytes(32))              # free access
    iso = Desfire(df.dep, iso_wrap=True)
    assert iso.dep.exchange(b"\x90\x60\x00\x00\x05\x00") == b"\x67\x00"     # Lc mismatch
    assert df.dep.exchange(b"\x00\xa4\x04\x00\x00") == b"\x6d\x00"
