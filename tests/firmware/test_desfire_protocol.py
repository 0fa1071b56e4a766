"""The DESFire command layer (firmware/lib/desfire.py) against canned card answers.

The transport here is a test double for the contract ``exchange(apdu) -> answer``: a list of
expected APDUs and the answers to give (or a generator for hostile cards). Published AN12196
transcripts check the exact bytes on the wire; hostile answers check that every failure is a
clean rferror.CardError with the right reason and that no loop outlives its bound.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import desfire
import desfire_crypto as dc
import pytest
from desfire import Desfire, DesfireError
from rferror import AUTH, INTEGRITY, PROTOCOL, STATUS, TOO_LONG, UNSUPPORTED, CardError
from support.micropython_runner import run_snippet
from test_desfire_crypto import RefEV1, RefEV2

h = bytes.fromhex
OK = b"\x91\x00"
AF = b"\x91\xaf"


class Scripted:
    """Canned answers in order; checks each APDU when an expectation is given."""

    def __init__(self, steps: list[tuple[bytes | None, bytes]]) -> None:
        self.steps = steps
        self.sent: list[bytes] = []

    def exchange(self, apdu: bytes) -> bytes:
        assert len(self.sent) < len(self.steps), "reader sent more than the script holds: " + apdu.hex()
        want, answer = self.steps[len(self.sent)]
        self.sent.append(bytes(apdu))
        if want is not None:
            assert apdu == want, f"step {len(self.sent)}: {apdu.hex()} != {want.hex()}"
        return answer

    def done(self) -> bool:
        return len(self.sent) == len(self.steps)


class Endless:
    """A hostile card: the same answer forever (counts what it was asked)."""

    def __init__(self, answer: Callable[[int], bytes]) -> None:
        self.answer = answer
        self.n = 0

    def exchange(self, apdu: bytes) -> bytes:
        self.n += 1
        assert self.n < 10_000, "unbounded loop"
        return self.answer(self.n)


def rng_of(*values: bytes) -> Callable[[int], bytes]:
    it = iter(values)

    def rng(n: int) -> bytes:
        v = next(it)
        assert len(v) == n
        return v

    return rng


def session(ti: str, enc: str, mac: str, ctr: int = 0, key_no: int = 0) -> dc.EV2Session:
    return dc.EV2Session(h(enc), h(mac), h(ti), key_no, ctr)


# ------------------------------------------------------------------ published transcripts


def test_authenticate_ev2_first_table14() -> None:
    t = Scripted([
        (h("9071000002000000"), h("A04C124213C186F22399D33AC2A30215") + AF),
        (h("90AF00002035C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D00"),
         h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663") + OK),
    ])
    d = Desfire(t, rng_of(h("13C5DB8A5930439FC3DEF9A4C675360F")))
    assert d.authenticate_ev2_first(0, bytes(16)) == (bytes(6), bytes(6))
    assert t.done()
    s = d.session
    assert isinstance(s, dc.EV2Session)
    assert (s.ti, s.enc_key, s.mac_key, s.cmd_ctr) == (
        h("9D00C4DF"), h("1309C877509E5A215007FF0ED19CA564"), h("4C6626F5E72EA694202139295C7A7FC7"), 0)


def test_authenticate_ev2_first_table19_key3() -> None:
    t = Scripted([
        (h("9071000002030000"), h("B875CEB0E66A6C5CD00898DC371F92D1") + AF),
        (h("90AF000020FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B100"),
         h("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A") + OK),
    ])
    d = Desfire(t, rng_of(h("B98F4C50CF1C2E084FD150E33992B048")))
    d.authenticate_ev2_first(3, bytes(16))
    assert d.session is not None and d.session.ti == h("7614281A") and d.session.key_no == 3


def test_get_card_uid_table28() -> None:
    answer = h("70756055688505B52A5E26E59E329CD6595F672298EA41B7") + OK
    t = Scripted([(h("90510000088E2C155ADDA99BE300"), answer)])
    d = Desfire(t)
    d.session = session("DF055522", "2B4D963C014DC36F24F69A50A394F875", "379D32130CE61705DD5FD8C36B95D764")
    assert d.get_card_uid() == h("04958CAA5C5E80")
    assert d.session.cmd_ctr == 1


def test_change_key_tables_25_26() -> None:
    t = Scripted([
        (h("90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC75D0CE20BCD1D06E600"),
         h("203BB55D1089D587") + OK),
        (h("90C400002900C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D05053FF75668A01D6FDA6610234BDED643200"),
         OK),
    ])
    d = Desfire(t)
    d.session = session("7614281A", "4CF3CB41A22583A61E89B158D252FC53", "5529860B2FC5FB6154B7F28361D30BF9", 2)
    d.change_key(2, h("F3847D627727ED3BC9C4CC050489B966"), 1, bytes(16))
    assert d.session is not None and d.session.cmd_ctr == 3
    d.change_key(0, h("5004BF991F408672B1EF00F08F9E8647"), 1)
    assert d.session is None  # changing the session's own key ends the session
    assert t.done()


def test_set_configuration_table27() -> None:
    want = h("905C000019008EA0138A7AF6FC8E99DF2A3A305602C43A7A3C9228C3134A00")
    t = Scripted([(want, h("86044208CAD1676A") + OK)])
    d = Desfire(t)
    d.session = session("D779B1D0", "7951A705F47F3C29B596454DC1490383", "FE4EDBF46536557E304682F33E63A84F")
    d.set_configuration(0x00, b"\x02")
    assert t.done()


def test_get_file_settings_table7() -> None:
    body = h("0040EEEE000100D1FE001F00004400004400002000006A0000")
    t = Scripted([(h("90F5000009026597A457C8CD442C00"), body + h("2A474282E7A47986") + OK)])
    d = Desfire(t)
    d.session = session("7A21085E", "00" * 16, "8248134A386E86EB7FAF54A52E536CB6")
    fs = d.get_file_settings(2)
    assert fs["type"] == 0 and fs["comm"] == 0 and fs["size"] == 256
    assert fs["access"] == {"read": 0xE, "write": 0xE, "read_write": 0xE, "change": 0xE}


# ------------------------------------------------------------------ framing and commands


def test_apdu_and_access_rights_encoding() -> None:
    assert desfire.apdu(0x60) == h("9060000000")
    assert desfire.apdu(0x5A, h("564331")) == h("905A00000356433100")
    ar = desfire.access_rights(read=1, write=0, read_write=0xF, change=0)
    assert ar == h("F010")
    assert desfire.parse_access_rights(ar) == {"read": 1, "write": 0, "read_write": 0xF, "change": 0}


def test_get_version_three_frames() -> None:
    t = Scripted([
        (h("9060000000"), h("04010133001A05") + AF),
        (h("90AF000000"), h("04010103001A05") + AF),
        (h("90AF000000"), h("04A1B2C3D4E5F6BA54416F60104B20") + OK),
    ])
    v = Desfire(t).get_version()
    assert v["hw_major"] == 0x33 and v["storage"] == 0x1A and v["uid"] == h("04A1B2C3D4E5F6")


def test_select_application_plain_and_drops_session() -> None:
    t = Scripted([(h("905A00000356433100"), OK)])
    d = Desfire(t)
    d.session = session("01020304", "00" * 16, "00" * 16)
    d.select_application(h("564331"))
    assert d.session is None


def test_plain_read_with_additional_frames() -> None:
    data = bytes(range(100))
    t = Scripted([
        (h("90BD0000070100000064000000"), data[:59] + AF),
        (h("90AF000000"), data[59:] + OK),
    ])
    assert Desfire(t).read_data(1, 0, 100, dc.PLAIN) == data


def test_full_read_with_frames_against_reference() -> None:
    key, rnda, rndb, ti = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48)), h("CAFEBABE")
    card = RefEV2(key, rnda, rndb, ti)
    data = bytes((i * 7) & 0xFF for i in range(400))
    hdr = h("01000000900100")
    body = card.answer(data, full=True)
    frames = [body[i : i + 59] for i in range(0, len(body), 59)]
    steps: list[tuple[bytes | None, bytes]] = [(None, a) for a in card.auth_answers()]
    card.ctr = 0
    steps.append((b"\x90\xbd\x00\x00\x0f" + card.cmd(0xBD, hdr) + b"\x00", frames[0] + AF))
    last = len(frames) - 1
    steps += [(h("90AF000000"), f + (OK if i == last else AF)) for i, f in enumerate(frames[1:], 1)]
    d = Desfire(Scripted(steps), rng_of(rnda))
    d.authenticate_ev2_first(1, key)
    assert d.read_data(1, 0, 400, dc.FULL) == data


def test_long_write_is_sent_in_additional_frames() -> None:
    key, rnda, rndb, ti = bytes(16), bytes(range(16)), bytes(range(16, 32)), h("01020304")
    card = RefEV2(key, rnda, rndb, ti)
    data = bytes(range(200))
    hdr = h("01000000C80000")
    payload = card.cmd(0x3D, hdr, data, full=True)
    chunks = [payload[i : i + 52] for i in range(0, len(payload), 52)]
    steps: list[tuple[bytes | None, bytes]] = [(None, a) for a in card.auth_answers()]
    steps.append((desfire.apdu(0x3D, chunks[0]), AF))
    steps += [(desfire.apdu(0xAF, c), AF) for c in chunks[1:-1]]
    steps.append((desfire.apdu(0xAF, chunks[-1]), card.answer() + OK))
    t = Scripted(steps)
    d = Desfire(t, rng_of(rnda))
    d.authenticate_ev2_first(0, key)
    d.write_data(1, 0, data, dc.FULL)
    assert t.done() and len(chunks) == 5
    assert all(len(a) <= 58 for a in t.sent)  # one I-block each with FSC 64


def test_ev1_fallback_read_and_uid() -> None:
    key, rnda, rndb = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))
    card = RefEV1(key, rnda, rndb)
    steps: list[tuple[bytes | None, bytes]] = [(h("9071000002010000"), b"\x91\x1c")]
    a1, a2 = card.auth_answers()
    steps += [(h("90AA0000010100"), a1), (None, a2)]
    card.see_cmd(b"\x51")
    steps.append((h("9051000000"), card.answer_full(h("04112233445566")) + OK))
    data = bytes(range(40))
    card.see_cmd(h("BD01000000280000"))
    steps.append((h("90BD0000070100000028000000"), card.answer_full(data) + OK))
    d = Desfire(Scripted(steps), rng_of(rnda))
    assert d.authenticate(1, key) == "ev1"
    assert d.get_card_uid() == h("04112233445566")
    assert d.read_data(1, 0, 40, dc.FULL) == data


def test_personalisation_commands_unauthenticated_encoding() -> None:
    t = Scripted([
        (h("90CA000005564331098300"), OK),
        (h("90CD0000070103F01004040000"), OK),
        (h("90F50000010100"), h("0003F010040400") + OK),
        (h("9045000000"), h("0F81") + OK),
    ])
    d = Desfire(t)
    d.create_application(h("564331"), 0x09, 3)
    d.create_std_data_file(1, dc.FULL, desfire.access_rights(1, 0, 0xF, 0), 1028)
    assert d.get_file_settings(1) == {"type": 0, "option": 3, "comm": 3, "size": 1028,
                                      "access": {"read": 1, "write": 0, "read_write": 0xF, "change": 0}}
    assert d.get_key_settings() == (0x0F, 0x81)


# ------------------------------------------------------------------ hostile and broken cards


def _reason(fn: Callable[[], object]) -> str:
    with pytest.raises(CardError) as e:
        fn()
    return e.value.reason


def test_endless_additional_frames_are_bounded() -> None:
    t = Endless(lambda n: b"\xaa" * 59 + AF)
    assert _reason(lambda: Desfire(t).read_data(1, 0, 0, dc.PLAIN)) == TOO_LONG
    assert t.n <= 1 + desfire.MAX_FRAMES


def test_endless_empty_additional_frames_are_bounded() -> None:
    t = Endless(lambda n: AF)
    assert _reason(lambda: Desfire(t).get_version()) == TOO_LONG
    assert t.n == 1 + desfire.MAX_FRAMES


def test_oversize_single_frame_is_refused() -> None:
    t = Endless(lambda n: bytes(3000) + OK)
    assert _reason(lambda: Desfire(t).read_data(1, 0, 0, dc.PLAIN)) == TOO_LONG


def test_lying_lengths() -> None:
    # Longer and shorter than asked, plain.
    def plain_read(answer: bytes) -> Callable[[], object]:
        return lambda: Desfire(Endless(lambda n: answer)).read_data(1, 0, 16, dc.PLAIN)

    assert _reason(plain_read(bytes(20) + OK)) == TOO_LONG
    assert _reason(plain_read(bytes(10) + OK)) == PROTOCOL
    # Enciphered: a valid MAC over a plaintext of the wrong length is still refused.
    key, rnda, rndb, ti = bytes(16), bytes(range(16)), bytes(range(16, 32)), h("01020304")
    card = RefEV2(key, rnda, rndb, ti)
    steps: list[tuple[bytes | None, bytes]] = [(None, a) for a in card.auth_answers()]
    steps.append((None, card.answer(bytes(33), full=True) + OK))  # 33 bytes where 32 are due
    d = Desfire(Scripted(steps), rng_of(rnda))
    d.authenticate_ev2_first(1, key)
    assert _reason(lambda: d.read_data(1, 0, 32, dc.FULL)) in (TOO_LONG, PROTOCOL)
    assert d.session is None


def test_wrong_mac_is_integrity_and_ends_session() -> None:
    key, rnda, rndb, ti = bytes(16), bytes(range(16)), bytes(range(16, 32)), h("01020304")
    card = RefEV2(key, rnda, rndb, ti)
    steps: list[tuple[bytes | None, bytes]] = [(None, a) for a in card.auth_answers()]
    good = bytearray(card.answer(h("04112233445566"), full=True))
    good[-1] ^= 0x40
    steps.append((None, bytes(good) + OK))
    d = Desfire(Scripted(steps), rng_of(rnda))
    d.authenticate_ev2_first(2, key)
    assert _reason(d.get_card_uid) == INTEGRITY
    assert d.session is None


def test_short_and_foreign_answers() -> None:
    assert _reason(lambda: Desfire(Endless(lambda n: b"")).get_version()) == PROTOCOL
    assert _reason(lambda: Desfire(Endless(lambda n: b"\x91")).get_version()) == PROTOCOL
    assert _reason(lambda: Desfire(Endless(lambda n: h("6E00"))).get_version()) == UNSUPPORTED
    assert _reason(lambda: Desfire(Endless(lambda n: h("9000"))).get_version()) == PROTOCOL
    assert _reason(lambda: Desfire(Endless(lambda n: bytes(8) + OK)).get_version()) == PROTOCOL


def test_error_statuses_map_to_reasons() -> None:
    with pytest.raises(DesfireError) as e:
        Desfire(Endless(lambda n: h("91A0"))).select_application(h("564331"))
    assert e.value.status == 0xA0 and e.value.reason == STATUS
    def auth_with(answer: bytes) -> Callable[[], object]:
        return lambda: Desfire(Endless(lambda n: answer)).authenticate_ev2_first(1, bytes(16))

    assert _reason(auth_with(h("91AE"))) == AUTH
    assert _reason(auth_with(h("911C"))) == UNSUPPORTED


def test_auth_part1_malformed() -> None:
    rng = rng_of(bytes(16), bytes(16), bytes(16))
    assert _reason(lambda: Desfire(Endless(lambda n: b"\x01" + bytes(16) + AF), rng)
                   .authenticate_ev2_first(1, bytes(16))) == UNSUPPORTED  # LRP
    assert _reason(lambda: Desfire(Endless(lambda n: bytes(15) + AF), rng)
                   .authenticate_ev2_first(1, bytes(16))) == PROTOCOL
    assert _reason(lambda: Desfire(Endless(lambda n: bytes(16) + OK), rng)
                   .authenticate_ev2_first(1, bytes(16))) == STATUS


def test_auth_wrong_key_card_is_auth_error() -> None:
    # The card answers with RndA' under another key: the reader must refuse it.
    card = RefEV2(bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48)), h("01020304"))
    a1, a2 = card.auth_answers()
    t = Scripted([(None, a1), (None, a2)])
    d = Desfire(t, rng_of(bytes(range(16, 32))))
    assert _reason(lambda: d.authenticate_ev2_first(1, bytes(16))) == AUTH
    assert d.session is None


def test_card_that_stops_taking_data_mid_write() -> None:
    key, rnda, rndb, ti = bytes(16), bytes(range(16)), bytes(range(16, 32)), h("01020304")
    card = RefEV2(key, rnda, rndb, ti)
    steps: list[tuple[bytes | None, bytes]] = [(None, a) for a in card.auth_answers()]
    steps.append((None, OK))  # "done" after the first of several frames
    d = Desfire(Scripted(steps), rng_of(rnda))
    d.authenticate_ev2_first(0, key)
    assert _reason(lambda: d.write_data(1, 0, bytes(200), dc.FULL)) == PROTOCOL
    steps[-1] = (None, h("917E"))
    d = Desfire(Scripted(steps), rng_of(rnda))
    d.authenticate_ev2_first(0, key)
    assert _reason(lambda: d.write_data(1, 0, bytes(200), dc.FULL)) == STATUS


def test_secure_commands_need_a_session() -> None:
    d = Desfire(Endless(lambda n: OK))
    for fn in (d.get_card_uid, lambda: d.read_data(1, 0, 4, dc.FULL), lambda: d.set_configuration(0, b"\x02"),
               lambda: d.change_key(1, bytes(16), 1, bytes(16))):
        assert _reason(fn) == PROTOCOL


def test_bounds_on_arguments() -> None:
    d = Desfire(Endless(lambda n: OK))
    assert _reason(lambda: d.read_data(1, 0, desfire.MAX_IO + 1, dc.PLAIN)) == TOO_LONG
    assert _reason(lambda: d.write_data(1, 0, b"", dc.PLAIN)) == TOO_LONG
    assert _reason(lambda: d.read_data(1, 1 << 24, 1, dc.PLAIN)) == TOO_LONG


# ------------------------------------------------------------------ MicroPython

MP_HARNESS = """
import desfire, desfire_crypto as dc, binascii, json
from rferror import CardError
h = binascii.unhexlify
class Endless:
    def __init__(self, f):
        self.f = f
        self.n = 0
    def exchange(self, apdu):
        self.n += 1
        if self.n > 10000:
            raise SystemExit('unbounded')
        return self.f(self.n)
