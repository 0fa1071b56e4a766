# Civil time from Unix seconds and a fixed UTC offset, with our own calendar arithmetic.
#
# MicroPython ports disagree on the epoch of time.time()/time.localtime() (unix: 1970; some
# embedded ports: 2000) and have no time zones. Everything here works on Unix seconds (UTC) and
# a fixed offset in minutes (Vietnam: +420, no DST), using the proleptic Gregorian calendar
# (H. Hinnant's days_from_civil / civil_from_days). Checked against CPython's datetime in the
# tests. Integer-only; valid for any day number (negative ones too).

DAY = 86400
UNIX_2000 = 946684800  # 2000-01-01T00:00:00Z in Unix seconds


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the date y-m-d (1 <= m <= 12, 1 <= d <= 31)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(n):
    """(year, month, day) of the day n days after 1970-01-01."""
    z = n + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400
    if m <= 2:
        y += 1
    return y, m, d


def weekday(days):
    """0 = Monday … 6 = Sunday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_in_month(y, m):
    if m == 2:
        return 29 if is_leap(y) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def split(now, offset_min):
    """(local day number, local second of day) of Unix time now at a fixed offset in minutes."""
    t = now + offset_min * 60
    days = t // DAY
    return days, t - days * DAY


def local(now, offset_min):
    """(year, month, day, hour, minute, second, weekday 0=Mon, yearday 1..366), like localtime()."""
    days, sod = split(now, offset_min)
    y, m, d = civil_from_days(days)
    yd = days - days_from_civil(y, 1, 1) + 1
    return y, m, d, sod // 3600, (sod // 60) % 60, sod % 60, weekday(days), yd


def _two(n):
    return ("0" + str(n)) if n < 10 else str(n)


def date_text(days):
    """YYYY-MM-DD of a day number."""
    y, m, d = civil_from_days(days)
    return "%04d-%s-%s" % (y, _two(m), _two(d))


def isoformat(now, offset_min):
    """ISO 8601 local time with its offset, e.g. 2026-02-17T07:30:00+07:00."""
    y, m, d, hh, mm, ss, _, _ = local(now, offset_min)
    off = offset_min
    sign = "+"
    if off < 0:
        sign = "-"
        off = -off
    return "%04d-%s-%sT%s:%s:%s%s%s:%s" % (y, _two(m), _two(d), _two(hh), _two(mm), _two(ss),
                                          sign, _two(off // 60), _two(off % 60))


def parse_date(text):
    """Day number of a strict YYYY-MM-DD date; raises ValueError otherwise."""
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("date")
    for i in (0, 1, 2, 3, 5, 6, 8, 9):
        if not ("0" <= text[i] <= "9"):
            raise ValueError("date")
    y = int(text[0:4])
    m = int(text[5:7])
    d = int(text[8:10])
    if not (1 <= m <= 12 and 1 <= d <= days_in_month(y, m)):
        raise ValueError("date")
    return days_from_civil(y, m, d)


_epoch_offset = None


def port_epoch_offset():
    """Seconds to add to this port's time.time() to get Unix time (0, or 946684800 on 2000-epoch
    ports). Found once from gmtime(0), never assumed."""
    global _epoch_offset
    if _epoch_offset is None:
        import time
        gm = getattr(time, "gmtime", None)
        year = (gm(0) if gm is not None else time.localtime(0))[0]
        _epoch_offset = UNIX_2000 if year == 2000 else 0
    return _epoch_offset


def unix_now():
    """Unix seconds (UTC) from this port's clock, whatever its epoch."""
    import time
    return int(time.time()) + port_epoch_offset()
