# Door policy: the offline decision for one tap, from the verified credential's claims, the card
# technology, a door of the signed reader configuration (reader_config.Door), the time, and a small
# bounded State (anti-passback, first-card unlock, re-tap memory, runtime lockdown/emergency).
# Pure logic: no I/O, no clock reads, no allocation beyond a few small objects per tap.
# Semantics and reason codes: docs/reader-config.md.
from reader_config import K_AGENCY, K_CGROUP, K_STAFF, K_UNIT, MAX_SEGMENTS, SERIAL_BYTES, digest

# ---- reason codes (journal/console) and their Vietnamese texts (display/console) ---------------
GRANTED = "granted"
FIRST_CARD_UNLOCK = "first_card_unlock"
SCHEDULED_UNLOCKED = "scheduled_unlocked"
EMERGENCY_UNLOCK = "emergency_unlock"
LOCKDOWN_OVERRIDE = "lockdown_override"
PASSBACK_SOFT = "passback_soft"
DUPLICATE = "duplicate"
LOCKED_DOWN = "locked_down"
DENY_LISTED = "deny_listed"
NO_ACCESS = "no_access"
OUT_OF_SCHEDULE = "out_of_schedule"
ANTI_CLONE_REQUIRED = "anti_clone_required"
PASSBACK = "passback"
CLOCK_UNSET = "clock_unset"
NOT_CONFIGURED = "not_configured"
INTERNAL_ERROR = "internal_error"

TEXT_VI = {
    GRANTED: "Mời vào",
    FIRST_CARD_UNLOCK: "Mời vào – cửa mở theo lịch từ thẻ đầu tiên",
    SCHEDULED_UNLOCKED: "Cửa đang mở theo lịch – đã ghi nhận",
    EMERGENCY_UNLOCK: "Mở khẩn cấp (báo cháy) – đã ghi nhận",
    LOCKDOWN_OVERRIDE: "Đang phong tỏa – thẻ được phép vượt",
    PASSBACK_SOFT: "Mời vào – vi phạm chống quay vòng thẻ đã ghi nhận",
    DUPLICATE: "Đã ghi nhận (chạm thẻ lặp lại)",
    LOCKED_DOWN: "Cửa đang phong tỏa",
    DENY_LISTED: "Thẻ bị cấm qua cửa này",
    NO_ACCESS: "Không có quyền qua cửa này",
    OUT_OF_SCHEDULE: "Ngoài khung giờ được phép",
    ANTI_CLONE_REQUIRED: "Cửa yêu cầu thẻ chống sao chép",
    PASSBACK: "Vi phạm chống quay vòng thẻ (chưa ra đã vào lại)",
    CLOCK_UNSET: "Đồng hồ chưa đặt giờ – không xét được lịch",
    NOT_CONFIGURED: "Đầu đọc chưa có cấu hình cửa",
    INTERNAL_ERROR: "Lỗi xử lý – từ chối",
}

REASONS = tuple(TEXT_VI)

# ---- effective door modes ------------------------------------------------------------------------
NORMAL = "normal"
SCHEDULED = "scheduled_unlocked"
LOCKED = "locked_down"
EMERGENCY = "emergency_unlock"

# Card technologies (card_reader) that can never prove they are not clones.
_CLONEABLE = ("classic", "ntag")

# State keeps times as seconds after 2024-01-01 so they stay small ints on 32-bit ports.
T_BASE = 1704067200
RETAP_SLOTS = 8
MAX_DOORS = 16
MAX_CARD_GROUPS = 32  # entries of the card's groups claim that are looked at

_SERIAL = 2
_STAFF = 3
_AGENCY = 5
_UNIT = 6
_GROUPS = 13


def text_vi(reason):
    return TEXT_VI.get(reason, reason)


