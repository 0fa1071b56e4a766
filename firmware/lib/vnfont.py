# Vietnamese text for the 128x64 OLED: a 5x8 bitmap font of our own (ASCII 0x20-0x7E plus a few
# extras) and composed Vietnamese letters (base glyph + diacritic marks drawn as pixel patterns).
# MicroPython's framebuf.text() is ASCII-only and there is no unicodedata on the device, so every
# precomposed letter Vietnamese uses is decomposed here from a compact table.
#
# Line cell (LINE_H = 14 rows, fixed advance ADV = 6 columns: 5 ink + 1 gap):
#   rows 0-4   mark zone above capitals: a second (tone) mark over a circumflex/breve at rows 0-1,
#              a single mark (or the circumflex/breve) at rows 2-3, row 4 empty (gap)
#   rows 5-11  capital / ascender height (glyph rows 0-6); lower case x-height is rows 7-11, and its
#              marks sit two rows lower than on capitals (same gap to the letter)
#   row 12     descender (glyph row 7)
#   row 13     dot below (nặng), one empty row under the baseline
# 64 px = 4 lines of 14 with 8 rows spare; 128 px = 21 characters.
#
# Font data: one bytes object, 5 bytes per glyph, one byte per column, bit 0 = top row (the
# framebuf MONO_VLSB layout). Glyph index: ASCII code - 32 for 0x20-0x7E, then the extras below.
# Marks: 2 bytes each (row 0, row 1), bit n = column n.
# Rendering uses only fb.pixel(x, y, c) on set pixels (transparent background); callers clear.
# Nothing here raises on odd input: unknown code points draw a small box, control characters
# draw nothing, stray combining marks attach to the previous letter (NFD input renders like NFC).

LINE_H = 14
ADV = 6
ABOVE = 5  # glyph row 0 is this many rows below the top of the line cell

