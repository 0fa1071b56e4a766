"""Command-line contract of firmware/tools/desfire_kdf.py and desfire_session.py under the
MicroPython unix port (run from the repository root, as audits run them)."""

from __future__ import annotations

import json

import pytest
from support.micropython_runner import run_micropython
from test_desfire_crypto import ref_an10922, ref_session_keys

h = bytes.fromhex
KDF = "firmware/tools/desfire_kdf.py"
SES = "firmware/tools/desfire_session.py"

pytestmark = pytest.mark.micropython


def test_kdf_published_example() -> None:
    p = run_micropython([KDF, "--master", "00112233445566778899AABBCCDDEEFF", "--uid", "04782E21801D80",
                         "--aid", "3042F5", "--sysid", "4E585020416275"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == "A8DD63A3B89D54B37CA802473FDA9175\n"


def test_kdf_matches_reference_for_the_cbcc_layout() -> None:
    master = bytes(range(16))
    p = run_micropython([KDF, "--master", master.hex(), "--uid", "04a1b2c3d4e580", "--aid", "564331",
                         "--sysid", b"CBCCVC".hex()])
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ref_an10922(master, h("04a1b2c3d4e580") + b"VC1CBCCVC").hex().upper()
    p = run_micropython([KDF, "--master", master.hex(), "--uid", "04"])  # short input, AID/sysid optional
    assert p.stdout.strip() == ref_an10922(master, h("04")).hex().upper()


@pytest.mark.parametrize("args", [
    [],
    ["--master", "00112233445566778899AABBCCDDEEFF"],
    ["--master", "0011", "--uid", "04782E21801D80"],
    ["--master", "00112233445566778899AABBCCDDEEFF", "--uid", "zz"],
    ["--master", "00112233445566778899AABBCCDDEEFF", "--uid", "00" * 32],
    ["--master", "00112233445566778899AABBCCDDEEFF", "--uid", "04", "--bogus", "1"],
    ["--master", "00112233445566778899AABBCCDDEEFF", "--uid", "04", "extra"],
    ["--master"],
])
def test_kdf_usage_errors_exit_2(args: list[str]) -> None:
    p = run_micropython([KDF, *args])
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stdout == "" and "usage" in p.stderr


def test_session_published_example() -> None:
    p = run_micropython([SES, "--key", "00" * 16, "--rnda", "13C5DB8A5930439FC3DEF9A4C675360F",
                         "--rndb", "B9E2FC789B64BF237CCCAA20EC7E6E48"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"enc": "1309C877509E5A215007FF0ED19CA564",
                                    "mac": "4C6626F5E72EA694202139295C7A7FC7"}
    assert len(p.stdout.strip().splitlines()) == 1


def test_session_matches_formula() -> None:
    key, rnda, rndb = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))
    p = run_micropython([SES, "--key", key.hex(), "--rnda", rnda.hex(), "--rndb", rndb.hex()])
    enc, mac = ref_session_keys(key, rnda, rndb)
    assert json.loads(p.stdout) == {"enc": enc.hex().upper(), "mac": mac.hex().upper()}


@pytest.mark.parametrize("args", [
    [],
    ["--key", "00" * 16, "--rnda", "00" * 16],
    ["--key", "00" * 15, "--rnda", "00" * 16, "--rndb", "00" * 16],
    ["--key", "00" * 16, "--rnda", "0g" * 16, "--rndb", "00" * 16],
    ["--key", "00" * 16, "--rnda", "00" * 16, "--rndb", "00" * 17],
])
def test_session_usage_errors_exit_2(args: list[str]) -> None:
    p = run_micropython([SES, *args])
    assert p.returncode == 2 and p.stdout == "" and "usage" in p.stderr
