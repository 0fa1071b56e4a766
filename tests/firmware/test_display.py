"""The attendance terminal's OLED: the SSD1306 driver against a controller model on the simulated
I2C bus, the Vietnamese bitmap font (every letter of the alphabet in both cases with every tone,
checked against CPython's unicodedata), the tap / idle layouts, and the same screen bytes under the
MicroPython unix port."""

from __future__ import annotations

import json
import unicodedata

import policy
import pytest
import ssd1306
import terminal_display
import vnfont
from hypothesis import given, settings
from hypothesis import strategies as st
from sim.i2c_bus import SimI2C
from sim.ssd1306_model import SSD1306Model
from support.micropython_runner import run_snippet

TONES = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")  # ngang, sắc, huyền, hỏi, ngã, nặng
VOWELS = "aăâeêioôơuưy"
CONSONANTS = "bcdđghklmnpqrstvx"
NAMES = ("Nguyễn Thị Hương", "Trần Văn Đức", "Lê Minh Tuấn")
MESSAGES = ("Đã chấm công", "Mời vào", "Thẻ đã bị thu hồi")


def vietnamese_letters() -> list[str]:
    """Every letter of the Vietnamese alphabet, both cases, vowels with each of the 6 tones, built
    by CPython's Unicode normalisation (so the font's own table is checked against it)."""
    out = []
    for v in VOWELS:
        for case in (v, v.upper()):
            for t in TONES:
                out.append(unicodedata.normalize("NFC", case + t))
    for c in CONSONANTS:
        out += [c, c.upper()]
    return out


LETTERS = vietnamese_letters()


def cell(s: str, bold: bool = False) -> bytes:
    """s rendered alone into a 16x16 buffer at (2, 0)."""
    buf = bytearray(32)
    vnfont.draw(ssd1306.MonoVlsb(buf, 16, 16), s, 2, 0, 1, bold)
    return bytes(buf)


def pixels(buf: bytes, w: int = 16, h: int = 16) -> set[tuple[int, int]]:
    return {(x, y) for y in range(h) for x in range(w) if buf[(y >> 3) * w + x] >> (y & 7) & 1}


# ---- font ---------------------------------------------------------------------------------------------
def test_alphabet_is_complete_and_precomposed() -> None:
    assert len(LETTERS) == 12 * 2 * 6 + 17 * 2 == 178
    assert all(len(ch) == 1 for ch in LETTERS)  # every combination has one code point in NFC
    assert len(set(LETTERS)) == len(LETTERS)


@pytest.mark.parametrize("ch", LETTERS)
def test_decomposition_table_agrees_with_unicodedata(ch: str) -> None:
    d = vnfont.decompose(ch)
    assert d is not None
    g, mod, tone = d
    nfd = unicodedata.normalize("NFD", ch)
    if ch in "đĐ":
        assert nfd == ch and (mod, tone) == (0, 0)
        return
    assert g == ord(nfd[0]) - 32  # the base letter
    marks = nfd[1:]  # canonical order: the dot below (class 220) sorts before the marks above
    mods = [i + 1 for i, c in enumerate("\u0302\u0306\u031b") if c in marks]
    tones = [i for i, t in enumerate(TONES) if t and t in marks]
    assert len(marks) == len(mods) + len(tones) <= 2
    assert mod == (mods[0] if mods else 0)
    assert tone == (tones[0] if tones else 0)


def test_every_letter_renders_to_a_distinct_non_empty_bitmap() -> None:
    seen: dict[bytes, str] = {}
    for ch in LETTERS:
        b = cell(ch)
        assert any(b), ch
        assert b not in seen, f"{ch} looks like {seen.get(b)}"
        seen[b] = ch


@pytest.mark.parametrize("bold", [False, True])
def test_precomposed_renders_like_base_plus_combining_marks(bold: bool) -> None:
    for ch in LETTERS:
        nfd = unicodedata.normalize("NFD", ch)
        assert cell(ch, bold) == cell(nfd, bold), ch
    assert cell("Nguyễn Thị Hương") == cell(unicodedata.normalize("NFD", "Nguyễn Thị Hương"))


def test_marks_are_added_to_the_unchanged_base_glyph() -> None:
    for ch in LETTERS:
        base = unicodedata.normalize("NFD", ch)[0]
        composed = pixels(cell(ch))
        if base == "i" and ch not in "iị":
            base = "ı"  # the dot of i gives way to the tone mark
        assert pixels(cell(base)) <= composed, ch
        if ch != base:
            assert pixels(cell(base)) < composed, ch