_FONT = (
    b"\x00\x00\x00\x00\x00\x00\x00\x5f\x00\x00\x00\x03\x00\x03\x00\x14\x7f\x14\x7f\x14"  #   ! " #
    b"\x24\x2a\x7f\x2a\x12\x23\x13\x08\x64\x62\x36\x49\x55\x22\x50\x00\x04\x03\x00\x00"  # $ % & '
    b"\x00\x1c\x22\x41\x00\x00\x41\x22\x1c\x00\x14\x08\x3e\x08\x14\x08\x08\x3e\x08\x08"  # ( ) * +
    b"\x00\xa0\x60\x00\x00\x00\x08\x08\x08\x00\x00\x60\x60\x00\x00\x20\x10\x08\x04\x02"  # , - . /
    b"\x3e\x51\x49\x45\x3e\x00\x42\x7f\x40\x00\x42\x61\x51\x49\x46\x21\x41\x45\x4b\x31"  # 0 1 2 3
    b"\x18\x14\x12\x7f\x10\x27\x45\x45\x45\x39\x3c\x4a\x49\x49\x30\x01\x71\x09\x05\x03"  # 4 5 6 7
    b"\x36\x49\x49\x49\x36\x06\x49\x49\x29\x1e\x00\x36\x36\x00\x00\x00\x56\x36\x00\x00"  # 8 9 : ;
    b"\x08\x14\x22\x41\x00\x14\x14\x14\x14\x14\x00\x41\x22\x14\x08\x02\x01\x51\x09\x06"  # < = > ?
    b"\x32\x49\x79\x41\x3e\x7e\x09\x09\x09\x7e\x7f\x49\x49\x49\x36\x3e\x41\x41\x41\x22"  # @ A B C
    b"\x7f\x41\x41\x22\x1c\x7f\x49\x49\x49\x41\x7f\x09\x09\x09\x01\x3e\x41\x49\x49\x7a"  # D E F G
    b"\x7f\x08\x08\x08\x7f\x00\x41\x7f\x41\x00\x20\x40\x41\x3f\x01\x7f\x08\x14\x22\x41"  # H I J K
    b"\x7f\x40\x40\x40\x40\x7f\x02\x0c\x02\x7f\x7f\x04\x08\x10\x7f\x3e\x41\x41\x41\x3e"  # L M N O
    b"\x7f\x09\x09\x09\x06\x3e\x41\x51\x21\x5e\x7f\x09\x19\x29\x46\x46\x49\x49\x49\x31"  # P Q R S
    b"\x01\x01\x7f\x01\x01\x3f\x40\x40\x40\x3f\x1f\x20\x40\x20\x1f\x3f\x40\x38\x40\x3f"  # T U V W
    b"\x63\x14\x08\x14\x63\x03\x04\x78\x04\x03\x61\x51\x49\x45\x43\x00\x7f\x41\x41\x00"  # X Y Z [
    b"\x02\x04\x08\x10\x20\x00\x41\x41\x7f\x00\x04\x02\x01\x02\x04\x80\x80\x80\x80\x80"  # \ ] ^ _
    b"\x00\x01\x02\x00\x00\x20\x54\x54\x54\x78\x7f\x44\x44\x44\x38\x38\x44\x44\x44\x20"  # ` a b c
    b"\x38\x44\x44\x44\x7f\x38\x54\x54\x54\x18\x08\x7e\x09\x01\x02\x18\xa4\xa4\xa4\x7c"  # d e f g
    b"\x7f\x08\x04\x04\x78\x00\x44\x7d\x40\x00\x40\x80\x84\x7d\x00\x7f\x10\x28\x44\x00"  # h i j k
    b"\x00\x41\x7f\x40\x00\x7c\x04\x18\x04\x78\x7c\x08\x04\x04\x78\x38\x44\x44\x44\x38"  # l m n o
    b"\xfc\x24\x24\x24\x18\x18\x24\x24\x24\xfc\x7c\x08\x04\x04\x08\x48\x54\x54\x54\x24"  # p q r s
    b"\x04\x3f\x44\x44\x20\x3c\x40\x40\x20\x7c\x1c\x20\x40\x20\x1c\x3c\x40\x30\x40\x3c"  # t u v w
    b"\x44\x28\x10\x28\x44\x1c\xa0\xa0\xa0\x7c\x44\x64\x54\x4c\x44\x00\x08\x36\x41\x00"  # x y z {
    b"\x00\x00\x7f\x00\x00\x00\x41\x36\x08\x00\x08\x04\x08\x10\x08\x30\x4a\x4a\x7f\x02"  # | } ~ đ
    b"\x08\x7f\x49\x41\x3e\x00\x44\x7c\x40\x00\x00\x00\x08\x00\x00\x08\x08\x08\x08\x08"  # Đ ı · –
    b"\x40\x00\x40\x00\x40\x7f\x41\x41\x41\x7f"  # … □
)

_DSTROKE = 95  # đ
_DSTROKE_CAP = 96  # Đ
_DOTLESS_I = 97  # ı
_MIDDOT = 98  # ·
_ENDASH = 99  # –
_ELLIPSIS = 100  # …
_BOX = 101  # unknown code point

# Tones: 1 sắc (acute), 2 huyền (grave), 3 hỏi (hook above), 4 ngã (tilde), 5 nặng (dot below).
# Modifiers: 1 circumflex (â ê ô), 2 breve (ă), 3 horn (ơ ư).
_TONES = ".sfrxj"
_MODS = ".^(+"
# Mark bitmaps, indexed tone * 2 (tones 1-4; the dot below is drawn apart) and 10 + mod * 2 (1-2).
_MARKS = bytes((
    0, 0,
    0x08, 0x04,  # acute     ...#. / ..#..
    0x02, 0x04,  # grave     .#... / ..#..
    0x0E, 0x08,  # hook      .###. / ...#.
    0x16, 0x09,  # tilde     .##.# / #..#.
    0, 0,
    0x04, 0x0A,  # circumflex ..#.. / .#.#.
    0x11, 0x0E,  # breve      #...# / .###.
))

