"""Signed reader configuration: the host builder (trustcore/reader_config.py), the reader's parser
(firmware/lib/reader_config.py) under CPython and MicroPython, and ``cbcc config``.

Updates that are rolled back, tampered with, malformed, oversize, for another reader or signed by
the wrong key are refused and leave the held configuration in place; host and reader name the same
status for the same bytes.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import cbor
import cbor2
import cose_key
import pytest
import reader_config as fw
import signed
from hypothesis import given, settings
from hypothesis import strategies as st
from support.host import p256_key, rsa_key
from support.micropython_runner import ROOT, run_snippet
from typer.testing import CliRunner

from cbcc.config import config_app
from trustcore import cbor_det, cose, keys, passphrase
from trustcore import reader_config as rc


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI texts matched here are the English ids (tests/messages checks the Vietnamese)."""
    monkeypatch.setenv("CBCC_LANG", "en")


EXAMPLE = ROOT / "docs" / "reader-config.example.toml"
IAT = 1780000000


def config_key() -> Any:
    return rsa_key("config")


def pinned(key: Any = None) -> Any:
    """The reader's view of a public key (firmware cose_key.PublicKey)."""
    return cose_key.load(keys.cose_key_bytes((key or config_key()).public_key()))


def example() -> dict[str, Any]:
    return rc.load_source(EXAMPLE)


def sign_payload(payload: dict[Any, Any] | bytes, key: Any = None) -> bytes:
    raw = payload if isinstance(payload, bytes) else cbor_det.dumps(payload)
    return cose.sign1(raw, key or config_key(), alg=None if key is not None else cose.ALG_RS256)


def raw_payload(seq: int = 5, src: dict[str, Any] | None = None) -> dict[Any, Any]:
    p: dict[Any, Any] = cbor2.loads(rc.build_payload(src or example(), seq, IAT))
    return p


# ---- the builder ----------------------------------------------------------------------------------------


def test_example_builds_and_the_reader_parses_it() -> None:
    blob = rc.build(example(), config_key(), 7, IAT)
    assert len(blob) < rc.MAX_SIZE
    status, cfg = fw.parse(blob, pinned(), "SNV-HN-01")
    assert status == "ok"
    assert cfg.seq == 7 and cfg.iat == IAT and cfg.reader_id == "SNV-HN-01" and cfg.tz == 420
    assert [d.id for d in cfg.doors] == ["cong-chinh", "cong-chinh-ra", "phong-may-chu", "sanh-tiep-dan"]
    main = cfg.door("cong-chinh")
    assert main is cfg.door(0) and main.name == "Cổng chính – vào"
    assert main.anti_clone and main.retap == 3 and main.apb == fw.APB_SOFT
    assert (main.from_area, main.to_area) == (0, 1) and main.unlock.name == "mo-cua-sang"
    assert [cfg.groups[i] for i in main.first_card] == ["bao-ve"]
    assert [cfg.groups[i] for i in main.override] == ["bao-ve", "lanh-dao"]
    assert main.unlock.days[0] == ((450, 510),) and main.unlock.days[5] == ()
    night = cfg.schedules[2]
    assert night.days[6] == ((1320, 1800),) and night.days[7] == ((0, 1440), (1320, 1800))
    server = cfg.door("phong-may-chu")
    assert [cfg.groups[groups[0]] for groups, _ in server.deny] == ["thuc-tap", "deny-staff"]
    assert cfg.nrules == 8 and len(server.allow) == 3  # with the [deny] and [allow] rules
    # Listed values live in one index per criterion kind: 13 bytes an entry, no string objects.
    assert [(bit, len(index)) for bit, index in cfg.indexes] == [(1, 2), (2, 1), (4, 2), (8, 4), (16, 1)]
    assert cfg.req == bytes([1, 1 | 2, 4, 8, 4, 0, 8, 16, 8])
    assert len(cfg.holidays) == 3 * 17
    assert cfg.apb_capacity == 256 and cfg.apb_timeout == 43200
    assert cfg.door("nope") is None and cfg.door(99) is None


