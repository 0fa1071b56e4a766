# DS3231 battery-backed real-time clock over I2C (address 0x68), kept in UTC. The reader's clock
# (clock.py) reads it at boot, so expiry checks and event times survive a power cut with the
# network down, and writes it at every gateway/NTP sync.
# Registers 0x00–0x06: seconds, minutes, hours, weekday, date, month (bit 7 = century), year,
# all BCD; status 0x0F bit 7 (OSF): the oscillator stopped (battery flat): the time is invalid.
import localtime

ADDR = 0x68
_STATUS = 0x0F
_OSF = 0x80


def _bcd(v):
    return (v >> 4) * 10 + (v & 0x0F)


def _to_bcd(n):
    return ((n // 10) << 4) | (n % 10)


class DS3231:
    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr

    def read(self):
        """Unix seconds, or None when the chip does not answer, lost its time, or talks nonsense."""
        try:
            st = self.i2c.readfrom_mem(self.addr, _STATUS, 1)[0]
            r = self.i2c.readfrom_mem(self.addr, 0x00, 7)
        except OSError:
            return None
        if st & _OSF:
            return None
        for i, mask in ((0, 0x7F), (1, 0x7F), (2, 0x3F), (4, 0x3F), (5, 0x1F), (6, 0xFF)):
            v = r[i] & mask
            if v & 0x0F > 9:
                return None
        if r[2] & 0x40:
            return None  # 12-hour mode: never set by us, so not trusted
        sec, mnt, hour = _bcd(r[0] & 0x7F), _bcd(r[1] & 0x7F), _bcd(r[2] & 0x3F)
        day, month = _bcd(r[4] & 0x3F), _bcd(r[5] & 0x1F)
        year = 2000 + _bcd(r[6]) + (100 if r[5] & 0x80 else 0)
        if not (sec < 60 and mnt < 60 and hour < 24 and 1 <= month <= 12
                and 1 <= day <= localtime.days_in_month(year, month)):
            return None
        return localtime.days_from_civil(year, month, day) * localtime.DAY + hour * 3600 + mnt * 60 + sec

    def write(self, unix_s):
        days = unix_s // localtime.DAY
        rem = unix_s % localtime.DAY
        y, m, d = localtime.civil_from_days(days)
        century = 0x80 if y >= 2100 else 0
        regs = bytes((_to_bcd(rem % 60), _to_bcd(rem // 60 % 60), _to_bcd(rem // 3600),
                      localtime.weekday(days) + 1, _to_bcd(d), _to_bcd(m) | century, _to_bcd(y % 100)))
        self.i2c.writeto_mem(self.addr, 0x00, regs)
        st = self.i2c.readfrom_mem(self.addr, _STATUS, 1)[0]
        self.i2c.writeto_mem(self.addr, _STATUS, bytes((st & ~_OSF & 0xFF,)))