# U+1EA0-U+1EF9, two code points (capital, small) per entry: base, modifier, tone.
_VN_EXT = (
    "A.jA.rA^sA^fA^rA^xA^jA(sA(fA(rA(xA(jE.jE.rE.xE^sE^fE^rE^xE^jI.rI.j"
    "O.jO.rO^sO^fO^rO^xO^jO+sO+fO+rO+xO+jU.jU.rU+sU+fU+rU+xU+jY.fY.jY.rY.x"
)
# U+00C0-U+00DD (capitals; small letters are 0x20 higher); "-" = not a Vietnamese letter.
_LATIN1 = (
    "A.fA.sA^.A.x------------E.fE.sE^.---I.fI.sI^."
    "---------O.fO.sO^.O.x---------U.fU.sU^.---Y.s"
)
# Other code points: (code point, base, modifier, tone) packed in a string, small letters included.
_OTHER = "\u0102A(.\u0103a(.\u0128I.x\u0129i.x\u0168U.x\u0169u.x\u01a0O+.\u01a1o+.\u01afU+.\u01b0u+."
# Combining marks (NFD input): code point -> modifier / tone.
_COMB_TONE = {0x300: 2, 0x301: 1, 0x303: 4, 0x309: 3, 0x323: 5, 0x340: 2, 0x341: 1}
_COMB_MOD = {0x302: 1, 0x306: 2, 0x31B: 3}
# Look-alike punctuation mapped onto glyphs we have.
_ALIAS = {0xA0: 0, 0xB7: _MIDDOT, 0x2013: _ENDASH, 0x2014: _ENDASH, 0x2212: 13, 0x2018: 7,
          0x2019: 7, 0x201C: 2, 0x201D: 2, 0x2026: _ELLIPSIS, 0x110: _DSTROKE_CAP,
          0x111: _DSTROKE, 0xD0: _DSTROKE_CAP, 0x2022: _MIDDOT, 0x131: _DOTLESS_I}


def _from_entry(table, i, small):
    b = table[i]
    if b == "-":
        return None
    g = ord(b) - 32
    if small:
        g += 32
    return (g, _MODS.find(table[i + 1]), _TONES.find(table[i + 2]))


def decompose(ch):
    """(glyph index, modifier, tone) of one character, or None for a combining mark / control
    character (nothing to draw on its own). Unknown characters give the box glyph."""
    c = ord(ch)
    if 0x20 <= c < 0x7F:
        return (c - 32, 0, 0)
    if c < 0x20 or c == 0x7F:
        return None
    if 0x1EA0 <= c <= 0x1EF9:
        return _from_entry(_VN_EXT, ((c - 0x1EA0) >> 1) * 3, c & 1)
    if 0xC0 <= c <= 0xFD and c != 0xD0 and (c & 0xDF) <= 0xDD:
        r = _from_entry(_LATIN1, ((c & 0xDF) - 0xC0) * 3, c & 0x20)
        return r if r is not None else (_BOX, 0, 0)
    a = _ALIAS.get(c)
    if a is not None:
        return (a, 0, 0)
    if c in _COMB_TONE or c in _COMB_MOD:
        return None
    i = _OTHER.find(ch)
    if i >= 0 and i % 4 == 0:
        return (ord(_OTHER[i + 1]) - 32, _MODS.find(_OTHER[i + 2]), _TONES.find(_OTHER[i + 3]))
    if 0x300 <= c < 0x370:
        return None  # other combining marks: ignored
    return (_BOX, 0, 0)


def _advance(ch, bold):
    return 0 if decompose(ch) is None else (ADV + 1 if bold else ADV)


def text_width(s, bold=False):
    """Width in pixels, counting the one-column gap after every character (so n characters take
    n * ADV, or n * (ADV + 1) in bold)."""
    w = 0
    for ch in s:
        w += _advance(ch, bold)
    return w


def _top_row(g):
    bits = 0
    base = g * 5
    for i in range(5):
        bits |= _FONT[base + i]
    r = 0
    while r < 7 and not (bits >> r) & 1:
        r += 1
    return r


def _mark(fb, m, x, y, color, bold):
    for r in range(2):
        bits = _MARKS[m + r]
        col = 0
        while bits:
            if bits & 1:
                fb.pixel(x + col, y + r, color)
                if bold:
                    fb.pixel(x + col + 1, y + r, color)
            bits >>= 1
            col += 1


