# Signed reader configuration v1: doors, access groups, rules, weekly schedules and the holiday
# calendar a reader needs to decide every tap offline (docs/reader-config.md).
#
# A COSE_Sign1 (RS256) under the configuration key pinned at provisioning, ≤ 16 KiB, payload
#   {0: "config", 1: 1, 2: seq, 3: iat, 4: reader_id, 5: tz_minutes, 6?: site,
#    7: [door, ...], 8?: [group, ...], 9?: [schedule, ...], 10?: [rule, ...],
#    11?: holidays (bstr, 3 bytes each), 12?: apb_capacity, 13?: apb_timeout_s}
# Nesting never exceeds 4 (payload map → table array → entry map → array of scalars); intervals and
# holidays are packed in byte strings. Unknown keys are ignored at every level; anything else that
# is wrong rejects the whole object (the held configuration stays). seq only grows.
#
# In RAM (about the size of the payload): every listed agency prefix, unit, group name, staff code
# and serial goes into one sorted Index per kind (13 bytes an entry, no string objects); each group
# is its id and a byte of required kinds; each door holds its own deny and allow rules as tuples;
# schedules are 8 tuples of (start, end) minutes; holidays stay packed bytes.
import array
import hashlib

import signed

MAX_SIZE = 16384
TYPE = "config"
VERSION = 1
WRONG_READER = "wrong_reader"  # a valid configuration signed for another reader

MAX_DOORS = 16
MAX_GROUPS = 250
MAX_SCHEDULES = 64
MAX_RULES = 250
MAX_AREA = 255
MAX_APB = 4096
DEFAULT_APB = 256
DEFAULT_APB_TIMEOUT = 43200
MAX_APB_TIMEOUT = 7 * 86400
MAX_RETAP = 3600
MAX_SERIAL = 1 << 53
HOLIDAY_TYPES = 7  # index of the "holiday / day off" day type (0..6 are Monday..Sunday)
MAX_SEGMENTS = 8   # an agency prefix has at most this many dot-separated segments
DIGEST = 8         # bytes of SHA-256 kept per listed text
SERIAL_BYTES = 7

# Door modes set by configuration (runtime lockdown and emergency live in policy.State).
MODE_NORMAL = 0
MODE_LOCKED = 1
# Anti-passback modes
APB_OFF = 0
APB_SOFT = 1
APB_HARD = 2
# Rule effects
ALLOW = 1
DENY = 2
# Holiday kinds (high nibble of the type byte; the low nibble is the weekday a working day follows)
HOL_PUBLIC = 1       # "L": public holiday (nghỉ lễ, Tết)
HOL_DAY_OFF = 2      # "NB": compensatory day off (nghỉ bù)
HOL_WORKING = 3      # "LB": make-up working day (làm bù), follows a weekday's schedule


# Criterion kinds of a group, as bits of Config.req (a group matches when every bit it requires
# was set by the card's keys; "everyone" requires none).
K_AGENCY = 1
K_UNIT = 2
K_CGROUP = 4
K_STAFF = 8
K_SERIAL = 16
KINDS = (K_AGENCY, K_UNIT, K_CGROUP, K_STAFF, K_SERIAL)


def digest(b):
    """The key a listed value is stored and looked up by: SHA-256(bytes)[:8] (texts as UTF-8,
    serials as 7 bytes big-endian). A false match needs a 64-bit collision."""
    return hashlib.sha256(b).digest()[:DIGEST]


def _k30(d):
    # The top 30 bits of a digest: a small int on every port, searched without allocating.
    return (d[0] << 22) | (d[1] << 14) | (d[2] << 6) | (d[3] >> 2)