def test_source_and_show_round_trip() -> None:
    for src in [example(), *(_random_valid_source(random.Random(i)) for i in range(40))]:
        payload = rc.compile_source(src)
        shown = rc.parse_payload(raw_payload(3, src))
        assert shown is not None
        shown.pop("seq")
        shown.pop("iat")
        assert rc.compile_source(shown) == payload, src


def _random_valid_source(r: random.Random) -> dict[str, Any]:
    from test_policy import random_source

    src = random_source(r)
    if r.random() < 0.5:
        src["deny"] = {"staff": ["CB-1"]} if r.random() < 0.5 else {"serials": [5, 9], "staff": ["CB-9"]}
    if r.random() < 0.3:
        src["allow"] = {"serials": [77]}
    return src


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("Mon-Fri 07:00-18:00", [(0x1F, 420, 1080)]),
        ("T2-T6 07:00-18:00", [(0x1F, 420, 1080)]),
        ("Sat-Mon 00:00-24:00", [(0x61, 0, 1440)]),
        ("CN 22:00-06:00", [(0x40, 1320, 1800)]),
        ("daily 08:00-09:00", [(0xFF, 480, 540)]),
        ("Mon-Sun 08:00-09:00", [(0x7F, 480, 540)]),
        ("T7,CN,Hol 08:00-09:00", [(0xE0, 480, 540)]),
        ("Mon,Wed,Fri 7:30-11:30, 13:00-17:00", [(0x15, 450, 690), (0x15, 780, 1020)]),
        ("Hol 08:00-12:00", [(0x80, 480, 720)]),
        ("Fri 23:59-00:00", [(0x10, 1439, 1440)]),
        ("Fri 00:00-23:59", [(0x10, 0, 1439)]),
    ],
)
def test_weekly_syntax(line: str, want: list[tuple[int, int, int]]) -> None:
    assert rc.parse_weekly(line, "x") == want
    mask, start, end = want[0]
    assert rc.parse_weekly(f"{rc.format_days(mask)} {rc.format_interval(start, end)}", "x")[0] == want[0]


@pytest.mark.parametrize(
    "line",
    ["Mon-Fri", "Mon-Fri 07:00-07:00", "Mon 24:30-25:00", "Mon 24:00-01:00", "Funday 07:00-08:00",
     "Mon-Hol 07:00-08:00", "Mon 7-8", "Mon 07:60-08:00", "Mon,,Tue 07:00-08:00", ""],
)  # fmt: skip
def test_weekly_syntax_errors(line: str) -> None:
    with pytest.raises(rc.ConfigError):
        rc.parse_weekly(line, "schedule[0].weekly[0]")


def test_timezone_and_durations() -> None:
    assert rc.parse_timezone("+07:00") == 420
    assert rc.parse_timezone("UTC+7") == 420
    assert rc.parse_timezone("GMT-05:00") == -300
    assert rc.parse_timezone("UTC+05:45") == 345
    assert rc.parse_timezone(-720) == -720
    for bad in ("Asia/Ho_Chi_Minh", "+15:00", "7", True, 900):
        with pytest.raises(rc.ConfigError):
            rc.parse_timezone(bad)
    assert rc.format_timezone(-330) == "UTC-05:30"
    assert [rc.parse_duration(x, "t") for x in (90, "90s", "15m", "12h", "1d")] == [90, 90, 900, 43200, 86400]
    with pytest.raises(rc.ConfigError):
        rc.parse_duration("1w", "t")


