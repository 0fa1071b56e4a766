"""The CBCC card layout (firmware/lib/card_layout.py): keys, file header, the reader's read path
and personalisation, run over canned card answers computed independently in this file.

These transcripts are a test double for the transport contract; the same read path runs against
the RF simulator (firmware/sim) in the simulator's own tests.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

import card_layout as cl
import desfire
import pytest
from card_layout import IssuerKeys
from rferror import AUTH, INTEGRITY, PROTOCOL, TOO_LONG, UNSUPPORTED, CardError
from support.micropython_runner import run_snippet
from test_desfire_crypto import RefEV1, RefEV2, ref_an10922
from test_desfire_protocol import AF, OK, Scripted, rng_of

h = bytes.fromhex
KEYS = IssuerKeys(
    amk_master=bytes(range(0x10, 0x20)),
    read_master=bytes(range(0x20, 0x30)),
    uid_master=bytes(range(0x30, 0x40)),
    picc_master=bytes(range(0x40, 0x50)),
)
UID = h("04A1B2C3D4E580")
RANDOM_UID = h("08123456")
CRED = bytes((i * 11 + 3) & 0xFF for i in range(400))
RNDB = bytes(range(0xA0, 0xB0))
Step = tuple[bytes | None, bytes]


def frames_from_card(body: bytes, size: int = 59) -> list[Step]:
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    out: list[Step] = []
    for i, p in enumerate(parts):
        out.append((None if i else b"?", p + (OK if i == len(parts) - 1 else AF)))
    return out


def command_steps(cmd: int, payload: bytes, answer: bytes) -> list[Step]:
    chunks = [payload[i : i + 52] for i in range(0, len(payload), 52)] or [b""]
    out: list[Step] = [(desfire.apdu(cmd, chunks[0]), AF)]
    out += [(desfire.apdu(0xAF, c), AF) for c in chunks[1:]]
    out[-1] = (out[-1][0], answer)
    return out


def with_continuations(first_apdu: bytes, body: bytes) -> list[Step]:
    steps = frames_from_card(body)
    steps[0] = (first_apdu, steps[0][1])
    return [(s[0] if i == 0 else h("90AF000000"), s[1]) for i, s in enumerate(steps)]


class Transcript:
    """Builds the expected conversation step by step, as an EV2 card would answer."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.rnda: list[bytes] = []
        self.card: RefEV2 | None = None

    def select(self, aid: bytes) -> None:
        self.steps.append((desfire.apdu(0x5A, aid), OK))
        self.card = None

    def auth(self, key_no: int, key: bytes, ti: bytes) -> None:
        rnda = bytes((len(self.rnda) * 16 + i) & 0xFF for i in range(16))
        self.rnda.append(rnda)
        self.card = RefEV2(key, rnda, RNDB, ti)
        a1, a2 = self.card.auth_answers()
        self.steps += [(desfire.apdu(0x71, bytes([key_no, 0])), a1), (None, a2)]

    def auth_non_first(self, key_no: int, key: bytes) -> None:
        """AuthenticateEV2NonFirst inside the current EV2 session (TI and counter carry on)."""
        assert self.card is not None
        rnda = bytes((len(self.rnda) * 16 + i) & 0xFF for i in range(16))
        self.rnda.append(rnda)
        self.card = self.card.non_first(key, rnda, RNDB)
        a1, a2 = self.card.non_first_answers()
        self.steps += [(desfire.apdu(0x77, bytes([key_no])), a1), (None, a2)]

    def mac_cmd(self, cmd: int, header: bytes, data: bytes = b"", full_cmd: bool = False,
                answer: bytes = b"", full_answer: bool = False) -> None:
        assert self.card is not None
        payload = self.card.cmd(cmd, header, data, full=full_cmd)
        body = self.card.answer(answer, full=full_answer)
        if len(payload) <= 52 and len(body) <= 59:
            self.steps.append((desfire.apdu(cmd, payload), body + OK))
        elif len(payload) <= 52:
            self.steps += with_continuations(desfire.apdu(cmd, payload), body)
        else:
            self.steps += command_steps(cmd, payload, body + OK)

    def plain(self, cmd: int, data: bytes, answer: bytes) -> None:
        self.steps.append((desfire.apdu(cmd, data), answer))

    def transport(self) -> Scripted:
        return Scripted(list(self.steps))

    def rng(self) -> Callable[[int], bytes]:
        return rng_of(*self.rnda)