def test_marks_stay_inside_the_line_cell() -> None:
    for ch in LETTERS:
        buf = bytearray(3 * 32)
        fb = ssd1306.MonoVlsb(buf, 32, 24)
        vnfont.draw(fb, ch, 8, 4)
        for x, y in pixels(bytes(buf), 32, 24):
            assert 8 <= x < 8 + vnfont.ADV and 4 <= y < 4 + vnfont.LINE_H, (ch, x, y)


def test_tone_marks_are_told_apart_on_every_vowel() -> None:
    for v in VOWELS + VOWELS.upper():
        shapes = {cell(unicodedata.normalize("NFC", v + t)) for t in TONES}
        assert len(shapes) == 6, v


def test_ascii_printables_render_distinct_glyphs() -> None:
    seen = set()
    for c in range(0x21, 0x7F):
        b = cell(chr(c))
        assert any(b), chr(c)
        seen.add(b)
    assert len(seen) == 94
    assert not any(cell(" "))


def test_font_is_one_bytes_object() -> None:
    assert isinstance(vnfont._FONT, bytes)
    assert len(vnfont._FONT) == 5 * (95 + 7)


def test_widths() -> None:
    assert vnfont.text_width("") == 0
    assert vnfont.text_width("07:58") == 30
    for name in NAMES:
        assert vnfont.text_width(name) == 6 * len(name)
        assert vnfont.text_width(unicodedata.normalize("NFD", name)) == 6 * len(name)
        assert vnfont.text_width(name, bold=True) == 7 * len(name)
    assert vnfont.text_width("a\nb\x00") == 12  # control characters take no room
    buf = bytearray(1024)
    assert vnfont.draw(ssd1306.MonoVlsb(buf, 128, 64), "Đã chấm công", 3, 0) == 3 + 6 * 12


def test_unknown_code_points_draw_a_box_and_never_raise() -> None:
    box = cell("\u20ac")
    assert any(box)
    for ch in ("€", "中", "Ω", "ß", "Ä", "ð", "\U0001f600", "\ufffd", "Þ", "ÿ"):
        assert cell(ch) == box, ch
    # look-alikes go to real glyphs
    assert cell("Ð") == cell("Đ")  # Icelandic eth typed for Đ
    assert cell("\u2019") == cell("'")
    assert cell("\u2014") == cell("\u2013")
    # stray combining marks attach to nothing / the previous letter
    assert cell("\u0301") == cell("")
    assert cell("\u0301\u0301a") == cell("a")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=9))
def test_any_text_is_safe(s: str, width: int, max_lines: int) -> None:
    buf = bytearray(1024)
    fb = ssd1306.MonoVlsb(buf, 128, 64)
    vnfont.draw(fb, s, -7, -3)
    vnfont.draw(fb, s, 120, 60, 0, True)
    lines = vnfont.wrap(s, width, max_lines)
    assert len(lines) <= min(max_lines, vnfont.MAX_LINES)
    for line in lines:
        # a single character is never split, even if it is wider than the box
        assert vnfont.text_width(line) <= max(width, vnfont.ADV + vnfont.text_width("…"))


# ---- wrap ---------------------------------------------------------------------------------------------
def test_wrap_on_words() -> None:
    assert vnfont.wrap("Nguyễn Thị Hương", 128) == ["Nguyễn Thị Hương"]
    assert vnfont.wrap("Nguyễn Thị Hương", 60) == ["Nguyễn Thị", "Hương"]
    assert vnfont.wrap("  Trần   Văn  Đức ", 48) == ["Trần Văn", "Đức"]
    assert vnfont.wrap("", 128) == []


def test_wrap_truncates_with_an_ellipsis() -> None:
    long = "Công Tôn Nữ Thị Hồng Nhung Ngọc Bảo Châu Phương"
    lines = vnfont.wrap(long, 128, 2)
    assert lines == ["Công Tôn Nữ Thị Hồng", "Nhung Ngọc Bảo Châu…"]
    assert all(vnfont.text_width(line) <= 128 for line in lines)


def test_wrap_splits_an_overlong_word_without_detaching_marks() -> None:
    word = unicodedata.normalize("NFD", "Nguyễn" * 5)
    lines = vnfont.wrap(word, 36, 9)
    assert "".join(lines) == word
    for line in lines:
        assert unicodedata.combining(line[0]) == 0
        assert vnfont.text_width(line) <= 36


# ---- driver against the controller model -----------------------------------------------------------
def rig(present: bool = True) -> tuple[ssd1306.SSD1306, SSD1306Model, SimI2C]:
    bus = SimI2C()
    model = SSD1306Model()
    if present:
        bus.add(ssd1306.ADDR, model)
    return ssd1306.SSD1306(bus), model, bus