def draw_glyph(fb, g, mod, tone, x, y, color=1, bold=False):
    """Draw glyph index g with its marks into the line cell whose top-left corner is (x, y)."""
    if g == 73 and (mod or 0 < tone < 5):  # i under a mark above loses its dot
        g = _DOTLESS_I
    gy = y + ABOVE
    base = g * 5
    for col in range(5):
        bits = _FONT[base + col]
        r = 0
        while bits:
            if bits & 1:
                fb.pixel(x + col, gy + r, color)
                if bold:
                    fb.pixel(x + col + 1, gy + r, color)
            bits >>= 1
            r += 1
    if not (mod or tone):
        return
    top = gy + _top_row(g)
    if mod == 3:  # horn: a tick off the right shoulder of o / u
        fb.pixel(x + 5, top - 1, color)
        fb.pixel(x + 5, top, color)
        if bold:
            fb.pixel(x + 6, top - 1, color)
            fb.pixel(x + 6, top, color)
    elif mod:
        _mark(fb, 10 + mod * 2, x, top - 3, color, bold)
    if 0 < tone < 5:
        if mod == 1 or mod == 2:
            _mark(fb, tone * 2, x + 1, top - 5, color, bold)
        else:
            _mark(fb, tone * 2, x, top - 3, color, bold)
    elif tone == 5:
        col = 4 if (_FONT[base + 2] & 0x80) else 2  # beside a descender (ỵ), else centred
        fb.pixel(x + col, gy + 8, color)
        if bold:
            fb.pixel(x + col + 1, gy + 8, color)


def draw(fb, s, x, y, color=1, bold=False):
    """Draw s with the top of its line cell at row y; returns the x after the text. Anything
    outside the frame buffer is clipped by fb.pixel."""
    g = -1
    mod = tone = 0
    for ch in s:
        d = decompose(ch)
        if d is None:
            c = ord(ch)
            if g >= 0:
                t = _COMB_TONE.get(c, 0)
                if t and not tone:
                    tone = t
                m = _COMB_MOD.get(c, 0)
                if m and not mod:
                    mod = m
            continue
        if g >= 0:
            draw_glyph(fb, g, mod, tone, x, y, color, bold)
            x += ADV + 1 if bold else ADV
        g, mod, tone = d
    if g >= 0:
        draw_glyph(fb, g, mod, tone, x, y, color, bold)
        x += ADV + 1 if bold else ADV
    return x


def _fit(s, width_px, bold):
    """How many characters of s fit in width_px (at least one letter, with its combining marks)."""
    w = 0
    n = 0
    for ch in s:
        a = _advance(ch, bold)
        if a and n and w + a > width_px:
            return n
        w += a
        n += 1
    return n


MAX_TEXT = 200  # characters looked at by wrap()
MAX_LINES = 6


def wrap(s, width_px, max_lines=3, bold=False):
    """Word-wrap s into at most max_lines lines of at most width_px pixels. Words longer than a
    line are split; text that does not fit ends the last line with an ellipsis. Bounded: looks at
    the first MAX_TEXT characters and never returns more than MAX_LINES lines."""
    max_lines = max(1, min(max_lines, MAX_LINES))
    lines = []  # type: list[str]
    line = ""
    more = len(s) > MAX_TEXT
    for word in s[:MAX_TEXT].split():
        if len(lines) >= max_lines:
            more = True
            break
        cand = line + " " + word if line else word
        if text_width(cand, bold) <= width_px:
            line = cand
            continue
        if line:
            lines.append(line)
            line = ""
        while len(lines) < max_lines and text_width(word, bold) > width_px:
            n = _fit(word, width_px, bold)
            lines.append(word[:n])
            word = word[n:]
        if len(lines) >= max_lines:
            more = True
            break
        line = word
    if line:
        if len(lines) < max_lines:
            lines.append(line)
        else:
            more = True
    if more and lines:
        last = lines[-1]
        ell = "\u2026"
        while last and text_width(last + ell, bold) > width_px:
            last = last[:-1]
        lines[-1] = last.rstrip() + ell
    return lines