def test_holidays_pack_and_show() -> None:
    packed = rc.parse_holidays({"2026-02-14..2026-02-16": "L", "2026-02-28": "LB:Fri", "2026-02-27": "nb"})
    assert len(packed) == 15
    assert packed[-1] == (3 << 4) | 4 and packed[-4] == 2 << 4
    assert rc._decode_holidays(packed) == {
        "2026-02-14..2026-02-16": "L", "2026-02-27": "NB", "2026-02-28": "LB:Fri",
    }  # fmt: skip
    for bad in (
        {"2026-02-30": "L"},
        {"2026-02-14": "X"},
        {"2026-02-14": "L:Fri"},
        {"2026-02-14": "LB:Hol"},
        {"2026-02-14..2026-02-10": "L"},
        {"2026-02-14..2026-02-15": "L", "2026-02-15": "NB"},
        {"1969-12-31": "L"},
    ):
        with pytest.raises(rc.ConfigError):
            rc.parse_holidays(bad)


def test_texts_are_nfc_normalised() -> None:
    src = example()
    src["group"][1]["unit"] = ["Pho\u0300ng Công nghệ thông tin"]  # decomposed "ò"
    assert rc.compile_source(src) == rc.compile_source(example())


_DELETE = object()


def _broken(path: str, value: Any) -> dict[str, Any]:
    src = copy.deepcopy(example())
    target: Any = src
    parts = path.split(".")
    for p in parts[:-1]:
        target = target[int(p)] if p.isdigit() else target[p]
    last = parts[-1]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return src


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("requires_anticlone", True, "unknown key"),
        ("door.0.requires_anticlone", True, "door[0]: unknown key"),
        ("door.0.mode", "open", "door[0].mode"),
        ("door.0.first_card", ["nobody"], "no group with id 'nobody'"),
        ("door.1.first_card", ["bao-ve"], "needs an unlock_schedule"),
        ("door.0.anti_passback", {"mode": "hard", "from": "a", "to": "a"}, "different areas"),
        ("door.0.retap_seconds", -1, "retap_seconds"),
        ("door.0.requires_anti_clone", "yes", "true or false"),
        ("door.1.id", "cong-chinh", "door: ids must be unique"),
        ("door", [], "at least one"),
        ("group.0.agency", ["000..31"], "agency code prefix"),
        ("group.0.agency", ["1.2.3.4.5.6.7.8.9"], "at most 8"),
        ("group.0.agency", [], "non-empty list"),
        ("group.0.everyone", True, "cannot be combined"),
        ("group.0", {"id": "empty"}, "needs one of"),
        ("group.0.id", "deny-staff", "reserved"),
        ("group.1.id", "so-noi-vu", "group: ids must be unique"),
        ("group.0.serials", [2**53], "serials"),
        ("schedule.0.weekly", ["Mon-Fri 7h-18h"], "schedule[0].weekly[0]"),
        ("rule.0.schedule", "never", "no schedule with id 'never'"),
        ("rule.0.effect", "maybe", "allow, deny"),
        ("rule.0.groups", [], "non-empty list"),
        ("holidays.2026-01-01", "Tết", "type must be"),
        ("timezone", "Asia/Ho_Chi_Minh", "fixed UTC offset"),
        ("antipassback_capacity", 0, "antipassback_capacity"),
        ("antipassback_timeout", "30d", "antipassback_timeout"),
        ("deny", {"staf": ["x"]}, "deny: unknown key"),
        ("reader_id", _DELETE, "reader_id"),
    ],
)
def test_source_errors_name_the_place(path: str, value: Any, message: str) -> None:
    with pytest.raises(rc.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        rc.compile_source(_broken(path, value))


def test_oversize_is_refused_by_the_builder() -> None:
    src = example()
    src["group"].append({"id": "many", "staff": [f"CB-{i:08d}" for i in range(1500)]})
    with pytest.raises(rc.ConfigError, match="at most 16384"):
        rc.build(src, config_key(), 1, IAT)


def test_json_source_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps(example(), ensure_ascii=False), encoding="utf-8")
    assert rc.compile_source(rc.load_source(f)) == rc.compile_source(example())
    (tmp_path / "bad.toml").write_text("reader_id = ", encoding="utf-8")
    with pytest.raises(rc.ConfigError, match=r"bad\.toml"):
        rc.load_source(tmp_path / "bad.toml")