def test_init_sequence_is_accepted() -> None:
    d, m, _ = rig()
    assert d.present and m.unknown == []
    assert m.commands[0] == (0xAE,) and m.commands[-1][0] == 0x22
    assert (0xAF,) in m.commands and m.visible()
    assert (m.mux, m.offset, m.start_line, m.mem_mode, m.com_pins) == (63, 0, 0, 0, 0x12)
    assert m.seg_remap and m.com_scan_dec and not m.inverted and not m.entire_on
    assert (m.contrast, m.precharge, m.vcomh, m.clock) == (0xCF, 0xF1, 0x40, 0x80)
    assert m.ram == bytearray(1024)  # init clears the glass


def test_a_drawn_frame_lands_in_gddram() -> None:
    d, m, _ = rig()
    m.ram[:] = b"\x55" * 1024
    d.fb.fill(0)
    d.fb.pixel(0, 0, 1)
    d.fb.pixel(127, 63, 1)
    d.fb.hline(10, 20, 30, 1)
    vnfont.draw(d.fb, "Đức", 40, 30)
    assert d.show()
    assert m.ram == d.buf
    assert m.pixel(0, 0) and m.pixel(127, 63) and m.pixel(10, 20) and not m.pixel(9, 20)
    assert m.to_ascii(0, 0, 3, 2) == "#..\n..."
    # a second frame lands in the same place: the address window is re-sent each time
    d.fb.fill(0)
    d.show()
    assert m.ram == bytearray(1024) and m.data_bytes == 3 * 1024


def test_model_argument_bytes_may_arrive_in_later_writes() -> None:
    m = SSD1306Model()
    m.write(0x00, b"\x81")
    m.write(0x00, b"\x10\xaf")
    assert m.contrast == 0x10 and m.display_on


def test_helpers() -> None:
    d, m, _ = rig()
    d.contrast(300)
    assert m.contrast == 255
    d.invert(True)
    assert m.inverted
    d.rotate(True)
    assert not m.seg_remap and not m.com_scan_dec
    d.poweroff()
    assert not m.display_on and not d.on and m.read(0, 1) == b"\x40"
    d.poweron()
    assert m.display_on


def test_missing_display_is_a_no_op() -> None:
    d, _, _ = rig(present=False)
    assert not d.present and d.errors == 1
    assert not d.show() and not d.clear()
    d.contrast(10)
    d.poweroff()
    assert not terminal_display.show_tap(d, "Trần Văn Đức", True, "Mời vào", "07:58 · 24/11")
    assert not terminal_display.show_idle(d, "07:58", "Sở Nội vụ")
    assert d.errors == 1  # absent: the bus is not even tried again


def test_display_unplugged_and_plugged_back() -> None:
    d, m, bus = rig()
    del bus.devices[ssd1306.ADDR]
    assert not terminal_display.show_tap(d, "Lê Minh Tuấn", True, "Đã chấm công", "08:00 · 24/11")
    assert not d.present and d.errors == 1
    bus.add(ssd1306.ADDR, m)
    assert d.init()
    assert terminal_display.show_tap(d, "Lê Minh Tuấn", True, "Đã chấm công", "08:00 · 24/11")
    assert any(m.ram)


# ---- layouts ------------------------------------------------------------------------------------------
def screen(name: str, granted: bool, status: str, time_text: str = "07:58 · 24/11") -> SSD1306Model:
    d, m, _ = rig()
    assert terminal_display.show_tap(d, name, granted, status, time_text)
    return m


def standalone(text: str, bold: bool = False) -> set[tuple[int, int]]:
    """Pixels of text drawn centred alone, relative to its own cell."""
    buf = bytearray(1024)
    fb = ssd1306.MonoVlsb(buf, 128, 64)
    terminal_display._centre(fb, text, 0, 1, bold)
    return pixels(bytes(buf), 128, 64)


def region(m: SSD1306Model, y0: int, y1: int) -> set[tuple[int, int]]:
    return {(x, y - y0) for y in range(y0, y1) for x in range(128) if m.pixel(x, y)}


def test_tap_screen_layout() -> None:
    m = screen("Nguyễn Thị Hương", True, "Đã chấm công")
    lh = vnfont.LINE_H
    top = lh // 2  # two text lines, centred in the three above the rule
    assert region(m, top, top + lh) == standalone("Nguyễn Thị Hương")
    assert region(m, top + lh, top + 2 * lh) == standalone("Đã chấm công", bold=True)
    assert region(m, terminal_display.TIME_Y, 64) == standalone("07:58 · 24/11")
    assert m.to_ascii(0, terminal_display.RULE_Y, 128, terminal_display.RULE_Y + 1) == "#" * 128
    assert not region(m, 0, top) and not region(m, top + 2 * lh, terminal_display.RULE_Y)