def read_transcript(uid_seen: bytes, cred: bytes, real_uid: bytes = UID, size_hint: int = 0) -> Transcript:
    t = Transcript()
    t.select(cl.AID)
    if cl.is_random_uid(uid_seen):
        t.auth(cl.KEY_UID, KEYS.uid_key(), h("11111111"))
        t.mac_cmd(0x51, b"", answer=real_uid, full_answer=True)
        t.auth_non_first(cl.KEY_READ, KEYS.read(real_uid))
    else:
        t.auth(cl.KEY_READ, KEYS.read(real_uid), h("22222222"))
    blob = cl.encode_file(cred)
    first = cl.HEADER_LEN + size_hint
    filled = blob.ljust(cl.FILE_SIZE, b"\x00")  # the rest of the file reads as zeros
    t.mac_cmd(0xBD, b"\x01" + bytes(3) + first.to_bytes(3, "little"), answer=filled[:first], full_answer=True)
    if first < len(blob):
        rest = blob[first:]
        t.mac_cmd(0xBD, b"\x01" + first.to_bytes(3, "little") + len(rest).to_bytes(3, "little"),
                  answer=rest, full_answer=True)
    return t


# ------------------------------------------------------------------ keys and constants


def test_layout_constants() -> None:
    assert cl.AID == b"VC1" and cl.SYSID == b"CBCCVC"
    assert cl.FILE_SIZE == 1028
    assert cl.FILE_RIGHTS == b"\xf0\x10"
    assert cl.APP_KEY_SETTINGS == 0x09


def test_keys_are_an10922() -> None:
    assert KEYS.read(UID) == ref_an10922(KEYS.read_master, UID + b"VC1" + b"CBCCVC")
    assert KEYS.amk(UID) == ref_an10922(KEYS.amk_master, UID + b"VC1" + b"CBCCVC")
    assert KEYS.uid_key() == ref_an10922(KEYS.uid_master, b"VC1CBCCVC")
    assert KEYS.picc(UID) == ref_an10922(KEYS.picc_master, UID + bytes(3) + b"CBCCVC")
    rk = KEYS.reader_keys()
    assert rk.read_key(UID) == KEYS.read(UID) and rk.uid_key == KEYS.uid_key()
    assert KEYS.read(UID) != KEYS.read(h("04A1B2C3D4E581"))  # per card
    # the reader's precomputed AN10922 tail gives the same key for every UID length, other
    # system identifiers and AIDs included
    for sysid, aid in ((cl.SYSID, cl.AID), (b"X", b"\x01\x02\x03"), (bytes(12), cl.AID),
                       (bytes(18), cl.AID), (bytes(25), cl.AID)):
        ik = IssuerKeys(bytes(range(16)), bytes(range(7, 23)), bytes(16), bytes(16), sysid, aid)
        rk = ik.reader_keys()
        for n in range(1, 32 - len(aid + sysid)):
            uid = bytes((n * 17 + i * 5) & 0xFF for i in range(n))
            assert rk.read_key(uid) == ik.read(uid) == ref_an10922(ik.read_master, uid + aid + sysid)


def test_file_header() -> None:
    blob = cl.encode_file(CRED)
    assert blob[:4] == h("C1010190") and cl.parse_header(blob) == 400
    for bad, reason in ((h("C0010190"), UNSUPPORTED), (h("C1020190"), UNSUPPORTED),
                        (h("C1010000"), PROTOCOL), (h("C1010401"), TOO_LONG), (h("C101"), UNSUPPORTED)):
        with pytest.raises(CardError) as e:
            cl.parse_header(bad)
        assert e.value.reason == reason
    for n in (0, 1025):
        with pytest.raises(ValueError):
            cl.encode_file(bytes(n))
    assert len(cl.encode_file(bytes(1024))) == cl.FILE_SIZE