class Index:
    """All values of one criterion kind across the configuration's groups, sorted by digest:
    keys (30-bit, array 'i'), the full digests (8 bytes each) and the owning group (1 byte each).
    13 bytes an entry; a lookup is one binary search, whatever the number of groups."""

    def __init__(self, entries):
        entries.sort()
        self.keys = array.array("i", [_k30(d) for d, _ in entries])
        self.digests = b"".join([d for d, _ in entries])
        self.gis = bytes([gi for _, gi in entries])

    def mark(self, d, sat, bit):
        """Set bit in sat[group] for every group listing the value whose digest is d."""
        k = _k30(d)
        keys = self.keys
        n = len(keys)
        lo = 0
        hi = n
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < k:
                lo = mid + 1
            else:
                hi = mid
        while lo < n and keys[lo] == k:
            j = lo * DIGEST
            if self.digests[j:j + DIGEST] == d:
                sat[self.gis[lo]] |= bit
            lo += 1

    def __len__(self):
        return len(self.keys)


class Schedule:
    """When: for each day type (0..6 Mon..Sun, 7 holiday) a tuple of (start, end) minutes with
    start < 1440 and end ≤ start + 1440; end > 1440 spills past midnight into the next day."""

    def __init__(self, name, days, calendar):
        self.name = name
        self.days = days          # 8 tuples of (start, end)
        self.calendar = calendar  # False: holidays and working days are ignored (plain weekdays)


class Door:
    def __init__(self, cfg, index, did, name):
        self.cfg = cfg
        self.index = index
        self.id = did
        self.name = name
        self.locked = False       # configured lockdown
        self.unlock = None        # Schedule holding the door unlocked, or None
        self.first_card = None    # tuple of group indices, or None
        self.override = ()        # lockdown override group indices
        self.anti_clone = False
        self.retap = 0            # seconds; 0 = off
        self.apb = APB_OFF
        self.from_area = 0
        self.to_area = 0
        self.unlock_s = 5         # for door I/O: relay pulse
        self.held_open_s = 30     # for door I/O: held-open alarm
        # Rules that apply here, in configuration order, each a tuple (group indices, Schedule or
        # None for always): the deny rules and the allow rules.
        self.deny = ()
        self.allow = ()


class Config:
    """groups: the group ids (names); req: per group, the kind bits it requires; indexes: one
    (kind bit, Index) per kind some group uses."""

    def __init__(self):
        self.seq = 0
        self.iat = 0
        self.reader_id = ""
        self.site = ""
        self.tz = 0
        self.doors = []
        self.groups = []
        self.req = b""
        self.indexes = ()  # type: tuple
        self.schedules = []
        self.nrules = 0
        self.holidays = b""
        self.apb_capacity = DEFAULT_APB
        self.apb_timeout = DEFAULT_APB_TIMEOUT

    def door(self, did):
        """The Door with this id (or index), or None."""
        if isinstance(did, int):
            if 0 <= did < len(self.doors):
                return self.doors[did]
            return None
        for d in self.doors:
            if d.id == did:
                return d
        return None


# ---- strict field readers: each raises ValueError, which rejects the whole object ----------

def _uint(v, hi):
    if not signed.is_uint(v) or v > hi:
        raise ValueError("uint")
    return v


def _int(v, lo, hi):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise ValueError("int")
    return v


def _bool(v):
    if v is not True and v is not False:
        raise ValueError("bool")
    return v


def _text(v):
    if not isinstance(v, str) or not v:
        raise ValueError("text")
    return v


def _texts(v):
    if not isinstance(v, list) or not v:
        raise ValueError("texts")
    for x in v:
        _text(x)
    return v


def _indices(v, n):
    # A non-empty list of distinct indices below n.
    if not isinstance(v, list) or not v:
        raise ValueError("indices")
    for x in v:
        _uint(x, n - 1)
    if len(set(v)) != len(v):
        raise ValueError("duplicate index")
    return tuple(v)


def _table(p, key, limit, required):
    v = p.get(key)
    if v is None:
        if required or key in p:
            raise ValueError("table")
        return []
    if not isinstance(v, list) or len(v) > limit:
        raise ValueError("table")
    for e in v:
        if not isinstance(e, dict):
            raise ValueError("entry")
    return v


def _agency_prefix(p):
    # Whole dot-separated segments of a Decision 20/2020 code: no empty segment, no spaces.
    _text(p)
    segs = p.split(".")
    if len(segs) > MAX_SEGMENTS:
        raise ValueError("agency prefix")
    for seg in segs:
        if not seg or " " in seg:
            raise ValueError("agency prefix")
    return p


