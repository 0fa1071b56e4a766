"""The DS3231 driver against a register model of the chip, on both interpreters: round trips
across centuries and leap days, a flat battery (OSF), nonsense registers and a missing chip."""

from __future__ import annotations

import calendar
import json

import clock
import ds3231
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim.i2c_bus import DS3231Model, SimI2C
from support.micropython_runner import run_snippet


def _rtc(osf: bool = False) -> tuple[ds3231.DS3231, DS3231Model]:
    bus = SimI2C()
    model = DS3231Model(osf=osf)
    bus.add(ds3231.ADDR, model)
    return ds3231.DS3231(bus), model


@given(st.integers(min_value=calendar.timegm((2000, 1, 1, 0, 0, 0)),
                   max_value=calendar.timegm((2199, 12, 31, 23, 59, 59))))
def test_round_trip(t: int) -> None:
    rtc, _ = _rtc(osf=True)
    rtc.write(t)
    assert rtc.read() == t


def test_registers_are_bcd_utc() -> None:
    rtc, model = _rtc()
    rtc.write(calendar.timegm((2028, 2, 29, 23, 59, 58)))  # a leap day
    # weekday register 2: Tuesday, counting Monday as 1
    assert bytes(model.regs[:7]) == bytes([0x58, 0x59, 0x23, 0x02, 0x29, 0x02, 0x28])


def test_new_chip_or_flat_battery_is_no_time() -> None:
    rtc, model = _rtc(osf=True)
    assert rtc.read() is None
    rtc.write(1_790_000_000)
    assert rtc.read() == 1_790_000_000
    model.battery_flat()
    assert rtc.read() is None


@pytest.mark.parametrize(
    ("reg", "value"), [(0, 0x5A), (1, 0x60), (2, 0x24), (4, 0x00), (4, 0x32), (5, 0x13), (2, 0x40)]
)
def test_nonsense_registers_are_no_time(reg: int, value: int) -> None:
    rtc, model = _rtc()
    rtc.write(1_790_000_000)
    model.regs[reg] = value
    assert rtc.read() is None


def test_missing_chip_is_no_time_and_clock_falls_back() -> None:
    rtc = ds3231.DS3231(SimI2C())
    assert rtc.read() is None
    c = clock.Clock(rtc=rtc)
    assert c.quality() == 0 and c.now() == 0


def test_clock_takes_the_rtc_at_boot_and_writes_it_at_sync() -> None:
    rtc, _ = _rtc()
    rtc.write(1_790_000_000)
    c = clock.Clock(rtc=rtc)
    assert c.quality() == 1 and abs(c.now() - 1_790_000_000) <= 1
    c.set_from_gateway(1_800_000_000_000)
    assert rtc.read() == 1_800_000_000


def test_same_under_micropython() -> None:
    code = (
        "import json, ds3231\n"
        "from sim.i2c_bus import SimI2C, DS3231Model\n"
        "bus = SimI2C(); m = DS3231Model(); bus.add(0x68, m); r = ds3231.DS3231(bus)\n"
        "out = [r.read()]\n"
        "for t in (946684800, 1790000000, 4102444799, 4102444800, 1709251199):\n"
        "    r.write(t); out.append(r.read())\n"
        "print(json.dumps(out))\n"
    )
    proc = run_snippet(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [None, 946684800, 1790000000, 4102444799, 4102444800, 1709251199]