class Decision:
    """granted: the verdict shown to the person (green/red). unlock: pulse the lock relay now (False
    when the door is already held open by its mode, and for every refusal). journal: False only for
    a duplicate tap. detail: the matching group id, or for open modes and duplicates the reason
    the tap would otherwise have had."""

    def __init__(self, granted, reason, detail=None, mode=NORMAL, unlock=False, journal=True):
        self.granted = granted
        self.reason = reason
        self.detail = detail
        self.mode = mode
        self.unlock = unlock
        self.journal = journal

    def as_tuple(self):
        return (self.granted, self.reason, self.detail)

    def __repr__(self):
        return "Decision(%s, %s, %r, mode=%s, unlock=%s, journal=%s)" % (
            self.granted, self.reason, self.detail, self.mode, self.unlock, self.journal)


class State:
    """Everything the policy remembers between taps, bounded by construction:
    anti-passback: at most `apb_capacity` cards (oldest evicted first), entries expire after the
    configuration's apb_timeout; re-tap: the last RETAP_SLOTS taps; first-card: one window id per
    door; runtime lockdown (per door or all) and emergency release."""

    def __init__(self, apb_capacity=256):
        self.emergency = False
        self.lockdown_all = False
        self.lockdown = bytearray(MAX_DOORS)
        self.first_card = [-1] * MAX_DOORS
        self.apb_capacity = apb_capacity
        self._apb = {}            # serial -> slot
        self._apb_serial = []     # slot -> serial
        self._apb_area = bytearray(apb_capacity)
        self._apb_t = []          # slot -> seconds after T_BASE
        # each: [serial, door, t, granted, reason, mode, unlock]
        self._rt = [None] * RETAP_SLOTS  # type: list[list | None]
        self._rt_next = 0
        self._lc_cfg = None       # local-day cache: config, day, day types
        self._lc_day = None
        self._lc_types = None

    # -- runtime modes (commands, the fire-alarm input) --
    def set_emergency(self, on):
        self.emergency = bool(on)

    def set_lockdown(self, on, door=None):
        """Lock down one door (its index) or, with door=None, every door. Lifting a reader-wide
        lockdown does not lift per-door ones."""
        if door is None:
            self.lockdown_all = bool(on)
        else:
            self.lockdown[door] = 1 if on else 0

    def resize(self, apb_capacity):
        """Adopt a new configuration's capacity (keeps the most recent entries)."""
        if apb_capacity == self.apb_capacity:
            return
        keep = sorted(range(len(self._apb_t)), key=lambda i: self._apb_t[i])[-apb_capacity:]
        entries = [(self._apb_serial[i], self._apb_area[i], self._apb_t[i]) for i in keep]
        self.apb_capacity = apb_capacity
        self._apb = {}
        self._apb_serial = []
        self._apb_area = bytearray(apb_capacity)
        self._apb_t = []
        for s, a, t in entries:
            self._apb_put(s, a, t)

    # -- anti-passback table --
    def _apb_get(self, serial, t, timeout):
        slot = self._apb.get(serial)
        if slot is None:
            return -1
        dt = t - self._apb_t[slot]
        if dt < 0 or dt >= timeout:
            return -1
        return self._apb_area[slot]

    def _apb_put(self, serial, area, t):
        slot = self._apb.get(serial)
        if slot is None:
            if len(self._apb_t) < self.apb_capacity:
                slot = len(self._apb_t)
                self._apb_serial.append(serial)
                self._apb_t.append(t)
            else:
                ts = self._apb_t
                slot = ts.index(min(ts))  # evict the oldest (expired ones first)
                del self._apb[self._apb_serial[slot]]
                self._apb_serial[slot] = serial
            self._apb[serial] = slot
        self._apb_area[slot] = area
        self._apb_t[slot] = t

    def apb_count(self):
        return len(self._apb_t)

    def forget(self, serial):
        """Clear a card's anti-passback position (operator reset, or a granted door never opened)."""
        slot = self._apb.get(serial)
        if slot is not None:
            self._apb_t[slot] = -(1 << 29)  # expired: evicted first, never matched

    # -- re-tap memory --
    def _retap_find(self, serial, door, t, window, mode):
        for e in self._rt:
            if e is not None and e[0] == serial and e[1] == door:
                dt = t - e[2]
                if 0 <= dt < window and (e[5] == mode or (
                        e[5] in (NORMAL, SCHEDULED) and mode in (NORMAL, SCHEDULED))):
                    return e
                return None
        return None

    def _retap_put(self, serial, door, t, d):
        e = [serial, door, t, d.granted, d.reason, d.mode, d.unlock]
        rt = self._rt
        for i in range(RETAP_SLOTS):
            x = rt[i]
            if x is not None and x[0] == serial and x[1] == door:
                rt[i] = e
                return
        rt[self._rt_next] = e
        self._rt_next = (self._rt_next + 1) % RETAP_SLOTS

    # -- a few bytes of flash --
    def dump(self):
        """Bytes for flash: modes, first-card windows, anti-passback table (not re-tap memory)."""
        out = bytearray(b"PS1")
        out.append((1 if self.emergency else 0) | (2 if self.lockdown_all else 0))
        out.extend(self.lockdown)
        for w in self.first_card:
            out.extend((w & 0xFFFFFFFF).to_bytes(4, "big"))
        n = len(self._apb_t)
        out.extend(n.to_bytes(2, "big"))
        for i in range(n):
            out.extend(self._apb_serial[i].to_bytes(7, "big"))
            out.append(self._apb_area[i])
            out.extend((self._apb_t[i] & 0xFFFFFFFF).to_bytes(4, "big"))
        return bytes(out)

    def load(self, data):
        """Restore from dump(); returns False (state unchanged) when the bytes are not a dump."""
        head = 4 + MAX_DOORS + 4 * MAX_DOORS + 2
        if not isinstance(data, (bytes, bytearray)) or len(data) < head or data[:3] != b"PS1":
            return False
        n = int.from_bytes(data[head - 2:head], "big")
        if len(data) != head + 12 * n or data[3] > 3:
            return False
        self.emergency = bool(data[3] & 1)
        self.lockdown_all = bool(data[3] & 2)
        self.lockdown = bytearray(data[4:4 + MAX_DOORS])
        pos = 4 + MAX_DOORS
        fc = []
        for _ in range(MAX_DOORS):
            fc.append(_signed32(int.from_bytes(data[pos:pos + 4], "big")))
            pos += 4
        self.first_card = fc
        self._apb = {}
        self._apb_serial = []
        self._apb_t = []
        self._apb_area = bytearray(self.apb_capacity)
        pos = head
        for _ in range(n):
            s = int.from_bytes(data[pos:pos + 7], "big")
            self._apb_put(s, data[pos + 7], _signed32(int.from_bytes(data[pos + 8:pos + 12], "big")))
            pos += 12
        return True


