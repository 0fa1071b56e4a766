"""Keys: sizes, the kid rule, COSE_Key export/import rules, encryption at rest, passphrase sources."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.host import p256_key, root_key, rsa_key

from trustcore import cbor_det, keys, passphrase
from trustcore.errors import TrustcoreError


def test_generated_sizes_and_exponent() -> None:
    root = root_key()
    issuer = rsa_key("a")
    assert root.key_size == 3072 and issuer.key_size == 2048
    assert root.public_key().public_numbers().e == 65537 == issuer.public_key().public_numbers().e
    with pytest.raises(TrustcoreError):
        keys.generate_rsa(1024)


def test_kid_is_sha256_of_der_spki_first_8_bytes() -> None:
    for key in (rsa_key("a"), p256_key("es")):
        pub = key.public_key()
        der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert keys.kid_of(pub) == hashlib.sha256(der).digest()[:8]
        assert len(keys.kid_of(pub)) == 8


def test_rsa_cose_key_export_and_import() -> None:
    pub = rsa_key("a").public_key()
    m = keys.cose_key_map(pub)
    n = pub.public_numbers().n
    assert m == {1: 3, -1: n.to_bytes(256, "big"), -2: b"\x01\x00\x01"}
    assert m[-1][0] >= 0x80  # no leading zero
    data = keys.cose_key_bytes(pub)
    assert data == cbor_det.dumps(m)
    back = keys.load_cose_key(data)
    assert isinstance(back, rsa.RSAPublicKey) and back.public_numbers() == pub.public_numbers()


def test_ec2_cose_key_export_and_import() -> None:
    pub = p256_key("es").public_key()
    m = keys.cose_key_map(pub)
    assert m[1] == 2 and m[-1] == 1 and len(m[-2]) == 32 and len(m[-3]) == 32
    assert keys.public_key_from_cose(m).public_numbers() == pub.public_numbers()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        "not a map",
        {1: 3},
        {1: 4, -1: b"\x00"},
        {1: True, -1: b"\x80" * 256, -2: b"\x01\x00\x01"},
        {1: 3, -1: b"\x80" * 256, -2: b"\x03"},  # e = 3
        {1: 3, -1: b"\x80" * 256, -2: b"\x00\x01\x00\x01"},  # e with a leading zero
        {1: 3, -1: b"\x80" * 128, -2: b"\x01\x00\x01"},  # 1024-bit
        {1: 3, -1: b"\x00" + b"\x80" * 256, -2: b"\x01\x00\x01"},  # leading zero
        {1: 3, -1: b"\x7f" + b"\x80" * 255, -2: b"\x01\x00\x01"},  # 2047-bit
        {1: 3, -1: "n", -2: b"\x01\x00\x01"},
        {1: 2, -1: 2, -2: b"\x01" * 32, -3: b"\x01" * 32},  # P-384 label
        {1: 2, -1: 1, -2: b"\x01" * 31, -3: b"\x01" * 32},
        {1: 2, -1: 1, -2: b"\x01" * 32, -3: b"\x01" * 32},  # not on the curve
    ],
)
def test_cose_key_import_rejects(bad: object) -> None:
    with pytest.raises(keys.KeyFormatError):
        keys.public_key_from_cose(bad)


def test_cose_key_file_limits() -> None:
    with pytest.raises(keys.KeyFormatError):
        keys.load_cose_key(b"\x00" * 1025)
    with pytest.raises(keys.KeyFormatError):
        keys.load_cose_key(keys.cose_key_bytes(rsa_key("a").public_key()) + b"\x00")


def test_extra_cose_key_labels_are_ignored() -> None:
    pub = rsa_key("a").public_key()
    m = {**keys.cose_key_map(pub), 2: b"kid", 3: -257}
    assert keys.public_key_from_cose(m).public_numbers() == pub.public_numbers()  # type: ignore[union-attr]


# ---- encrypted at rest -------------------------------------------------------------------------


def test_private_key_is_encrypted_pkcs8_and_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    keys.write_private_key(path, rsa_key("a"), b"correct horse")
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"ENCRYPTED" in pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = keys.load_private_key(path, lambda: b"correct horse")
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == rsa_key("a").private_numbers()


def test_wrong_passphrase_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    keys.write_private_key(path, rsa_key("a"), b"right")
    with pytest.raises(TrustcoreError, match="wrong passphrase"):
        keys.load_private_key(path, lambda: b"wrong")


def test_never_writes_clear_text_or_overwrites(tmp_path: Path) -> None:
    with pytest.raises(TrustcoreError):
        keys.encrypted_pem(rsa_key("a"), b"")
    path = tmp_path / "k.pem"
    keys.write_private_key(path, rsa_key("a"), b"x")
    before = path.read_bytes()
    with pytest.raises(TrustcoreError, match="refusing to overwrite"):
        keys.write_private_key(path, rsa_key("b"), b"x")
    assert path.read_bytes() == before


def test_clear_text_key_from_another_tool_loads_without_asking(tmp_path: Path) -> None:
    path = tmp_path / "clear.pem"
    path.write_bytes(
        rsa_key("a").private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    def never() -> bytes:
        raise AssertionError("no passphrase needed")

    assert not keys.is_encrypted_pem(path)
    assert isinstance(keys.load_private_key(path, never), rsa.RSAPrivateKey)


def test_unsupported_private_keys_are_refused(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "small.pem"
    keys.write_private_key(path, small, b"pw")
    with pytest.raises(TrustcoreError, match="2048 or 3072"):
        keys.load_private_key(path, lambda: b"pw")
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(TrustcoreError):
        keys.load_private_key(junk, lambda: b"pw")


# ---- passphrase sources ------------------------------------------------------------------------


class _NoTty(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_passphrase_from_file_first_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(passphrase.ENV_VAR, "from-env")
    f = tmp_path / "pw"
    f.write_bytes("mật khẩu dài\r\nsecond line\n".encode())
    assert passphrase.obtain(f, confirm=True, purpose="t") == "mật khẩu dài".encode()


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(passphrase.ENV_VAR, "from-env")
    assert passphrase.obtain(None, confirm=True, purpose="t") == b"from-env"


def test_no_passphrase_source_without_tty_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(passphrase.ENV_VAR, raising=False)
    monkeypatch.setattr("sys.stdin", _NoTty())
    with pytest.raises(TrustcoreError, match="passphrase"):
        passphrase.obtain(None, confirm=True, purpose="t")


def test_prompt_confirms_on_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(passphrase.ENV_VAR, raising=False)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty())
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(TrustcoreError, match="do not match"):
        passphrase.obtain(None, confirm=True, purpose="t")
    answers = iter(["same", "same"])
    assert passphrase.obtain(None, confirm=True, purpose="t") == b"same"
    answers = iter(["once"])
    assert passphrase.obtain(None, confirm=False, purpose="t") == b"once"


def test_empty_or_missing_passphrase_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    with pytest.raises(TrustcoreError, match="empty"):
        passphrase.obtain(empty, confirm=False, purpose="t")
    with pytest.raises(TrustcoreError, match="cannot read"):
        passphrase.obtain(tmp_path / "absent", confirm=False, purpose="t")


def test_write_new_file_is_exclusive(tmp_path: Path) -> None:
    p = tmp_path / "x"
    keys.write_new_file(p, b"1")
    with pytest.raises(TrustcoreError):
        keys.write_new_file(p, b"2")
    assert p.read_bytes() == b"1"
    assert os.access(p, os.R_OK)