def test_random_uid_detection() -> None:
    assert cl.is_random_uid(RANDOM_UID) and cl.is_random_uid(None)
    assert not cl.is_random_uid(UID) and not cl.is_random_uid(h("04123456"))


# ------------------------------------------------------------------ read path


def test_read_random_uid_card() -> None:
    t = read_transcript(RANDOM_UID, CRED)
    tr = t.transport()
    cred, uid, details = cl.read_credential(tr, KEYS.reader_keys(), RANDOM_UID, rng=t.rng())
    assert tr.done()
    assert (cred, uid) == (CRED, UID)
    assert details["auth"] == "ev2" and details["random_uid"] and details["anti_clone"]
    assert details["reads"] == 2 and details["exchanges"] == len(t.steps)


def test_read_fixed_uid_card_single_authentication() -> None:
    t = read_transcript(UID, CRED)
    tr = t.transport()
    cred, uid, details = cl.read_credential(tr, KEYS.reader_keys(), UID, rng=t.rng())
    assert tr.done() and (cred, uid) == (CRED, UID) and not details["random_uid"]
    assert sum(1 for s in tr.sent if s[1] == 0x71) == 1


@pytest.mark.parametrize("hint", [400, 600])
def test_read_with_size_hint_one_read(hint: int) -> None:
    t = read_transcript(UID, CRED, size_hint=min(hint, 1024))
    cred, _, details = cl.read_credential(t.transport(), KEYS.reader_keys(), UID, rng=t.rng(), size_hint=hint)
    assert cred == CRED and details["reads"] == 1


def test_read_max_size_credential() -> None:
    big = bytes(range(256)) * 4
    t = read_transcript(RANDOM_UID, big)
    cred, _, _ = cl.read_credential(t.transport(), KEYS.reader_keys(), RANDOM_UID, rng=t.rng())
    assert cred == big


def test_read_ev1_card() -> None:
    key2, key1 = KEYS.uid_key(), KEYS.read(UID)
    rnda1, rnda2 = bytes(range(16)), bytes(range(16, 32))
    steps: list[Step] = [(desfire.apdu(0x5A, cl.AID), OK), (h("9071000002020000"), b"\x91\x1c")]
    c = RefEV1(key2, rnda1, RNDB)
    steps += [(h("90AA0000010200"), c.auth_answers()[0]), (None, c.auth_answers()[1])]
    c.see_cmd(b"\x51")
    steps.append((h("9051000000"), c.answer_full(UID) + OK))
    c = RefEV1(key1, rnda2, RNDB)
    steps += [(h("90AA0000010100"), c.auth_answers()[0]), (None, c.auth_answers()[1])]
    blob = cl.encode_file(CRED)
    c.see_cmd(h("BD01000000040000"))
    steps.append((h("90BD0000070100000004000000"), c.answer_full(blob[:4]) + OK))
    c.see_cmd(h("BD01040000900100"))
    body = c.answer_full(blob[4:])
    steps += with_continuations(h("90BD0000070104000090010000"), body)
    tr = Scripted(steps)
    cred, uid, details = cl.read_credential(tr, KEYS.reader_keys(), RANDOM_UID, rng=rng_of(rnda1, rnda2))
    assert tr.done() and (cred, uid) == (CRED, UID) and details["auth"] == "ev1"


def test_read_foreign_card_without_application() -> None:
    tr = Scripted([(desfire.apdu(0x5A, cl.AID), h("91A0"))])
    with pytest.raises(CardError) as e:
        cl.read_credential(tr, KEYS.reader_keys(), UID)
    assert e.value.reason == UNSUPPORTED


def test_read_clone_fails_authentication() -> None:
    # A card that shows the UID but holds another read key (a clone): RndA' does not match.
    t = Transcript()
    t.select(cl.AID)
    t.auth(cl.KEY_READ, KEYS.read(h("04000000000000")), h("22222222"))
    with pytest.raises(CardError) as e:
        cl.read_credential(t.transport(), KEYS.reader_keys(), UID, rng=t.rng())
    assert e.value.reason == AUTH