def _signed32(v):
    return v - (1 << 32) if v & 0x80000000 else v


# ---- calendar ------------------------------------------------------------------------------------

def _day_type(h, days):
    # Calendar day type of a local day: 7 on a public holiday or day off, the followed weekday on a
    # working (make-up) day, else the weekday (0 = Monday). h: 3 bytes per entry, ascending days.
    lo = 0
    hi = len(h) // 3
    while lo < hi:
        mid = (lo + hi) >> 1
        j = mid * 3
        d = (h[j] << 8) | h[j + 1]
        if d == days:
            k = h[j + 2]
            if k >> 4 == 3:
                return k & 15
            return 7
        if d < days:
            lo = mid + 1
        else:
            hi = mid
    return (days + 3) % 7


def local_day(cfg, now, state):
    """(day, minute of day, calendar type today, yesterday, weekday today, yesterday) or None."""
    if now is None:
        return None
    t = now + cfg.tz * 60
    days = t // 86400
    minute = (t - days * 86400) // 60
    if state is not None and state._lc_cfg is cfg and state._lc_day == days:
        ty = state._lc_types
    else:
        ty = (_day_type(cfg.holidays, days), _day_type(cfg.holidays, days - 1),
              (days + 3) % 7, (days + 2) % 7)
        if state is not None:
            state._lc_cfg = cfg
            state._lc_day = days
            state._lc_types = ty
    return (days, minute, ty[0], ty[1], ty[2], ty[3])


