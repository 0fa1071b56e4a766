"""The ``cbcc`` command line end to end: keys, trust list, mint, verify, revocation list."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from support.host import VECTORS, manifest, record
from typer.testing import CliRunner

from cbcc.app import app
from trustcore import cose, credential, keys, passphrase, trust_list

NOW = 1780272000
CBCC = Path(sys.executable).parent / "cbcc"


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(passphrase.ENV_VAR, raising=False)
    monkeypatch.setenv("CBCC_LANG", "en")  # the messages these tests match (tests/messages: Vietnamese)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A root, an RSA issuer (Nam Định, serials 1000…99999) and an ES256 issuer, via the CLI."""
    d = tmp_path_factory.mktemp("pki")
    pw = d / "pw"
    pw.write_text("mật khẩu gốc\n", encoding="utf-8")
    r = run("keys", "init-root", "--out", d / "root", "--passphrase-file", pw)
    assert r.exit_code == 0, r.output
    r = run(
        "keys", "new-issuer", "--name", unicodedata.normalize("NFD", "Sở Nội vụ tỉnh Nam Định"),
        "--serial-range", "1000:100000", "--not-before", "2024-01-01T00:00:00Z",
        "--out", d / "nd", "--passphrase-file", pw,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run(
        "keys", "new-issuer", "--name", "Văn phòng Chính phủ", "--serial-range", "200000:300000",
        "--alg", "ES256", "--out", d / "vpcp", "--passphrase-file", pw,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run(
        "keys", "trust-list", "--root-key", d / "root" / "root.key.pem", "--issuer", d / "nd",
        "--issuer", d / "vpcp" / "issuer.json", "--out", d / "trust.cbor", "--passphrase-file", pw,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    rec = d / "record.json"
    rec.write_text(json.dumps(record(groups=["nv.all"]), ensure_ascii=False), encoding="utf-8")
    r = run(
        "card", "mint", "--record", rec, "--issuer-key", d / "nd" / "issuer.key.pem",
        "--passphrase-file", pw, "--out", d / "cred.cbor",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return {"dir": d, "pw": pw, "root": d / "root", "trust": d / "trust.cbor", "cred": d / "cred.cbor"}


def verify(
    pki: dict[str, Path], *extra: str | Path, uid: str = "04a1b2c3d4e5f6", cred: Path | None = None
) -> Any:
    return run(
        "card", "verify", cred or pki["cred"], "--trust-list", pki["trust"],
        "--root", pki["root"] / "root.cose_key", "--uid", uid, "--now", str(NOW), *extra,
    )  # fmt: skip


def json_line(result: Any) -> dict[str, Any]:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    doc: dict[str, Any] = json.loads(lines[0])
    assert list(doc) == ["valid", "reason", "serial", "staff", "us_per_verify"]
    assert isinstance(doc["us_per_verify"], float) and doc["us_per_verify"] > 0
    return doc


def test_root_files(pki: dict[str, Path]) -> None:
    root = pki["root"]
    pem = (root / "root.key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    pub = keys.load_cose_key((root / "root.cose_key").read_bytes())
    assert pub.key_size == 3072  # type: ignore[union-attr]
    assert (root / "root.pub.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert (root / "trust-list.seq").read_text().strip() == "1"


def test_init_root_refuses_to_overwrite(pki: dict[str, Path]) -> None:
    before = (pki["root"] / "root.key.pem").read_bytes()
    r = run("keys", "init-root", "--out", pki["root"], "--passphrase-file", pki["pw"])
    assert r.exit_code == 1 and "refusing to overwrite" in r.stderr
    assert (pki["root"] / "root.key.pem").read_bytes() == before


def test_no_passphrase_no_terminal_writes_nothing(tmp_path: Path) -> None:
    r = run("keys", "init-root", "--out", tmp_path / "r")
    assert r.exit_code == 1
    assert "passphrase" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "r" / "root.key.pem").exists()


def test_passphrase_from_environment(tmp_path: Path) -> None:
    r = run(
        "keys", "new-issuer", "--name", "Bộ Nội vụ", "--serial-range", "1:10", "--out", tmp_path,
        env={passphrase.ENV_VAR: "từ biến môi trường"},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    key = keys.load_private_key(tmp_path / "issuer.key.pem", lambda: "từ biến môi trường".encode())
    doc = json.loads((tmp_path / "issuer.json").read_text(encoding="utf-8"))
    assert doc["kid"] == keys.kid_of(key.public_key()).hex()
    # Default validity: now → now + 10 years.
    assert trust_list.issuer_from_json(tmp_path).exp - trust_list.issuer_from_json(tmp_path).nbf in (
        3652 * 86400,
        3653 * 86400,
    )


def test_issuer_json(pki: dict[str, Path]) -> None:
    doc = json.loads((pki["dir"] / "nd" / "issuer.json").read_text(encoding="utf-8"))
    assert doc["name"] == "Sở Nội vụ tỉnh Nam Định"  # NFC, though given decomposed
    assert (doc["serial_lo"], doc["serial_hi"], doc["alg"]) == (1000, 100000, "RS256")
    assert doc["nbf"] == "2024-01-01T00:00:00Z" and doc["exp"] == "2034-01-01T00:00:00Z"
    es = json.loads((pki["dir"] / "vpcp" / "issuer.json").read_text(encoding="utf-8"))
    assert es["alg"] == "ES256"


@pytest.mark.parametrize(
    "args",
    [
        ["--serial-range", "10"],
        ["--serial-range", "10:5"],
        ["--serial-range", f"0:{2**53 + 1}"],
        [
            "--serial-range",
            "1:2",
            "--not-before",
            "2030-01-01T00:00:00Z",
            "--not-after",
            "2029-01-01T00:00:00Z",
        ],
        ["--serial-range", "1:2", "--not-before", "2030-01-01"],
    ],
)
def test_new_issuer_rejects(tmp_path: Path, args: list[str]) -> None:
    r = run("keys", "new-issuer", "--name", "X", "--out", tmp_path, *args, env={passphrase.ENV_VAR: "p"})
    assert r.exit_code == 1, r.output
    assert not (tmp_path / "issuer.key.pem").exists()


def test_trust_list_seq_is_monotonic(pki: dict[str, Path], tmp_path: Path) -> None:
    state = tmp_path / "seq"
    common = ["keys", "trust-list", "--root-key", pki["root"] / "root.key.pem", "--issuer", pki["dir"] / "nd",
              "--passphrase-file", pki["pw"], "--state-file", state]  # fmt: skip
    assert run(*common, "--out", tmp_path / "t1.cbor").exit_code == 0
    r = run(*common, "--out", tmp_path / "t1b.cbor", "--seq", "1")
    assert r.exit_code == 1 and "not above" in r.stderr
    assert run(*common, "--out", tmp_path / "t2.cbor").exit_code == 0
    assert run(*common, "--out", tmp_path / "t9.cbor", "--seq", "9").exit_code == 0
    assert run(*common, "--out", tmp_path / "t5.cbor", "--seq", "5").exit_code == 1
    root = keys.load_cose_key((pki["root"] / "root.cose_key").read_bytes())
    seqs = []
    for name in ("t1", "t2", "t9"):
        res = trust_list.load((tmp_path / f"{name}.cbor").read_bytes(), root)
        assert res.trust_list is not None
        seqs.append(res.trust_list.seq)
    assert seqs == [1, 2, 9]
    older = (tmp_path / "t2.cbor").read_bytes()
    assert trust_list.load(older, root, held_seq=9).status == "rollback"
    assert not (tmp_path / "t1b.cbor").exists() and not (tmp_path / "t5.cbor").exists()


def test_mint_output(pki: dict[str, Path]) -> None:
    blob = pki["cred"].read_bytes()
    msg = cose.parse_sign1(blob, credential.MAX_SIZE)
    nd = trust_list.issuer_from_json(pki["dir"] / "nd")
    assert msg.kid == nd.kid and msg.alg == cose.ALG_RS256
    claims = credential.parse_payload(msg.payload)
    assert claims is not None and claims[credential.GROUPS] == ["nv.all"]


def test_mint_wrong_passphrase(pki: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("sai\n")
    r = run(
        "card", "mint", "--record", pki["dir"] / "record.json", "--issuer-key",
        pki["dir"] / "nd" / "issuer.key.pem", "--passphrase-file", bad, "--out", tmp_path / "c.cbor",
    )  # fmt: skip
    assert r.exit_code == 1 and "wrong passphrase" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "c.cbor").exists()


def test_mint_bad_record(pki: dict[str, Path], tmp_path: Path) -> None:
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps(record(uid="04a1")), encoding="utf-8")
    r = run(
        "card", "mint", "--record", rec, "--issuer-key", pki["dir"] / "nd" / "issuer.key.pem",
        "--passphrase-file", pki["pw"], "--out", tmp_path / "c.cbor",
    )  # fmt: skip
    assert r.exit_code == 1 and "uid" in r.stderr


def test_verify_ok(pki: dict[str, Path]) -> None:
    r = verify(pki)
    assert r.exit_code == 0, r.output
    doc = json_line(r)
    assert doc["valid"] is True and doc["reason"] == "ok"
    assert doc["serial"] == 1001 and doc["staff"] == "CB-00001001"
    assert json_line(verify(pki, uid="04A1B2C3D4E5F6"))["valid"] is True


def test_verify_invalid_exit_1(pki: dict[str, Path]) -> None:
    r = verify(pki, uid="04a1b2c3d4e5f7")
    assert r.exit_code == 1
    doc = json_line(r)
    assert (doc["valid"], doc["reason"], doc["serial"]) == (False, "uid_mismatch", 1001)
    r = verify(pki, uid="0102")  # any length is a UID; a wrong one just does not match
    assert r.exit_code == 1 and json_line(r)["reason"] == "uid_mismatch"


def test_verify_malformed_reports_nulls(pki: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"\xd2\x84")
    r = verify(pki, cred=junk)
    assert r.exit_code == 1
    assert json_line(r) | {"us_per_verify": 0.0} == {
        "valid": False, "reason": "malformed", "serial": None, "staff": None, "us_per_verify": 0.0,
    }  # fmt: skip


def test_verify_with_revocation_list(pki: dict[str, Path], tmp_path: Path) -> None:
    crl = tmp_path / "crl.cbor"
    serials = tmp_path / "serials.txt"
    serials.write_text("# revoked cards\n5\n\n1001  # lost\n")
    r = run(
        "crl", "build", "--root-key", pki["root"] / "root.key.pem", "--serials-file", serials,
        "--serial", "77", "--out", crl, "--passphrase-file", pki["pw"], "--state-file", tmp_path / "crl.seq",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = verify(pki, "--crl", crl)
    assert r.exit_code == 1 and json_line(r)["reason"] == "revoked"
    show = run("crl", "show", crl, "--root", pki["root"] / "root.cose_key")
    assert show.exit_code == 0 and "1001" in show.stdout
    # A revocation list that does not verify is reported and not used.
    bad = tmp_path / "bad.cbor"
    bad.write_bytes(crl.read_bytes()[:-1] + b"\x00")
    r = verify(pki, "--crl", bad)
    assert r.exit_code == 0 and "revocation list" in r.stderr
    r = run(
        "crl", "build", "--root-key", pki["root"] / "root.key.pem", "--serial", "9", "--seq", "1",
        "--out", crl, "--passphrase-file", pki["pw"], "--state-file", tmp_path / "crl.seq",
    )  # fmt: skip
    assert r.exit_code == 1 and "not above" in r.stderr


def test_crl_build_needs_serials(pki: dict[str, Path], tmp_path: Path) -> None:
    r = run("crl", "build", "--root-key", pki["root"] / "root.key.pem", "--out", tmp_path / "c.cbor")
    assert r.exit_code == 1 and "--serial" in r.stderr


def test_verify_with_rejected_trust_list_is_unknown_issuer(pki: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "t.cbor"
    bad.write_bytes(pki["trust"].read_bytes() + b"\x00")
    r = run(
        "card", "verify", pki["cred"], "--trust-list", bad, "--root", pki["root"] / "root.cose_key",
        "--uid", "04a1b2c3d4e5f6", "--now", str(NOW),
    )  # fmt: skip
    assert r.exit_code == 1
    assert json_line(r)["reason"] == "unknown_issuer"
    assert "malformed" in r.stderr


@pytest.mark.parametrize(
    "change",
    [
        {"--uid": "zz"},
        {"--uid": "abc"},
        {"--uid": ""},
        {"cred": "missing.cbor"},
        {"--trust-list": "missing.cbor"},
        {"--root": "missing.cose_key"},
        {"--root": "BAD_ROOT"},
        {"--crl": "missing.cbor"},
        {"--now": "yesterday"},
        {"--now": "-5"},
        {"--repeat": "0"},
    ],
)
def test_verify_usage_errors_exit_2(pki: dict[str, Path], tmp_path: Path, change: dict[str, str]) -> None:
    bad_root = tmp_path / "bad_root"
    bad_root.write_bytes(b"\xa1\x01\x03")
    opts: dict[str, str] = {
        "--trust-list": str(pki["trust"]),
        "--root": str(pki["root"] / "root.cose_key"),
        "--uid": "04a1b2c3d4e5f6",
        "--now": str(NOW),
    }
    cred = str(pki["cred"])
    for k, v in change.items():
        v = str(bad_root) if v == "BAD_ROOT" else v if not v.startswith("missing") else str(tmp_path / v)
        if k == "cred":
            cred = v
        else:
            opts[k] = v
    args = ["card", "verify", cred]
    for k, v in opts.items():
        args += [k, v]
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""


def test_show_trust_list(pki: dict[str, Path]) -> None:
    r = run("keys", "show-trust-list", pki["trust"], "--root", pki["root"] / "root.cose_key")
    assert r.exit_code == 0 and "ES256" in r.stdout
    r = run(
        "keys", "show-trust-list", pki["trust"], "--root", pki["root"] / "root.cose_key", "--held-seq", "1"
    )
    assert r.exit_code == 1 and "noop" in r.stdout


# ---- the installed console script, as the benchmarks and auditors run it ----------------------


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CBCC), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", ["ok_basic", "revoked", "malformed_truncated_half", "unsupported_alg_es256"])
def test_console_script_on_vectors(name: str) -> None:
    m = manifest()
    case = next(c for c in m["cases"] if c["name"] == name)
    trust = VECTORS / (case["trust"] or m["trust"])
    args = ["card", "verify", str(VECTORS / case["file"]), "--trust-list", str(trust),
            "--root", str(VECTORS / m["root"]), "--uid", case["uid"], "--now", str(case["now"])]  # fmt: skip
    if case["crl"]:
        args += ["--crl", str(VECTORS / m["crl"])]
    proc = _script(*args)
    assert proc.returncode == (0 if case["expect"] == "ok" else 1), proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert (doc["reason"], doc["serial"], doc["staff"]) == (case["expect"], case["serial"], case["staff"])


def test_console_script_usage_error_is_exit_2() -> None:
    assert _script("card", "verify").returncode == 2
    assert _script("card", "verify", "x", "--trust-list", "y", "--root", "z", "--uid", "00").returncode == 2


def test_cli_startup_does_not_import_the_crypto_stack() -> None:
    code = "import sys, cbcc.app; print([m for m in ('cryptography', 'cbor2') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_host_and_reader_policy_texts_agree() -> None:
    import policy  # firmware/lib (tests/conftest.py puts it on the path)

    from trustcore.messages_vi import POLICY_TEXT, reason_text

    assert policy.TEXT_VI == POLICY_TEXT
    assert reason_text("ok", "punch") == "Đã chấm công"
    assert reason_text("no_access") == "Không có quyền qua cửa này"
