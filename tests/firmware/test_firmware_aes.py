"""AES-128 and AES-CMAC primitives of the reader, on both interpreters, against RFC 4493 and
FIPS-197 published vectors."""

from __future__ import annotations

import json

import aes
import pytest
from support.micropython_runner import run_snippet

KEY = "2b7e151628aed2a6abf7158809cf4f3c"
MSG64 = (
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
# RFC 4493 §4 examples 1–4: message length in bytes -> tag
CMAC_VECTORS = [
    (0, "bb1d6929e95937287fa37d129b756746"),
    (16, "070a16b46b4d4144f79bdd9dd04a287c"),
    (40, "dfa66747de9ae63030ca32611497c827"),
    (64, "51f0bebf7e3b9d92fc49741779363cfe"),
]


@pytest.mark.parametrize(("length", "tag"), CMAC_VECTORS)
def test_cmac_rfc4493_cpython(length: int, tag: str) -> None:
    assert aes.cmac(bytes.fromhex(KEY), bytes.fromhex(MSG64)[:length]).hex() == tag


def test_subkeys_rfc4493() -> None:
    k1, k2 = aes.cmac_subkeys(bytes.fromhex(KEY))
    assert k1.hex() == "fbeed618357133667c85e08f7236a8de"
    assert k2.hex() == "f7ddac306ae266ccf90bc11ee46d513b"


def test_fips197_block() -> None:
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    pt = bytes.fromhex("00112233445566778899aabbccddeeff")
    ct = aes.ecb_encrypt(key, pt)
    assert ct.hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"
    assert aes.ecb_decrypt(key, ct) == pt
    iv = bytes(range(16))
    assert aes.cbc_decrypt(key, iv, aes.cbc_encrypt(key, iv, pt * 3)) == pt * 3


@pytest.mark.micropython
def test_same_results_under_micropython() -> None:
    code = (
        "import aes, binascii, json\n"
        f"k = binascii.unhexlify('{KEY}')\n"
        f"m = binascii.unhexlify('{MSG64}')\n"
        "out = [binascii.hexlify(aes.cmac(k, m[:n])).decode() for n in (0, 16, 40, 64)]\n"
        "iv = bytes(range(16))\n"
        "ct = aes.cbc_encrypt(k, iv, m)\n"
        "out.append(aes.cbc_decrypt(k, iv, ct) == m)\n"
        "out.append(binascii.hexlify(ct).decode())\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip())
    assert got[:4] == [tag for _, tag in CMAC_VECTORS]
    assert got[4] is True
    iv = bytes(range(16))
    assert got[5] == aes.cbc_encrypt(bytes.fromhex(KEY), iv, bytes.fromhex(MSG64)).hex()
