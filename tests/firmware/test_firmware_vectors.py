"""Every committed test vector through the reader's verifier, under the real MicroPython unix
port and under CPython, and the verify tool's §5 contract."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from typing import Any

import pytest
from support.micropython_runner import ROOT, run_micropython

VECTORS = ROOT / "tests" / "vectors"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "manifest.json").read_text())
CHECK = ROOT / "tests" / "mpy" / "check_vectors.py"


def _expected() -> dict[str, Any]:
    exp: dict[str, Any] = {"cases": {}, "trust_cases": {}, "crl_cases": {}}
    for c in MANIFEST["cases"]:
        exp["cases"][c["name"]] = [c["expect"], c["serial"], c["staff"]]
    for c in MANIFEST["trust_cases"]:
        exp["trust_cases"][c["name"]] = c["expect"]
    for c in MANIFEST["crl_cases"]:
        looked = []
        if c["expect"] == "ok":
            looked = [[s, True] for s in c.get("revoked", [])]
            looked += [[s, False] for s in c.get("not_revoked", [])]
        exp["crl_cases"][c["name"]] = [c["expect"], looked]
    return exp


def test_vectors_cover_every_reason_code() -> None:
    import credential

    covered = {c["expect"] for c in MANIFEST["cases"]}
    assert covered == set(credential.REASONS)
    statuses = {c["expect"] for c in MANIFEST["trust_cases"]}
    assert {"ok", "noop", "rollback", "malformed", "unknown_root", "bad_signature"} <= statuses


@pytest.mark.micropython
def test_reader_verifier_under_micropython() -> None:
    # The harness holds the whole 48 KB manifest; the reader-sized heap is exercised by the fuzz loop.
    proc = run_micropython([str(CHECK), str(VECTORS)], heap="2M")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    exp = _expected()
    for section in exp:
        for name, want in exp[section].items():
            assert got[section][name] == want, f"{section}/{name}"


def test_reader_verifier_under_cpython(capsys: pytest.CaptureFixture[str]) -> None:
    saved = sys.argv
    sys.argv = [str(CHECK), str(VECTORS)]
    try:
        runpy.run_path(str(CHECK), run_name="__main__")
    finally:
        sys.argv = saved
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got == _expected()


def _tool(
    interpreter: str, case: dict[str, Any], extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = [
        "firmware/tools/verify_credential.py",
        str(VECTORS / case["file"]),
        str(VECTORS / (case.get("trust") or MANIFEST["trust"])),
        str(VECTORS / MANIFEST["root"]),
        "--uid", case["uid"], "--now", str(case["now"]),
    ]
    if case["crl"]:
        args += ["--crl", str(VECTORS / MANIFEST["crl"])]
    args += extra or []
    if interpreter == "micropython":
        return run_micropython(args)
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.micropython
@pytest.mark.parametrize("case", MANIFEST["cases"], ids=[c["name"] for c in MANIFEST["cases"]])
def test_verify_tool_contract_micropython(case: dict[str, Any]) -> None:
    proc = _tool("micropython", case)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    out = json.loads(lines[0])
    assert list(out) == ["valid", "reason", "serial", "staff", "us_per_verify"]
    assert out["reason"] == case["expect"]
    assert out["valid"] is (case["expect"] == "ok")
    assert out["serial"] == case["serial"]
    assert out["staff"] == case["staff"]
    assert isinstance(out["us_per_verify"], float)
    assert proc.returncode == (0 if case["expect"] == "ok" else 1)


@pytest.mark.micropython
def test_verify_tool_repeat_and_usage_errors() -> None:
    ok = next(c for c in MANIFEST["cases"] if c["expect"] == "ok")
    proc = _tool("micropython", ok, ["--repeat", "20"])
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["us_per_verify"] > 0
    for bad in (["--uid", "zz"], ["--repeat", "0"], ["--bogus", "1"]):
        assert _tool("micropython", ok, bad).returncode == 2
    missing = run_micropython(["firmware/tools/verify_credential.py", "nope.cbor", "x", "y", "--uid", "00"])
    assert missing.returncode == 2
    assert missing.stdout == ""


def test_verify_tool_runs_under_cpython_too() -> None:
    ok = next(c for c in MANIFEST["cases"] if c["expect"] == "ok")
    proc = _tool("python", ok)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reason"] == "ok"
