"""The reader's HMAC-SHA256 against RFC 4231 and CPython's hmac, on both interpreters."""

from __future__ import annotations

import hashlib
import hmac
import json

import hmac_sha256
from hypothesis import given
from hypothesis import strategies as st
from support.micropython_runner import run_snippet

# RFC 4231 test cases 1, 2, 6 (key longer than a block), 7
RFC4231 = [
    ("0b" * 20, b"Hi There".hex(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.".hex(),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]  # fmt: skip


def test_rfc4231_cpython() -> None:
    for key, msg, tag in RFC4231:
        assert hmac_sha256.Hmac(bytes.fromhex(key)).digest(bytes.fromhex(msg)).hex() == tag


@given(st.binary(max_size=200), st.lists(st.binary(max_size=50), max_size=4))
def test_matches_cpython_hmac(key: bytes, parts: list[bytes]) -> None:
    want = hmac.new(key, b"".join(parts), hashlib.sha256).digest()
    assert hmac_sha256.Hmac(key).digest(*parts) == want
    assert hmac_sha256.equal(want, hmac_sha256.Hmac(key).digest(*parts))
    assert not hmac_sha256.equal(want, bytes(32))


def test_rfc4231_micropython() -> None:
    code = (
        "import hmac_sha256, binascii, json\n"
        f"cases = json.loads({json.dumps(json.dumps(RFC4231))})\n"
        "print(json.dumps([binascii.hexlify(hmac_sha256.Hmac(binascii.unhexlify(k))"
        ".digest(binascii.unhexlify(m))).decode() for k, m, _ in cases]))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [t for _, _, t in RFC4231]