class Scripted:
    def __init__(self, steps):
        self.steps = steps
        self.i = 0
    def exchange(self, apdu):
        want, ans = self.steps[self.i]
        self.i += 1
        if want is not None and apdu != want:
            raise SystemExit('unexpected apdu ' + binascii.hexlify(apdu).decode())
        return ans
def reason(fn):
    try:
        fn()
    except CardError as e:
        return e.reason
    return 'none'
out = {}
"""


@pytest.mark.micropython
def test_hostile_cards_under_micropython() -> None:
    code = MP_HARNESS + (
        "t = Endless(lambda n: b'\\xaa' * 59 + b'\\x91\\xaf')\n"
        "out['endless'] = [reason(lambda: desfire.Desfire(t).read_data(1, 0, 0, dc.PLAIN)), t.n]\n"
        "t = Endless(lambda n: b'\\x91\\xaf')\n"
        "out['empty_af'] = [reason(lambda: desfire.Desfire(t).get_version()), t.n]\n"
        "out['big'] = reason(lambda: desfire.Desfire(Endless(lambda n: bytes(3000) + b'\\x91\\x00'))"
        ".read_data(1, 0, 0, dc.PLAIN))\n"
        "out['short'] = reason(lambda: desfire.Desfire(Endless(lambda n: b'\\x91')).get_version())\n"
        "out['iso'] = reason(lambda: desfire.Desfire(Endless(lambda n: h('6E00'))).get_version())\n"
        "out['ae'] = reason(lambda: desfire.Desfire(Endless(lambda n: h('91AE')))"
        ".authenticate_ev2_first(1, bytes(16)))\n"
        "t = Scripted([(h('9071000002000000'), h('A04C124213C186F22399D33AC2A3021591AF')),"
        " (h('90AF00002035C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D00'),"
        " h('3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F081206639100'))])\n"
        "d = desfire.Desfire(t, lambda n: h('13C5DB8A5930439FC3DEF9A4C675360F'))\n"
        "d.authenticate_ev2_first(0, bytes(16))\n"
        "out['ti'] = binascii.hexlify(d.session.ti).decode()\n"
        "d = desfire.Desfire(Scripted([(None, h('70756055688505B52A5E26E59E329CD6595F672298EA41B69100'))]))\n"
        "d.session = dc.EV2Session(h('2B4D963C014DC36F24F69A50A394F875'),"
        " h('379D32130CE61705DD5FD8C36B95D764'), h('DF055522'))\n"
        "out['badmac'] = [reason(d.get_card_uid), d.session is None]\n"
        "try:\n"
        "    desfire.Desfire(Endless(lambda n: h('91A0'))).select_application(h('564331'))\n"
        "except desfire.DesfireError as e:\n"
        "    out['status'] = [e.reason, e.status]\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["endless"][0] == TOO_LONG and got["endless"][1] <= 1 + desfire.MAX_FRAMES
    assert got["empty_af"] == [TOO_LONG, 1 + desfire.MAX_FRAMES]
    assert got["big"] == TOO_LONG and got["short"] == PROTOCOL and got["iso"] == UNSUPPORTED
    assert got["ae"] == AUTH and got["ti"] == "9d00c4df"
    assert got["badmac"] == [INTEGRITY, True]
    assert got["status"] == [STATUS, 0xA0]