def test_read_random_uid_clone_fails_non_first_authentication() -> None:
    # A random-UID clone knows key 2 (same on every card) but not the victim's key 1: the card
    # refuses the reader's NonFirst token (91 AE) and the read ends as an authentication failure.
    t = Transcript()
    t.select(cl.AID)
    t.auth(cl.KEY_UID, KEYS.uid_key(), h("11111111"))
    t.mac_cmd(0x51, b"", answer=UID, full_answer=True)
    t.rnda.append(bytes(range(0x40, 0x50)))
    t.steps += [(desfire.apdu(0x77, bytes([cl.KEY_READ])),
                 RefEV2(bytes(16), t.rnda[-1], RNDB, b"").non_first_answers()[0]), (None, h("91AE"))]
    with pytest.raises(CardError) as e:
        cl.read_credential(t.transport(), KEYS.reader_keys(), RANDOM_UID, rng=t.rng())
    assert e.value.reason == AUTH


def test_read_random_uid_tampered_get_card_uid_is_integrity_error() -> None:
    # GetCardUID's answer is opened while NonFirst part 1 is on its way: a bad MAC still ends
    # the read (INTEGRITY) before anything derived from the UID is sent.
    t = read_transcript(RANDOM_UID, CRED)
    i = next(k for k, (want, _) in enumerate(t.steps) if want is not None and want[1] == 0x51)
    want, answer = t.steps[i]
    bad = bytearray(answer)
    bad[3] ^= 1
    t.steps[i] = (want, bytes(bad))
    tr = t.transport()
    with pytest.raises(CardError) as e:
        cl.read_credential(tr, KEYS.reader_keys(), RANDOM_UID, rng=t.rng())
    assert e.value.reason == INTEGRITY
    assert tr.sent[-1][1] == 0x77          # NonFirst part 1 went out; its token did not