def _group(e, gi, entries):
    # Adds the group's values to entries[kind]; returns (name, required kind bits).
    name = _text(e.get(1))
    req = 0
    if 2 in e:
        for p in _texts(e[2]):
            entries[0].append((digest(_agency_prefix(p).encode()), gi))
        req |= K_AGENCY
    for key, i, bit in ((3, 1, K_UNIT), (4, 2, K_CGROUP), (5, 3, K_STAFF)):
        if key in e:
            for t in _texts(e[key]):
                entries[i].append((digest(t.encode()), gi))
            req |= bit
    if 6 in e:
        v = e[6]
        if not isinstance(v, list) or not v:
            raise ValueError("serials")
        for sn in v:
            entries[4].append((digest(_uint(sn, MAX_SERIAL - 1).to_bytes(SERIAL_BYTES, "big")), gi))
        req |= K_SERIAL
    everyone = False
    if 7 in e:
        everyone = _bool(e[7])
    # "everyone" must be said explicitly and alone; a group with no criterion matches nobody and
    # is a mistake, not a wildcard.
    if everyone == (req != 0):
        raise ValueError("group criteria")
    return name, req


def _schedule(e):
    name = _text(e.get(1))
    packed = e.get(2)
    if not isinstance(packed, bytes) or len(packed) % 5:
        raise ValueError("intervals")
    days = [[] for _ in range(8)]  # type: list[list[tuple[int, int]]]
    for i in range(0, len(packed), 5):
        mask = packed[i]
        start = (packed[i + 1] << 8) | packed[i + 2]
        end = (packed[i + 3] << 8) | packed[i + 4]
        if mask == 0 or start >= 1440 or end <= start or end > start + 1440:
            raise ValueError("interval")
        for t in range(8):
            if mask & (1 << t):
                days[t].append((start, end))
    calendar = True
    if 3 in e:
        calendar = _bool(e[3])
    return Schedule(name, tuple(tuple(sorted(d)) for d in days), calendar)


def _holidays(v):
    if not isinstance(v, bytes) or len(v) % 3:
        raise ValueError("holidays")
    prev = -1
    for i in range(0, len(v), 3):
        day = (v[i] << 8) | v[i + 1]
        t = v[i + 2]
        kind = t >> 4
        wd = t & 15
        if day <= prev:
            raise ValueError("holidays order")
        if kind == HOL_WORKING:
            if wd > 6:
                raise ValueError("holiday weekday")
        elif kind not in (HOL_PUBLIC, HOL_DAY_OFF) or wd != 0:
            raise ValueError("holiday type")
        prev = day
    return v


def _door(cfg, i, e, ngroups, schedules):
    d = Door(cfg, i, _text(e.get(1)), _text(e.get(2)))
    if 3 in e:
        d.locked = _uint(e[3], MODE_LOCKED) == MODE_LOCKED
    if 4 in e:
        d.unlock = schedules[_uint(e[4], len(schedules) - 1)]
    if 5 in e:
        if d.unlock is None:
            raise ValueError("first card without unlock schedule")
        d.first_card = _indices(e[5], ngroups)
    if 6 in e:
        d.override = _indices(e[6], ngroups)
    if 7 in e:
        d.anti_clone = _bool(e[7])
    if 8 in e:
        d.retap = _uint(e[8], MAX_RETAP)
    if 9 in e:
        d.apb = _uint(e[9], APB_HARD)
    if d.apb != APB_OFF:
        d.from_area = _uint(e.get(10), MAX_AREA)
        d.to_area = _uint(e.get(11), MAX_AREA)
        if d.from_area == d.to_area:
            raise ValueError("areas")
    if 12 in e:
        d.unlock_s = _int(e[12], 1, 3600)
    if 13 in e:
        d.held_open_s = _int(e[13], 1, 86400)
    return d


