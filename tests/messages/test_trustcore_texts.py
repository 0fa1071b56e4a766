"""The trust core's refusals and load details, and the encoder's link-loss texts, as people read
them: Vietnamese by default, English with ``CBCC_LANG=en``, from the one catalog (messages/vi.po).

The trust core imports nothing of the catalog: its errors and details keep an English template and
fields (trustcore/errors.py) that the command line renders; a detail that wraps another refusal
(``not a root chain: truncated``) is rendered whole in the same language."""

from __future__ import annotations

import ast
import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

import cbcc.common
import messages
from cbcc.app import app
from provisioning.encoders.base import LinkLost
from provisioning.encoders.serial_link import SerialEncoder
from trustcore import cbor_det, cose, keys, root_transition
from trustcore.errors import TemplatedError, Text, TrustcoreError

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "tests" / "vectors" / "national"


def cli(*args: object, lang: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args], env={"CBCC_LANG": lang})
    return res.exit_code, " ".join(res.output.split())  # rich wraps long lines


@pytest.fixture
def lang() -> Iterator[None]:
    yield
    messages.set_lang(None)


@pytest.mark.parametrize(
    ("vector", "vi", "en"),
    [
        ("trust_malformed_duplicate_kid.cbor", "lý do: kid bị trùng", "reason: duplicate kid"),
        (
            "trust_too_large_257_entries.cbor",
            "lý do: 257 mục, tối đa 256",
            "reason: 257 entries, at most 256",
        ),
        (
            "trust_malformed_overlapping_ranges.cbor",
            "lý do: dải số thẻ chồng lấn:",
            "reason: overlapping serial ranges:",
        ),
    ],
)
def test_a_bad_trust_list_says_why_in_both_languages(vector: str, vi: str, en: str) -> None:
    args = ("keys", "show-trust-list", NATIONAL / vector, "--root", NATIONAL / "root.cose_key")
    code, out = cli(*args, lang="vi")
    assert code == 1 and vi in out and "trạng thái:" in out, out
    code, out = cli(*args, lang="en")
    assert code == 1 and en in out and "status:" in out, out


def test_a_damaged_trust_list_names_the_cbor_rule_in_both_languages(tmp_path: Path) -> None:
    """The detail wraps the COSE refusal, which wraps the CBOR one: one sentence per language."""
    damaged = tmp_path / "trust.cbor"
    damaged.write_bytes((NATIONAL / "trust_ok_192_pycose.cbor").read_bytes()[:500])
    args = ("keys", "show-trust-list", damaged, "--root", NATIONAL / "root.cose_key")
    code, out = cli(*args, lang="vi")
    assert code == 1 and "lý do: không phải COSE_Sign1 chặt chẽ: dữ liệu bị cụt" in out, out
    code, out = cli(*args, lang="en")
    assert code == 1 and "reason: not a strict COSE_Sign1: truncated" in out, out


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A pinned root, the next root, and two chains from it: one forged (signed by another key
    under the pinned root's kid) and one cut short."""
    d = tmp_path_factory.mktemp("roots")
    pinned, new, forger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3))
    (d / "root.cose_key").write_bytes(keys.cose_key_bytes(pinned.public_key()))
    (d / "new.cose_key").write_bytes(keys.cose_key_bytes(new.public_key()))
    good = root_transition.build_link(pinned, new.public_key(), 1, 1_700_000_000)
    payload = cose.parse_sign1(good, root_transition.MAX_LINK).payload
    forged = cose.sign1(payload, forger, kid=keys.kid_of(pinned.public_key()), alg=cose.ALG_RS256)
    (d / "forged.chain").write_bytes(cbor_det.dumps([forged]))
    (d / "cut.chain").write_bytes(root_transition.build_chain([good])[:100])
    return {p.stem if p.suffix == ".chain" else p.name: p for p in d.iterdir()}


def test_a_forged_root_transition_is_refused_in_both_languages(roots: dict[str, Path]) -> None:
    args = ("keys", "show-root-chain", roots["forged"], "--root", roots["root.cose_key"])
    code, out = cli(*args, lang="vi")
    assert code == 1 and "trạng thái: bad_signature (chữ ký không hợp lệ)" in out, out
    code, out = cli(*args, lang="en")
    assert code == 1 and "status: bad_signature (invalid signature)" in out, out


def test_a_damaged_root_chain_is_refused_in_both_languages(roots: dict[str, Path], tmp_path: Path) -> None:
    args = ("keys", "root-transition", "--root-key", tmp_path / "unused.pem", "--new-root",
            roots["new.cose_key"], "--chain", roots["cut"], "--pinned", roots["root.cose_key"])  # fmt: skip
    code, out = cli(*args, lang="vi")
    assert code == 1 and "không phải chuỗi khóa gốc: dữ liệu bị cụt" in out, out
    code, out = cli(*args, lang="en")
    assert code == 1 and "not a root chain: truncated" in out, out


