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


def test_no_message_is_marked_inside_an_f_string() -> None:
    """Babel's extractor does not look inside f-strings (Python < 3.12): a ``_("…")`` there would
    never reach the catalog and stay English without any test noticing."""
    import ast

    found = []
    for package in ("cbcc", "gateway", "provisioning", "messages", "simulators"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.JoinedStr):
                    for sub in ast.walk(node):
                        if isinstance(sub, ast.Call) and getattr(sub.func, "id", "") in ("_", "N_"):
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"marked inside an f-string (move it to a variable): {found}"


def test_vietnamese_texts_are_nfc() -> None:
    """Composed diacritics (NFC), as typed on a Vietnamese keyboard and compared by the console."""
    import unicodedata

    odd = [k for k, v in _catalog().items() if unicodedata.normalize("NFC", v) != v]
    assert not odd, odd


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


def test_every_command_summary_and_option_help_is_in_the_catalog() -> None:
    """What ``cbcc … --help`` shows, walked over the whole command tree: each command's first help
    paragraph and each option's and argument's help has a Vietnamese text."""
    import inspect

    import typer

    from cbcc.app import app

    cat = _catalog()
    translated = {k for k, v in cat.items() if v} | set(cat.values())
    missing: list[str] = []
    seen = 0

    def walk(cmd: object, path: str) -> None:
        nonlocal seen
        text = getattr(cmd, "help", None)
        if text:
            first = inspect.cleandoc(text).split("\n\n")[0]
            seen += 1
            if first not in translated:
                missing.append(f"{path}: {first}")
        for param in getattr(cmd, "params", []):
            if getattr(param, "help", None):
                seen += 1
                if param.help not in translated:
                    missing.append(f"{path} {param.name}: {param.help}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "cbcc")
    assert seen > 300  # the walk reached the options, not only the groups
    assert not missing, f"help without a Vietnamese text (messages/vi.po): {missing}"


def test_the_extractor_finds_what_help_shows() -> None:
    """messages/extract.py yields option help (literal, implicitly joined, through an alias) and
    command summaries, so ``pybabel extract`` keeps the catalog in step with the code."""
    from messages.extract import cli_texts

    source = '''
import typer
app = typer.Typer(help="The group.\\n\\nMore.")
Shared = Annotated[str, typer.Option("--x", help="Shared " "option.")]

@app.command("a")
def a(y: Annotated[int, typer.Option(help="Why.")] = 0, x: Shared = "") -> None:
    """Do a.

    Details."""

def b(x: Shared) -> None:
    """Registered elsewhere."""

def helper() -> None:
    """Not a command."""
'''
    found = {(text, comment) for _line, text, comment in cli_texts(source)}
    assert found == {
        ("The group.", "command help"),
        ("Shared option.", "option help"),
        ("Why.", "option help"),
        ("Do a.", "command help"),
        ("Registered elsewhere.", "command help"),
    }


CBCC = str(Path(sys.executable).parent / "cbcc")


def _cbcc(lang: str, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBCC_", "LC_"))}
    env.update(CBCC_LANG=lang, LANG="C.UTF-8", COLUMNS="200", CBCC_HOME=str(home or "/nonexistent/cbcc"))
    return subprocess.run([CBCC, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_help_in_vietnamese_by_default_and_english_with_cbcc_lang_en() -> None:
    vi = _cbcc("", "keys", "new-issuer", "--help")
    assert vi.returncode == 0, vi.stderr
    assert "Cách dùng: cbcc keys new-issuer" in vi.stdout and "Tùy chọn" in vi.stdout
    assert "Số thẻ LO:HI (không gồm HI)." in vi.stdout and "[bắt buộc]" in vi.stdout
    assert "Tạo khóa cơ quan cấp thẻ" in vi.stdout
    en = _cbcc("en", "keys", "new-issuer", "--help")
    assert en.returncode == 0, en.stderr
    assert "Usage: cbcc keys new-issuer" in en.stdout and "Options" in en.stdout
    assert "LO:HI card serials (HI exclusive)." in en.stdout and "[required]" in en.stdout
    assert "Create an issuer key" in en.stdout
    assert not any(w in en.stdout for w in ("Tùy chọn", "Cách dùng", "khóa"))


def test_usage_errors_in_both_languages() -> None:
    for lang, missing, extra in (
        ("vi", "Thiếu tùy chọn '--out'.", "Không có tùy chọn --bogus"),
        ("en", "Missing option '--out'.", "No such option: --bogus"),
    ):
        r = _cbcc(lang, "keys", "init-root")
        assert r.returncode == 2 and missing in r.stderr, r.stderr
        r = _cbcc(lang, "keys", "init-root", "--bogus")
        assert r.returncode == 2 and extra in r.stderr, r.stderr


def test_operator_errors_in_both_languages(tmp_path: Path) -> None:
    """A refused input reaches the operator in their language: one line, no traceback."""
    for lang, text in (
        ("vi", "lỗi: vai trò phải là một trong admin, facility, hr, auditor"),
        ("en", "error: role must be one of admin, facility, hr, auditor"),
    ):
        r = _cbcc(lang, "gateway", "token", "create", "--name", "x", "--role", "boss", home=tmp_path)
        assert r.returncode == 1 and r.stderr.strip() == text, r.stderr


@pytest.mark.parametrize(
    ("english", "vietnamese"),
    [
        ("Missing option '--out'.", "Thiếu tùy chọn '--out'."),
        ("Missing argument 'FILE'.", "Thiếu tham số 'FILE'."),
        ("No such option: --bogus (Possible options: --out)",
         "Không có tùy chọn --bogus (các tùy chọn có thể dùng: --out)"),
        ("No such command 'punches'. Did you mean 'import-punches'?",
         "Không có lệnh 'punches'. Có phải ý bạn là 'import-punches'?"),
        ("Got unexpected extra argument(s) (b)", "Thừa tham số không mong đợi (b)"),
        ("Option '--out' requires an argument.", "Tùy chọn '--out' cần một giá trị."),
        ("Invalid value for '--alg': 'XX' is not one of 'RS256', 'ES256'.",
         "Giá trị không hợp lệ cho '--alg': 'XX' is not one of 'RS256', 'ES256'."),
        ("Something Typer says that we do not know", "Something Typer says that we do not know"),
    ],
)  # fmt: skip
def test_usage_errors_are_rewritten_from_the_catalog(english: str, vietnamese: str) -> None:
    from cbcc.clilang import translate_usage_error

    try:
        messages.set_lang("vi")
        assert translate_usage_error(english) == vietnamese
        messages.set_lang("en")
        assert translate_usage_error(english) == english  # the ids are Typer's own words
    finally:
        messages.set_lang(None)