def window(sched, loc):
    """Id of the schedule interval containing the local time loc (day * 1440 + start minute of
    the day it started on), or -1. Intervals belong to the day they start: one that ends after
    midnight is looked up in yesterday's day type."""
    days = loc[0]
    m = loc[1]
    if sched.calendar:
        t0 = loc[2]
        t1 = loc[3]
    else:
        t0 = loc[4]
        t1 = loc[5]
    for a, b in sched.days[t0]:
        if a <= m < b:
            return days * 1440 + a
    m += 1440
    for a, b in sched.days[t1]:
        if a <= m < b:
            return (days - 1) * 1440 + a
    return -1


# ---- who -------------------------------------------------------------------------------------------

def agency_keys(code):
    """Digests of every whole-segment prefix of an agency code: "000.00.31.H26" gives those of
    "000", "000.00", "000.00.31" and "000.00.31.H26" (so "000.00.3" can never match it)."""
    b = code.encode()
    out = []  # type: list[bytes]
    i = b.find(b".")
    while i >= 0 and len(out) < MAX_SEGMENTS:
        out.append(digest(b[:i]))
        i = b.find(b".", i + 1)
    if len(out) < MAX_SEGMENTS:
        out.append(digest(b))
    return out


def _card_keys(c, bit):
    if bit == K_AGENCY:
        return agency_keys(c[_AGENCY])
    if bit == K_UNIT:
        return (digest(c[_UNIT].encode()),)
    if bit == K_CGROUP:
        g = c.get(_GROUPS) or ()
        return [digest(x.encode()) for x in g[:MAX_CARD_GROUPS]]
    if bit == K_STAFF:
        return (digest(c[_STAFF].encode()),)
    return (digest(c[_SERIAL].to_bytes(SERIAL_BYTES, "big")),)


def match_groups(cfg, c):
    """Per group of cfg, the criterion kinds the card meets. Group i matches when that equals
    cfg.req[i]: every kind the group has is met by one of its values (AND across kinds, OR within
    a kind); an "everyone" group requires none."""
    sat = bytearray(len(cfg.req))
    for bit, index in cfg.indexes:
        for d in _card_keys(c, bit):
            index.mark(d, sat, bit)
    return sat


def matches(cfg, sat, gi):
    return sat[gi] == cfg.req[gi]


def _first(gidx, sat, req):
    # The first group of gidx the card matches, or -1.
    for i in gidx:
        if sat[i] == req[i]:
            return i
    return -1


# ---- the decision ------------------------------------------------------------------------------

def door_mode(door, now, state, loc=None):
    """(mode, window id): the door's effective mode now. The door I/O loop polls this to hold the
    lock open (scheduled_unlocked, emergency_unlock) or shut. A first-card door reports normal
    with the window id until an authorised first tap latches that window."""
    if state.emergency:
        return EMERGENCY, -1
    i = door.index
    if door.locked or state.lockdown_all or state.lockdown[i]:
        return LOCKED, -1
    s = door.unlock
    if s is not None:
        if loc is None:
            loc = local_day(door.cfg, now, state)
        if loc is not None:
            w = window(s, loc)
            if w >= 0:
                if door.first_card is None or state.first_card[i] == w:
                    return SCHEDULED, w
                return NORMAL, w
    return NORMAL, -1


