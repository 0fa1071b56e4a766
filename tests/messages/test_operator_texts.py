"""Operator texts of provisioning, the trust core and the broker/config commands: Vietnamese by
default, English with ``CBCC_LANG=en`` — the same refusal or prompt, from the one catalog."""

from __future__ import annotations

import getpass
import io
import sys
from collections.abc import Iterator

import pytest
import typer

import cbcc.common  # installs the catalog for the trust core's texts
import messages
from provisioning import reader_provision
from provisioning.encoders import select
from provisioning.encoders.base import EncoderError
from provisioning.errors import ProvisioningError
from trustcore import keys, passphrase
from trustcore.errors import TrustcoreError


@pytest.fixture
def lang() -> Iterator[None]:
    yield
    messages.set_lang(None)


def test_reader_provisioning_refusal_in_both_languages(lang: None) -> None:
    messages.set_lang("vi")
    with pytest.raises(ProvisioningError) as vi:
        reader_provision.check_reader_id("Cửa 1!")
    assert str(vi.value).startswith("mã đầu đọc 'Cửa 1!' không hợp lệ")
    messages.set_lang("en")
    with pytest.raises(ProvisioningError) as en:
        reader_provision.check_reader_id("Cửa 1!")
    assert str(en.value).startswith("reader id 'Cửa 1!' is not valid")
    assert messages.text_in(vi.value, "en") == str(en.value)  # one message, rendered in either


def test_encoder_refusal_in_vietnamese_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CBCC_LANG", raising=False)
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(EncoderError, match="không biết bộ ghi thẻ 'usb9'"):
        select.open_encoder("usb9")


def test_trust_core_refusal_shown_from_the_catalog(lang: None, capsys: pytest.CaptureFixture[str]) -> None:
    for code, expected in (("vi", "khóa RSA phải dài 2048 hoặc 3072 bit, không phải 1024"),
                           ("en", "RSA keys must be 2048 or 3072 bits, not 1024")):  # fmt: skip
        messages.set_lang(code)
        with pytest.raises(typer.Exit), cbcc.common.cli_errors():
            keys.generate_rsa(1024)
        assert expected in capsys.readouterr().err
    with pytest.raises(TrustcoreError, match="not 1024"):  # the exception itself stays English
        keys.generate_rsa(1024)


def test_passphrase_prompt_in_both_languages(lang: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(passphrase.ENV_VAR, raising=False)
    tty = io.StringIO()
    monkeypatch.setattr(tty, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys, "stdin", tty)
    asked: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or "bí mật")
    messages.set_lang("vi")
    assert passphrase.obtain(None, confirm=True, purpose=messages._("the new root key")) == "bí mật".encode()
    messages.set_lang("en")
    passphrase.obtain(None, confirm=False, purpose=messages._("the new root key"))
    assert asked == [
        "Mật khẩu cho khóa gốc mới: ",
        "Nhập lại mật khẩu: ",
        "Passphrase for the new root key: ",
    ]


def test_signed_object_statuses_read_as_words(lang: None) -> None:
    from messages import words
    from trustcore import signed_object

    assert set(signed_object.STATUSES) <= set(words.STATUS)
    messages.set_lang("vi")
    line = cbcc.common.status_line("unknown_root")
    assert line == "trạng thái: [bold]unknown_root[/bold] (không được ký bằng khóa đã ghim)"
    messages.set_lang("en")
    assert cbcc.common.status_line("ok") == "status: [bold]ok[/bold] (accepted)"