def _rule(e, ngroups, schedules, ndoors):
    effect = _uint(e.get(1), DENY)
    if effect not in (ALLOW, DENY):
        raise ValueError("effect")
    groups = _indices(e.get(2), ngroups)
    doors = _indices(e[3], ndoors) if 3 in e else None
    sched = None
    if 4 in e:
        sched = schedules[_uint(e[4], len(schedules) - 1)]
    return effect, (groups, sched), doors


def _unique(names):
    if len(set(names)) != len(names):
        raise ValueError("duplicate id")


def from_payload(p):
    """Build a Config from a verified payload map; raises ValueError when anything is wrong."""
    if p.get(0) != TYPE or not signed.is_version(p.get(1), VERSION):
        raise ValueError("type")
    cfg = Config()
    cfg.seq = _uint(p.get(2), 1 << 63)
    cfg.iat = _uint(p.get(3), 1 << 63)
    cfg.reader_id = _text(p.get(4))
    cfg.tz = _int(p.get(5), -720, 840)
    if 6 in p:
        if not isinstance(p[6], str):
            raise ValueError("site")
        cfg.site = p[6]
    if 11 in p:
        cfg.holidays = _holidays(p[11])
    if 12 in p:
        cfg.apb_capacity = _int(p[12], 1, MAX_APB)
    if 13 in p:
        cfg.apb_timeout = _int(p[13], 1, MAX_APB_TIMEOUT)
    entries = [[], [], [], [], []]  # type: list[list[tuple[bytes, int]]]
    req = bytearray()
    for gi, e in enumerate(_table(p, 8, MAX_GROUPS, False)):
        name, bits = _group(e, gi, entries)
        cfg.groups.append(name)
        req.append(bits)
    cfg.req = bytes(req)
    cfg.indexes = tuple((KINDS[i], Index(entries[i])) for i in range(5) if entries[i])
    del entries
    cfg.schedules = [_schedule(e) for e in _table(p, 9, MAX_SCHEDULES, False)]
    doors_raw = _table(p, 7, MAX_DOORS, True)
    if not doors_raw:
        raise ValueError("no doors")
    ng = len(cfg.groups)
    cfg.doors = [_door(cfg, i, e, ng, cfg.schedules) for i, e in enumerate(doors_raw)]
    _unique(cfg.groups)
    _unique([s.name for s in cfg.schedules])
    _unique([d.id for d in cfg.doors])
    nd = len(cfg.doors)
    deny = [[] for _ in range(nd)]  # type: list[list[tuple]]
    allow = [[] for _ in range(nd)]  # type: list[list[tuple]]
    rules = _table(p, 10, MAX_RULES, False)
    for e in rules:
        effect, r, where = _rule(e, ng, cfg.schedules, nd)
        for i in (range(nd) if where is None else where):
            (deny if effect == DENY else allow)[i].append(r)
    cfg.nrules = len(rules)
    for d in cfg.doors:
        d.deny = tuple(deny[d.index])
        d.allow = tuple(allow[d.index])
    return cfg


def parse(blob, key, reader_id=None):
    """Verify and parse; returns (status, Config or None). reader_id: this reader's own id, when
    known; a configuration signed for another reader is refused as wrong_reader."""
    status, p = signed.open_signed(blob, MAX_SIZE, key)
    if status != signed.OK:
        return status, None
    try:
        cfg = from_payload(p)
    except (ValueError, TypeError, KeyError, IndexError):
        return signed.MALFORMED, None
    if reader_id is not None and cfg.reader_id != reader_id:
        return WRONG_READER, None
    return signed.OK, cfg


class ReaderConfig:
    """The reader's current configuration under the pinned configuration key. A failed update
    (any status but ok) leaves the held configuration untouched."""

    def __init__(self, key, reader_id=None):
        self.key = key
        self.reader_id = reader_id
        self.current = None
        self.seq = None

    def update(self, blob):
        status, cfg = parse(blob, self.key, self.reader_id)
        if status != signed.OK:
            return status
        status = signed.seq_status(cfg.seq, self.seq)
        if status == signed.OK:
            self.current = cfg
            self.seq = cfg.seq
        return status
