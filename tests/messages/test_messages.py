"""The one catalog (messages/vi.po): every marked message has a Vietnamese text with the same
placeholders, the catalog matches the code, and the domain words agree with the reader's own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import messages
from messages import words
from trustcore import messages_vi

ROOT = Path(__file__).resolve().parents[2]
FIELD = re.compile(r"\{(\w*)\}")


def _catalog() -> dict[str, str]:
    with (ROOT / "messages" / "vi.po").open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


def test_the_catalog_covers_every_marked_message(tmp_path: Path) -> None:
    pot = tmp_path / "now.pot"
    pybabel = str(Path(sys.executable).parent / "pybabel")
    subprocess.run(
        [
            pybabel,
            "extract",
            "-F",
            "messages/babel.cfg",
            "-k",
            "N_",
            "--omit-header",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        marked = {str(m.id) for m in read_po(f) if m.id}
    cat = _catalog()
    missing = sorted(marked - {k for k, v in cat.items() if v})
    assert not missing, f"untranslated (update messages/vi.po): {missing}"


def test_placeholders_survive_translation() -> None:
    for msgid, text in _catalog().items():
        assert sorted(FIELD.findall(msgid)) == sorted(FIELD.findall(text)), msgid


def test_language_choice() -> None:
    assert messages.gettext("error:", "vi") == "lỗi:"
    assert messages.gettext("error:", "en") == "error:"
    try:
        messages.set_lang("en")
        assert messages.lang() == "en"
    finally:
        messages.set_lang(None)


def test_language_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CBCC_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    assert messages.lang() == "vi"  # no locale: the operators' language
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert messages.lang() == "vi"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert messages.lang() == "en"
    monkeypatch.setenv("CBCC_LANG", "vi")
    assert messages.lang() == "vi"  # the setting wins over the locale


def test_reasons_read_as_the_reader_shows_them() -> None:
    for code in words.REASON:
        expected = messages_vi.REASON_TEXT.get(code) or messages_vi.POLICY_TEXT[code]
        assert words.reason(code, lang="vi") == expected, code
    assert set(words.REASON) == set(messages_vi.REASON_TEXT) | set(messages_vi.POLICY_TEXT)
    assert words.reason("ok", "punch", lang="vi") == messages_vi.PUNCHED


def test_every_command_summary_is_in_the_catalog() -> None:
    """What ``cbcc … --help`` lists: each command's first help paragraph has a Vietnamese text."""
    import inspect

    import typer

    from cbcc.app import app

    cat = _catalog()
    missing = []

    def walk(cmd: object) -> None:
        text = getattr(cmd, "help", None)
        if text:
            first = inspect.cleandoc(text).split("\n\n")[0]
            if not cat.get(first) and not any(first == v for v in cat.values()):
                missing.append(first)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    assert not missing, f"command help without a Vietnamese text (messages/vi.po): {missing}"