# ---- the reader: updates, rollback, tamper, malformed ---------------------------------------------------


def _cases() -> list[tuple[str, bytes, str]]:
    """(name, blob, status when the reader holds seq 5 of SNV-HN-01) in the order they are offered."""
    good5 = sign_payload(raw_payload(5))
    extra = raw_payload(6)
    extra[99] = "a future field"
    extra["x"] = [1, 2]
    extra[7][0][42] = {1: "door option from a later version"}
    tampered = bytearray(sign_payload(raw_payload(8)))
    tampered[-5] ^= 1
    tampered_payload = bytearray(sign_payload(raw_payload(8)))
    i = bytes(tampered_payload).find(b"cong-chinh")
    tampered_payload[i] ^= 0x20
    no_doors = raw_payload(9)
    del no_doors[7]
    bad_interval = raw_payload(9)
    bad_interval[9][0][2] = b"\x1f\x05\xa0\x00\x00"  # start 1440
    bad_index = raw_payload(9)
    bad_index[10][0][2] = [42]
    wrong_type = raw_payload(9)
    wrong_type[0] = "crl"
    too_deep = raw_payload(9)
    too_deep[8][0][2] = [["000.00.31"]]
    oversize = raw_payload(9)
    oversize[8][0][5] = [f"CB-{i:08d}" for i in range(1500)]
    bool_seq = raw_payload(9)
    bool_seq[2] = True
    other_reader = raw_payload(9)
    other_reader[4] = "SNV-HN-02"
    neg_tz = raw_payload(10)
    neg_tz[5] = -300
    return [
        ("first", good5, "ok"),
        ("same_seq", good5, "noop"),
        ("rollback", sign_payload(raw_payload(4)), "rollback"),
        ("unknown_keys_ignored", sign_payload(extra), "ok"),
        ("tampered_signature", bytes(tampered), "bad_signature"),
        ("tampered_payload", bytes(tampered_payload), "bad_signature"),
        ("wrong_key", sign_payload(raw_payload(9), rsa_key("intruder")), "unknown_root"),
        ("es256", sign_payload(raw_payload(9), p256_key("es")), "unsupported_alg"),
        ("no_doors", sign_payload(no_doors), "malformed"),
        ("bad_interval", sign_payload(bad_interval), "malformed"),
        ("bad_index", sign_payload(bad_index), "malformed"),
        ("wrong_type", sign_payload(wrong_type), "malformed"),
        ("too_deep", sign_payload(too_deep), "malformed"),
        ("oversize", sign_payload(oversize), "malformed"),
        ("bool_seq", sign_payload(bool_seq), "malformed"),
        ("garbage", b"\xd2\x84" + bytes(100), "malformed"),
        ("other_reader", sign_payload(other_reader), "wrong_reader"),
        ("negative_tz", sign_payload(neg_tz), "ok"),
    ]


HELD_AFTER = {"first": 5, "unknown_keys_ignored": 6, "negative_tz": 10}


def test_updates_on_the_reader_keep_the_old_config() -> None:
    holder = fw.ReaderConfig(pinned(), "SNV-HN-01")
    held = None
    for name, blob, want in _cases():
        before = holder.current
        assert holder.update(blob) == want, name
        if want == "ok":
            held = HELD_AFTER[name]
            assert holder.current is not before
        else:
            assert holder.current is before, name
        assert holder.seq == held, name
    assert holder.current.tz == -300


def test_host_names_the_same_status() -> None:
    public = config_key().public_key()
    held: int | None = None
    for name, blob, want in _cases():
        result = rc.load(blob, public, held, reader_id="SNV-HN-01")
        assert result.status == want, name
        if want == "ok":
            held = HELD_AFTER[name]