@pytest.mark.parametrize(
    "name",
    [
        "Công Tôn Nữ Thị Hồng Nhung Ngọc Bảo Châu Phương",
        "Tôn Thất Nguyễn Hoàng Phước Lộc",
        "Nguyễn Thị Hương",
        "Trần Văn Đức",
        "Lê Minh Tuấn",
        "Thượng Quan Uyển Nhi Hoàng Thị Kim Ngân",
        "Nguyễnnnnnnnnnnnnnnnnnnnnnnnnnn",
        "",
    ],
)
@pytest.mark.parametrize("reason", [*policy.REASONS, "__done__"])
def test_long_names_and_every_reason_keep_out_of_the_time_line(name: str, reason: str) -> None:
    granted = reason in ("granted", "__done__")
    status = "Đã chấm công" if reason == "__done__" else policy.text_vi(reason)
    m = screen(name, granted, status)
    assert m.to_ascii(0, terminal_display.RULE_Y, 128, terminal_display.RULE_Y + 1) == "#" * 128
    assert not region(m, terminal_display.RULE_Y - 2, terminal_display.RULE_Y)
    assert not region(m, terminal_display.RULE_Y + 1, terminal_display.TIME_Y)
    assert region(m, terminal_display.TIME_Y, 64) == standalone("07:58 · 24/11")
    names = vnfont.wrap(name, 128, 2)
    assert len(names) <= 2
    if not granted:  # a refusal is shown inverted: its band has lit rows
        full = "#" * 128
        assert any(m.to_ascii(0, y, 128, y + 1) == full for y in range(64) if y != terminal_display.RULE_Y)


def test_idle_screen() -> None:
    d, m, _ = rig()
    assert terminal_display.show_idle(d, "07:58 · 24/11", "UBND phường Bến Nghé")
    assert region(m, 2 * vnfont.LINE_H, 3 * vnfont.LINE_H) == standalone("07:58 · 24/11", bold=True)
    assert region(m, terminal_display.TIME_Y, 64) == standalone("Mời chạm thẻ")


def test_clock_text() -> None:
    # 2025-11-24 07:58:30 local
    t = 1763971110
    assert terminal_display.clock_text(t) == "07:58 · 24/11"
    assert terminal_display.clock_text(0) == "00:00 · 01/01"


# ---- MicroPython ------------------------------------------------------------------------------------
SNIPPET = """
import json, ssd1306, terminal_display, vnfont
from sim.i2c_bus import SimI2C
from sim.ssd1306_model import SSD1306Model
bus = SimI2C(); m = SSD1306Model(); bus.add(0x3C, m); d = ssd1306.SSD1306(bus)
out = {"present": d.present, "unknown": len(m.unknown)}
terminal_display.show_tap(d, "Nguyễn Thị Hương", True, "Đã chấm công", "07:58 · 24/11")
out["tap"] = bytes(m.ram).hex()
terminal_display.show_tap(d, "Công Tôn Nữ Thị Hồng Nhung Ngọc Bảo Châu Phương", False,
    "Vi phạm chống quay vòng thẻ (chưa ra đã vào lại)", "17:31 · 01/12")
out["deny"] = bytes(m.ram).hex()
cells = []
for ch in LETTERS:
    d.fb.fill(0)
    vnfont.draw(d.fb, ch, 0, 0)
    cells.append(bytes(d.buf[:16]).hex() + bytes(d.buf[128:144]).hex())
out["cells"] = cells
out["wrap"] = vnfont.wrap("Công Tôn Nữ Thị Hồng Nhung Ngọc Bảo Châu Phương", 128, 2)
out["clock"] = terminal_display.clock_text(1763971110)
print(json.dumps(out))
"""


@pytest.mark.micropython
def test_same_screen_bytes_under_micropython() -> None:
    proc = run_snippet("LETTERS = " + json.dumps(LETTERS) + SNIPPET)
    assert proc.returncode == 0, proc.stderr
    mp = json.loads(proc.stdout)
    assert mp["present"] and mp["unknown"] == 0
    m = screen("Nguyễn Thị Hương", True, "Đã chấm công")
    assert mp["tap"] == bytes(m.ram).hex()
    m = screen("Công Tôn Nữ Thị Hồng Nhung Ngọc Bảo Châu Phương", False,
               "Vi phạm chống quay vòng thẻ (chưa ra đã vào lại)", "17:31 · 01/12")
    assert mp["deny"] == bytes(m.ram).hex()
    d, _, _ = rig()
    for ch, got in zip(LETTERS, mp["cells"], strict=True):
        d.fb.fill(0)
        vnfont.draw(d.fb, ch, 0, 0)
        assert got == bytes(d.buf[:16]).hex() + bytes(d.buf[128:144]).hex(), ch
    assert mp["wrap"] == vnfont.wrap("Công Tôn Nữ Thị Hồng Nhung Ngọc Bảo Châu Phương", 128, 2)
    assert mp["clock"] == "07:58 · 24/11"