class Waiting(Scripted):
    """A transport that, like the MFRC522 driver, runs the layer's waiting-time job (idle) after
    each APDU is sent and before its answer is handed back (the reader's overlap)."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__(steps)
        self.idle_chip = self
        self.idle: Callable[..., object] | None = None
        self.idle_args: tuple[object, ...] = ()
        self.idle_result: object = None
        self.jobs = 0

    def exchange(self, apdu: bytes) -> bytes:
        answer = super().exchange(apdu)
        job = self.idle
        if job is not None:
            self.idle = None
            self.jobs += 1
            with contextlib.suppress(CardError):  # a failing job: the layer computes it after
                self.idle_result = job(*self.idle_args)
        return answer


def _forged_non_first_proof(t: Transcript) -> Transcript:
    # the card's last NonFirst answer E(K, RndA') replaced: everything after it stays genuine
    i = next(k for k, (want, _) in enumerate(t.steps) if want is not None and want[1] == 0x77) + 1
    want, answer = t.steps[i]
    bad = bytearray(answer)
    bad[0] ^= 1
    t.steps[i] = (want, bytes(bad))
    return t


def test_read_random_uid_card_with_overlapped_work() -> None:
    # with a driver that runs work while answers are awaited the read is the same
    t = read_transcript(RANDOM_UID, CRED, size_hint=len(CRED))
    tr = Waiting(list(t.steps))
    cred, uid, details = cl.read_credential(tr, KEYS.reader_keys(), RANDOM_UID, rng=t.rng(),
                                            size_hint=len(CRED))  # fmt: skip
    assert (cred, uid, details["reads"]) == (CRED, UID, 1) and tr.done()
    assert tr.jobs == 4  # RndA, session keys, UID + read key, NonFirst session + ReadData MAC


def test_read_random_uid_forged_non_first_proof_refused() -> None:
    # a wrong E(K, RndA') ends the read (AUTH) before ReadData goes out, whether the driver ran
    # the overlapped work (session keys, ReadData's MAC) or not
    for transport in (Waiting, Scripted):
        t = _forged_non_first_proof(read_transcript(RANDOM_UID, CRED, size_hint=len(CRED)))
        tr = transport(list(t.steps))
        with pytest.raises(CardError) as e:
            cl.read_credential(tr, KEYS.reader_keys(), RANDOM_UID, rng=t.rng(), size_hint=len(CRED))
        assert e.value.reason == AUTH, transport
        assert all(a[1] != 0xBD for a in tr.sent)  # no ReadData to a card that failed its proof


def test_read_random_uid_forged_proof_refused_on_the_cached_path() -> None:
    # a repeat tap takes the credential from the reader's cache and sends no ReadData: the
    # card's proof is still checked before the cache is trusted
    t = _forged_non_first_proof(read_transcript(RANDOM_UID, CRED, size_hint=len(CRED)))
    steps = [st for st in t.steps if st[0] is None or st[0][1] != 0xBD]
    steps = steps[: next(k for k, (w, _) in enumerate(steps) if w is not None and w[1] == 0x77) + 2]
    with pytest.raises(CardError) as e:
        cl.read_credential(Waiting(steps), KEYS.reader_keys(), RANDOM_UID, rng=t.rng(), size_hint=len(CRED),
                           known=lambda uid: CRED)  # fmt: skip
    assert e.value.reason == AUTH
    good = read_transcript(RANDOM_UID, CRED, size_hint=len(CRED))
    steps = good.steps[: next(k for k, (w, _) in enumerate(good.steps) if w is not None and w[1] == 0x77) + 2]
    cred, uid, details = cl.read_credential(Waiting(steps), KEYS.reader_keys(), RANDOM_UID, rng=good.rng(),
                                            size_hint=len(CRED), known=lambda uid: CRED)  # fmt: skip
    assert (cred, uid, details.get("cached")) == (CRED, UID, True)


def test_read_random_uid_card_without_non_first_falls_back_to_first() -> None:
    t = Transcript()
    t.select(cl.AID)
    t.auth(cl.KEY_UID, KEYS.uid_key(), h("11111111"))
    t.mac_cmd(0x51, b"", answer=UID, full_answer=True)
    t.steps.append((desfire.apdu(0x77, bytes([cl.KEY_READ])), h("911C")))
    t.auth(cl.KEY_READ, KEYS.read(UID), h("22222222"))
    blob = cl.encode_file(CRED)
    t.mac_cmd(0xBD, h("01000000040000"), answer=blob[:4], full_answer=True)
    t.mac_cmd(0xBD, b"\x01" + (4).to_bytes(3, "little") + len(CRED).to_bytes(3, "little"),
              answer=CRED, full_answer=True)
    cred, uid, details = cl.read_credential(t.transport(), KEYS.reader_keys(), RANDOM_UID, rng=t.rng())
    assert (cred, uid) == (CRED, UID) and details["auth"] == "ev2"


def test_read_card_lying_about_length() -> None:
    t = Transcript()
    t.select(cl.AID)
    t.auth(cl.KEY_READ, KEYS.read(UID), h("22222222"))
    t.mac_cmd(0xBD, h("01000000040000"), answer=h("C1014000"), full_answer=True)  # claims 16384 bytes
    with pytest.raises(CardError) as e:
        cl.read_credential(t.transport(), KEYS.reader_keys(), UID, rng=t.rng())
    assert e.value.reason == TOO_LONG


# ------------------------------------------------------------------ personalisation


def personalise_transcript(picc_key: bytes | None, random_uid: bool = True) -> Transcript:
    t = Transcript()
    t.select(cl.PICC_AID)
    if picc_key is not None:
        t.auth(0, picc_key, h("01010101"))
        t.mac_cmd(0x51, b"", answer=UID, full_answer=True)
        t.mac_cmd(0xCA, cl.AID + h("0983"))
    else:
        t.plain(0x60, b"", h("04010133001A05") + AF)
        t.plain(0xAF, b"", h("04010103001A05") + AF)
        t.plain(0xAF, b"", UID + h("BA54416F60104B20") + OK)
        t.plain(0xCA, cl.AID + h("0983"), OK)
    t.select(cl.AID)
    t.auth(0, bytes(16), h("02020202"))
    t.mac_cmd(0xCD, h("0103F010040400"))
    blob = cl.encode_file(CRED)
    t.mac_cmd(0x3D, h("01000000") + len(blob).to_bytes(3, "little"), blob, full_cmd=True)
    for key_no, new in ((1, KEYS.read(UID)), (2, KEYS.uid_key())):
        data = bytes(a ^ b for a, b in zip(new, bytes(16), strict=True)) + b"\x01" + _crc(new)
        t.mac_cmd(0xC4, bytes([key_no]), data, full_cmd=True)
    assert t.card is not None
    payload = t.card.cmd(0xC4, b"\x00", KEYS.amk(UID) + b"\x01", full=True)
    t.steps.append((desfire.apdu(0xC4, payload), OK))
    t.auth(1, KEYS.read(UID), h("03030303"))
    t.mac_cmd(0x51, b"", answer=UID, full_answer=True)
    t.mac_cmd(0xBD, h("01000000") + len(blob).to_bytes(3, "little"), answer=blob, full_answer=True)
    if picc_key is not None:
        t.select(cl.PICC_AID)
        t.auth(0, picc_key, h("04040404"))
        if random_uid:
            t.mac_cmd(0x5C, b"\x00", b"\x02", full_cmd=True)
        assert t.card is not None
        payload = t.card.cmd(0xC4, b"\x80", KEYS.picc(UID) + b"\x01", full=True)
        t.steps.append((desfire.apdu(0xC4, payload), OK))
    return t


def _crc(b: bytes) -> bytes:
    import zlib

    return (zlib.crc32(b) ^ 0xFFFFFFFF).to_bytes(4, "little")


def test_personalise_with_picc_key() -> None:
    picc = bytes(range(0x60, 0x70))
    t = personalise_transcript(picc)
    tr = t.transport()
    out = cl.personalise(tr, picc, KEYS, CRED, rng=t.rng())
    assert tr.done()
    assert out["uid"] == UID and out["picc_hardened"] and out["random_uid"] and out["auth"] == "ev2"


def test_personalise_factory_card_without_picc_key() -> None:
    t = personalise_transcript(None)
    tr = t.transport()
    out = cl.personalise(tr, None, KEYS, CRED, rng=t.rng())
    assert tr.done() and out["uid"] == UID and not out["picc_hardened"] and not out["random_uid"]


def test_personalise_refuses_random_uid_card_without_picc_key() -> None:
    tr = Scripted([
        (desfire.apdu(0x5A, cl.PICC_AID), OK),
        (None, h("04010133001A05") + AF), (None, h("04010103001A05") + AF),
        (None, bytes(7) + h("BA54416F60104B20") + OK),
    ])
    with pytest.raises(CardError) as e:
        cl.personalise(tr, None, KEYS, CRED)
    assert e.value.reason == UNSUPPORTED


# ------------------------------------------------------------------ MicroPython


@pytest.mark.micropython
def test_read_path_under_micropython() -> None:
    t = read_transcript(RANDOM_UID, CRED)
    steps = [[s[0].hex() if s[0] is not None else None, s[1].hex()] for s in t.steps]
    code = (
        "import card_layout as cl, binascii, json\n"
        "h = binascii.unhexlify\n"
        f"steps = json.loads({json.dumps(json.dumps(steps))})\n"
        f"rnda = [h(x) for x in {json.dumps([r.hex() for r in t.rnda])}]\n"
        "class T:\n"
        "    def __init__(self):\n"
        "        self.i = 0\n"
        "    def exchange(self, apdu):\n"
        "        want, ans = steps[self.i]\n"
        "        self.i += 1\n"
        "        if want is not None and apdu != h(want):\n"
        "            raise SystemExit('unexpected ' + binascii.hexlify(apdu).decode())\n"
        "        return h(ans)\n"
        "it = iter(rnda)\n"
        f"keys = cl.IssuerKeys(h('{KEYS.amk_master.hex()}'), h('{KEYS.read_master.hex()}'),"
        f" h('{KEYS.uid_master.hex()}'), h('{KEYS.picc_master.hex()}')).reader_keys()\n"
        f"cred, uid, d = cl.read_credential(T(), keys, h('{RANDOM_UID.hex()}'), rng=lambda n: next(it))\n"
        "print(json.dumps([binascii.hexlify(cred).decode(), binascii.hexlify(uid).decode(), d['auth'],"
        " d['exchanges']]))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == [CRED.hex(), UID.hex(), "ev2", len(t.steps)]