@pytest.mark.micropython
def test_updates_under_micropython(tmp_path: Path) -> None:
    cases = _cases()
    d = tmp_path / "blobs"
    d.mkdir()
    for i, (_, blob, _) in enumerate(cases):
        (d / f"{i}.cfg").write_bytes(blob)
    (d / "key").write_bytes(keys.cose_key_bytes(config_key().public_key()))
    code = (
        "import cose_key, reader_config, json\n"
        f"D = {str(d)!r}\n"
        "def rd(n):\n"
        "    with open(D + '/' + n, 'rb') as f:\n"
        "        return f.read(reader_config.MAX_SIZE + 1)\n"
        "h = reader_config.ReaderConfig(cose_key.load(rd('key')), 'SNV-HN-01')\n"
        "out = []\n"
        f"for i in range({len(cases)}):\n"
        "    st = h.update(rd('%d.cfg' % i))\n"
        "    c = h.current\n"
        "    out.append([st, h.seq, c.tz if c else None, len(c.doors) if c else 0])\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    holder = fw.ReaderConfig(pinned(), "SNV-HN-01")
    for (name, blob, want), row in zip(cases, got, strict=True):
        st_ = holder.update(blob)
        c = holder.current
        assert row == [st_, holder.seq, c.tz if c else None, len(c.doors) if c else 0], name
        assert row[0] == want, name


# ---- the reader's rules and the host's agree on any payload ---------------------------------------------


def _mutations(base: dict[Any, Any]) -> st.SearchStrategy[dict[Any, Any]]:
    paths: list[tuple[Any, ...]] = []

    def walk(obj: Any, path: tuple[Any, ...]) -> None:
        if len(path) > 3:
            return
        if isinstance(obj, dict):
            for k, v in obj.items():
                paths.append((*path, k))
                walk(v, (*path, k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                paths.append((*path, i))
                walk(v, (*path, i))

    walk(base, ())
    values = st.one_of(
        st.integers(-2, 2000),
        st.sampled_from([True, False, None, 2**53, 2**64 - 1, -721, 841, "", "x", "0..1", b"", b"\x01"]),
        st.sampled_from([[], {}, [0, 0], {1: "x"}, ["1.2.3.4.5.6.7.8.9"], ["a b"]]),
        st.binary(max_size=12),
        st.lists(st.integers(-1, 20), max_size=3),
        st.lists(st.text(max_size=3), max_size=2),
    )

    @st.composite
    def mutate(draw: st.DrawFn) -> dict[Any, Any]:
        p = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            target: Any = p
            try:
                for k in path[:-1]:
                    target = target[k]
                if draw(st.booleans()) and isinstance(target, dict):
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = draw(values)
            except (KeyError, IndexError, TypeError):
                pass
        return p

    return mutate()


@settings(max_examples=400, deadline=None)
@given(_mutations(raw_payload(5, None)))
def test_host_and_reader_agree_on_mutated_payloads(p: dict[Any, Any]) -> None:
    try:
        raw = cbor2.dumps(p, canonical=True)
        decoded = cbor.decode(raw)
    except (cbor.CborError, ValueError, TypeError):
        return  # not something a signed payload can carry (too deep for the reader, say)
    host = rc.parse_payload(p)
    try:
        fw.from_payload(decoded)
        reader_ok = True
    except (ValueError, TypeError, KeyError, IndexError):
        reader_ok = False
    assert (host is not None) == reader_ok


def test_firmware_constants_match_the_host() -> None:
    assert fw.WRONG_READER == rc.WRONG_READER
    assert fw.MAX_SIZE == rc.MAX_SIZE
    assert signed.MALFORMED == "malformed"
    for name in ("MAX_DOORS", "MAX_GROUPS", "MAX_SCHEDULES", "MAX_RULES", "MAX_APB", "DEFAULT_APB",
                 "DEFAULT_APB_TIMEOUT", "MAX_APB_TIMEOUT", "MAX_RETAP", "MAX_SEGMENTS"):  # fmt: skip
        assert getattr(fw, name) == getattr(rc, name), name


# ---- cbcc config ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(passphrase.ENV_VAR, raising=False)


def cli(*args: str | Path) -> Any:
    import typer

    app = typer.Typer()
    app.add_typer(config_app, name="config")
    return CliRunner().invoke(app, [str(a) for a in args], env={"CBCC_LANG": "en"})  # English texts matched


def test_cli_build_and_show(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("mật khẩu cấu hình\n", encoding="utf-8")
    r = cli("config", "init-key", "--out", tmp_path / "k", "--passphrase-file", pw)
    assert r.exit_code == 0, r.output
    key_pem, cose_file = tmp_path / "k" / "config.key.pem", tmp_path / "k" / "config.cose_key"
    assert keys.is_encrypted_pem(key_pem)
    out = tmp_path / "reader.cfg"
    r = cli("config", "build", EXAMPLE, "--key", key_pem, "--passphrase-file", pw, "--seq", 3, "--out", out)
    assert r.exit_code == 0, r.output
    assert "SNV-HN-01 seq 3" in r.output and (tmp_path / "k" / "config-SNV-HN-01.seq").read_text() == "3\n"
    # The reader accepts it under the pinned key.
    status, cfg = fw.parse(out.read_bytes(), cose_key.load(cose_file.read_bytes()), "SNV-HN-01")
    assert status == "ok" and cfg.seq == 3
    r = cli("config", "show", out, "--key", cose_file)
    assert r.exit_code == 0, r.output
    assert "status: ok" in r.output and "Cổng chính – vào" in r.output and "Mon-Fri 07:00-18:00" in r.output
    r = cli("config", "show", out, "--key", tmp_path / "k" / "config.pub.pem", "--json")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.output)
    assert shown["status"] == "ok" and shown["config"]["door"][0]["anti_passback"]["mode"] == "soft"
    r = cli("config", "show", out, "--key", cose_file, "--held-seq", 3)
    assert r.exit_code == 1 and "noop" in r.output
    r = cli("config", "show", out, "--key", cose_file, "--reader-id", "OTHER")
    assert r.exit_code == 1 and "wrong_reader" in r.output
    # seq only grows; the default is last + 1; --reader-id builds the same source for another reader.
    r = cli("config", "build", EXAMPLE, "--key", key_pem, "--passphrase-file", pw, "--seq", 2, "--out", out)
    assert r.exit_code == 1 and "not above the last published seq 3" in r.output
    r = cli("config", "build", EXAMPLE, "--key", key_pem, "--passphrase-file", pw, "--out", out)
    assert r.exit_code == 0 and "seq 4" in r.output, r.output
    out2 = tmp_path / "r2.cfg"
    r = cli("config", "build", EXAMPLE, "--key", key_pem, "--passphrase-file", pw, "--reader-id", "SNV-HN-02",
            "--out", out2)  # fmt: skip
    assert r.exit_code == 0 and "SNV-HN-02 seq 1" in r.output, r.output
    # A typo in the source stops the build before any passphrase is asked for.
    bad = tmp_path / "bad.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    bad.write_text(text.replace("requires_anti_clone", "requires_anticlone", 1), encoding="utf-8")
    r = cli("config", "build", bad, "--key", key_pem, "--out", tmp_path / "x.cfg")
    assert r.exit_code == 1 and "requires_anticlone" in r.output
    # A wrong key: refused with the reader's status.
    other = tmp_path / "other.cose_key"
    other.write_bytes(keys.cose_key_bytes(rsa_key("intruder").public_key()))
    r = cli("config", "show", out, "--key", other)
    assert r.exit_code == 1 and "unknown_root" in r.output
