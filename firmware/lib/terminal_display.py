# What an attendance terminal's OLED shows (128x64, vnfont line cells of 14 rows: 4 lines).
#
#   tap:   name (up to 2 lines) / status (bold when it fits one line, else wrapped into the lines
#          the name left free; drawn inverted - light band, dark text - for a refusal) / a rule /
#          local time "07:58 · 24/11" centred on the bottom line
#   idle:  site (up to 2 lines) / time in bold / prompt "Mời chạm thẻ"
#
# The texts come from the caller (policy.TEXT_VI, "Đã chấm công", ...). Work per call is bounded:
# wrap() looks at a bounded prefix of each text and at most 4 lines of 21 characters are drawn.
# With no display (display.present False) nothing is drawn.
import localtime
import vnfont

W = 128
H = 64
LH = vnfont.LINE_H
TEXT_LINES = 3  # lines above the time line
TIME_Y = H - LH  # 50: the time has no marks above, so its cell may start low
RULE_Y = TIME_Y - 4
PROMPT = "Mời chạm thẻ"


def _centre(fb, text, y, color=1, bold=False):
    w = vnfont.text_width(text, bold) - 1  # the last column is the inter-character gap
    x = (W - w) // 2
    vnfont.draw(fb, text, x if x > 0 else 0, y, color, bold)


def _granted(decision):
    g = getattr(decision, "granted", decision)
    return bool(g)


def clock_text(local_seconds):
    """ "HH:MM · DD/MM" of local Unix seconds (already offset to local time)."""
    day = local_seconds // localtime.DAY
    sod = local_seconds - day * localtime.DAY
    _, m, d = localtime.civil_from_days(day)
    return "%02d:%02d \u00b7 %02d/%02d" % (sod // 3600, sod // 60 % 60, d, m)


def show_tap(display, name, decision, status_text, time_text):
    """Result of a tap. decision: a policy.Decision (its .granted) or a bool. Returns True when
    the screen was updated."""
    if not display.present:
        return False
    fb = display.fb
    fb.fill(0)
    names = vnfont.wrap(name or "", W, 2)
    ok = _granted(decision)
    status = status_text or ""
    if vnfont.text_width(status, True) <= W:
        lines = [status]
        bold = True
    else:
        lines = vnfont.wrap(status, W, TEXT_LINES - len(names))
        bold = False
    # centre the block of name + status lines in the space above the rule
    y = (TEXT_LINES - len(names) - len(lines)) * LH // 2
    for line in names:
        _centre(fb, line, y)
        y += LH
    if not ok:
        fb.fill_rect(0, y, W, LH * len(lines), 1)
    for line in lines:
        _centre(fb, line, y, 1 if ok else 0, bold)
        y += LH
    fb.hline(0, RULE_Y, W, 1)
    _centre(fb, time_text or "", TIME_Y)
    return display.show()


def show_decision(display, info):
    """A tap as the terminal reports it: info = (name, decision, reason, local Unix seconds)."""
    import messages_vi

    name, decision, reason, local = info
    return show_tap(display, name or "", decision in ("grant", "punch"),
                    messages_vi.text(reason, decision), clock_text(local))


def show_idle(display, time_text, site, prompt=PROMPT):
    """Waiting for a card: site name, the time in bold, a prompt."""
    if not display.present:
        return False
    fb = display.fb
    fb.fill(0)
    y = 0
    lines = vnfont.wrap(site or "", W, 2)
    if len(lines) < 2:
        y = LH // 2
    for line in lines:
        _centre(fb, line, y)
        y += LH
    _centre(fb, time_text or "", 2 * LH, 1, True)
    fb.hline(0, RULE_Y, W, 1)
    _centre(fb, vnfont.wrap(prompt, W, 1)[0] if prompt else "", TIME_Y)
    return display.show()