@pytest.mark.parametrize(
    ("record", "vi", "en"),
    [
        ({"serial": 1}, "thiếu trường hồ sơ: staff, name", "missing record field(s): staff, name"),
        ("[1, 2]", "hồ sơ phải là một đối tượng JSON", "record must be a JSON object"),
        ("{", "không phải JSON hợp lệ", "is not valid JSON"),
    ],
)
def test_a_malformed_credential_record_is_refused_in_both_languages(
    tmp_path: Path, record: object, vi: str, en: str
) -> None:
    path = tmp_path / "record.json"
    path.write_text(record if isinstance(record, str) else json.dumps(record), encoding="utf-8")
    key, cred = tmp_path / "issuer.pem", tmp_path / "out.cbor"  # never reached: the record is refused first
    args = ("card", "mint", "--record", path, "--issuer-key", key, "--out", cred)
    code, out = cli(*args, lang="vi")
    assert code == 1 and out.startswith("lỗi: ") and vi in out, out
    code, out = cli(*args, lang="en")
    assert code == 1 and out.startswith("error: ") and en in out, out


def test_a_reader_configuration_refusal_names_the_place_in_both_languages(
    lang: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from trustcore import reader_config

    source = {"door": [{"id": "d1", "name": "Cửa chính", "mode": "ajar"}]}
    for code, expected in (("vi", "door[0].mode: phải là một trong normal"),
                           ("en", "door[0].mode: must be one of normal")):  # fmt: skip
        messages.set_lang(code)
        with pytest.raises(typer.Exit), cbcc.common.cli_errors():
            reader_config.compile_source(source, reader_id="r1")
        assert expected in capsys.readouterr().err
    with pytest.raises(TrustcoreError, match=r"door\[0\]\.mode: must be one of normal"):
        reader_config.compile_source(source, reader_id="r1")  # the exception itself stays English


class _SilentPort:
    """A serial port whose encoder was unplugged: writes vanish, reads time out empty."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def read(self, n: int) -> bytes:
        return b""

    def close(self) -> None:
        pass


def test_encoder_link_lost_says_what_to_do_in_both_languages(
    lang: None, capsys: pytest.CaptureFixture[str]
) -> None:
    said = {}
    for code in ("vi", "en"):
        messages.set_lang(code)
        with pytest.raises(typer.Exit), cbcc.common.cli_errors():
            try:
                SerialEncoder(_SilentPort(), timeout_s=0.01)
            except LinkLost as exc:
                caught = exc
                raise
        said[code] = capsys.readouterr().err
    assert "mất kết nối với bộ ghi thẻ (không trả lời kịp thời hạn); hãy kiểm tra cáp USB" in " ".join(
        said["vi"].split()
    )
    assert "the link to the encoder broke (no answer in time); check its USB cable" in " ".join(
        said["en"].split()
    )
    assert "(the issuance resumes where it stopped)" in messages.text_in(caught, "en")  # one message, either


def test_nested_texts_render_in_the_asked_language() -> None:
    inner = Text("truncated")
    outer = TrustcoreError("not a root chain: {reason}", reason=inner)
    assert str(outer) == "not a root chain: truncated"
    assert messages.text_in(outer, "vi") == "không phải chuỗi khóa gốc: dữ liệu bị cụt"
    assert messages.text_in(outer, "en") == "not a root chain: truncated"
    api = messages.message_of(outer)  # what the gateway hands its API: rendered again per request
    assert isinstance(api, messages.Message)
    assert api.in_lang("vi") == "không phải chuỗi khóa gốc: dữ liệu bị cụt"
    again = pickle.loads(pickle.dumps(outer))  # noqa: S301  (our own bytes: a worker process's error)
    assert type(again) is TrustcoreError and messages.text_in(again, "vi") == messages.text_in(outer, "vi")


def test_every_trust_core_refusal_carries_a_catalog_template() -> None:
    """No literal or f-string message reaches a trust-core error or Text: each is ``N_("…")``
    (extracted to the catalog) or a template passed on from another templated error. Builtin
    ``TypeError``/``ValueError`` stay English: the trust core raises them only for its own
    programming faults (a float handed to the encoder, a key of the wrong type for an alg)."""
    names = {"Text", "TrustcoreError", "TemplatedError", "_where"}
    for path in (ROOT / "trustcore").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                getattr(b, "id", getattr(b, "attr", "")) in names | {"Exception"} for b in node.bases
            ):
                names.add(node.name)
    bad = []
    for path in (ROOT / "trustcore").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            pos = 1 if name == "_where" else 0
            if name not in names or len(node.args) <= pos:
                continue
            arg = node.args[pos]
            if isinstance(arg, ast.Constant | ast.JoinedStr | ast.BinOp):
                bad.append(f"{path.name}:{node.lineno} {name}")
    assert not bad, f"mark the message with N_(…) and pass its values as fields: {bad}"
    assert {"CborStrictError", "CoseFormatError", "KeyFormatError", "BodyError", "ConfigError"} <= names
    assert issubclass(TrustcoreError, TemplatedError)