def evaluate(c, tech, anti_clone, door, loc, locked):
    """The verdict of the access rules alone, without side effects: (granted, reason, detail)."""
    if door.anti_clone and (not anti_clone or tech in _CLONEABLE):
        return False, ANTI_CLONE_REQUIRED, tech
    cfg = door.cfg
    names = cfg.groups
    req = cfg.req
    m = match_groups(cfg, c)
    for rg, rs in door.deny:
        gi = _first(rg, m, req)
        # A scheduled deny applies in its windows, and always when the clock is unknown.
        if gi >= 0 and (rs is None or loc is None or window(rs, loc) >= 0):
            return False, DENY_LISTED, names[gi]
    if locked:
        gi = _first(door.override, m, req)
        if gi >= 0:
            return True, LOCKDOWN_OVERRIDE, names[gi]
        return False, LOCKED_DOWN, None
    matched = -1
    unknown_time = False
    for rg, rs in door.allow:
        gi = _first(rg, m, req)
        if gi < 0:
            continue
        if rs is None:
            return True, GRANTED, names[gi]
        if loc is None:
            unknown_time = True
        elif window(rs, loc) >= 0:
            return True, GRANTED, names[gi]
        if matched < 0:
            matched = gi
    if matched < 0:
        return False, NO_ACCESS, None
    if unknown_time:
        return False, CLOCK_UNSET, names[matched]
    return False, OUT_OF_SCHEDULE, names[matched]


def decide(claims, tech, anti_clone, door, now_utc, state):
    """Decide one tap. claims: the verified credential's claims map (credential.verify); tech:
    "desfire" | "classic" | "ntag"; anti_clone: True only after successful DESFire authentication;
    door: a reader_config.Door or None; now_utc: Unix seconds or None when the clock is unset;
    state: a State (updated here). Returns a Decision; never raises."""
    try:
        return _decide(claims, tech, anti_clone, door, now_utc, state)
    except Exception as e:  # fail secure on anything unexpected
        return Decision(False, INTERNAL_ERROR, repr(e))


def _underlying(c, tech, anti_clone, door, loc):
    try:
        return evaluate(c, tech, anti_clone, door, loc, False)[1]
    except Exception:
        return INTERNAL_ERROR


def _decide(c, tech, anti_clone, door, now, state):
    if door is None:
        return Decision(False, NOT_CONFIGURED)
    if now is not None:
        now = int(now)  # whole seconds: window ids and stored times stay integers
    loc = local_day(door.cfg, now, state)
    mode, w = door_mode(door, now, state, loc)
    serial = c.get(_SERIAL) if isinstance(c, dict) else None
    t = None
    if now is not None:
        t = now - T_BASE
        if door.retap and serial is not None:
            e = state._retap_find(serial, door.index, t, door.retap, mode)
            if e is not None:
                unlock = False
                if e[6] and mode in (NORMAL, LOCKED):
                    # Re-open for a second tap only if the rules still grant it now.
                    unlock = evaluate(c, tech, anti_clone, door, loc, mode == LOCKED)[0]
                return Decision(e[3], DUPLICATE, e[4], mode, unlock, False)
    if mode == EMERGENCY:
        d = Decision(True, EMERGENCY_UNLOCK, _underlying(c, tech, anti_clone, door, loc), mode)
    elif mode == SCHEDULED:
        d = Decision(True, SCHEDULED_UNLOCKED, _underlying(c, tech, anti_clone, door, loc), mode)
    else:
        granted, reason, detail = evaluate(c, tech, anti_clone, door, loc, mode == LOCKED)
        d = Decision(granted, reason, detail, mode, granted)
        if granted and mode == NORMAL:
            if door.apb and t is not None:
                # Strict area anti-passback: the card must be known to be where this door leads from.
                area = state._apb_get(serial, t, door.cfg.apb_timeout)
                if area >= 0 and area != door.from_area:
                    if door.apb == 2:  # hard: refused, position unchanged
                        d.granted = False
                        d.unlock = False
                        d.reason = PASSBACK
                        d.detail = area
                    else:
                        d.reason = PASSBACK_SOFT
                        d.detail = area
                if d.granted:
                    state._apb_put(serial, door.to_area, t)
            if d.granted and w >= 0 and door.first_card is not None and state.first_card[door.index] != w:
                gi = _first(door.first_card, match_groups(door.cfg, c), door.cfg.req)
                if gi >= 0:
                    state.first_card[door.index] = w
                    if d.reason == GRANTED:
                        d.reason = FIRST_CARD_UNLOCK
                        d.detail = door.cfg.groups[gi]
    if t is not None and door.retap and serial is not None:
        state._retap_put(serial, door.index, t, d)
    return d
