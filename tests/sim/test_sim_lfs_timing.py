"""firmware/sim/lfs_timing.py: the modelled LittleFS flash time of a file read (the trust store's
cold issuer lookup): LittleFS's CTZ block arithmetic, the device reads one read makes, their
ESP-IDF-derived cost, and the meter that wraps an open file without changing what it reads."""

from __future__ import annotations

import io

from sim import lfs_timing as L


def test_ctz_index_is_littlefs_arithmetic() -> None:
    # block 0 holds 4096 data bytes; block i > 0 starts with ctz(i) + 1 four-byte pointers
    assert L.ctz_index(0) == (0, 0)
    assert L.ctz_index(4095) == (0, 4095)
    assert L.ctz_index(4096) == (1, 4)            # block 1: one pointer
    assert L.ctz_index(4096 + 4092) == (2, 8)     # block 2: two pointers (ctz(2) + 1)


def test_ctz_hops_walk_the_skip_list() -> None:
    assert L.ctz_hops(4096, 0) == 0                # one block: no pointer to follow
    size = 17 * 4092 + 4096 + 100                  # 19 blocks: the last has index 18
    assert L.ctz_index(size - 1)[0] == 18
    # 18 -> 16 (skip 2^1, ctz(18) = 1) -> 0 (skip 2^4): two pointer reads to reach block 0
    assert L.ctz_hops(size, 10) == 2
    assert L.ctz_hops(size, size - 1) == 0


def test_read_plan_and_cost() -> None:
    # a 49-byte record of a one-block file: one device read (a cache line starts at the read
    # position aligned down to read_size, so it always holds the record)
    assert L.read_plan(4000, 164, 49) == [L.CACHE_SIZE]
    # 200 bytes from 100: the lines at 96 and 224
    assert L.read_plan(4000, 100, 200) == [L.CACHE_SIZE, L.CACHE_SIZE]
    # a modulus far from the end of a 70 KB file: pointer reads, then its cache lines
    plan = L.read_plan(70000, 300, 256)
    assert plan.count(L.READ_SIZE) == L.ctz_hops(70000, 300) > 0 and plan.count(L.CACHE_SIZE) == 3
    us = L.read_us(70000, 300, 256)
    assert abs(us - sum(L.device_read_us(k) for k in plan)) < 1e-6
    # ESP-IDF's classic-ESP32 thresholds: 4-byte reads <= 113.6 us, 2 KiB <= 308 us
    assert abs(L.device_read_us(4) - 4 / 35200e-6) < 1.0
    assert abs(L.device_read_us(2048) - 2048 / 6.65) < 1.5


def test_meter_reads_what_the_file_holds() -> None:
    data = bytes(range(256)) * 40
    m = L.FileMeter(io.BytesIO(data), len(data))
    m.seek(1000)
    buf = bytearray(49)
    assert m.readinto(buf) == 49 and bytes(buf) == data[1000:1049]
    first = m.modelled_us
    assert first > 0 and m.reads == len(L.read_plan(len(data), 1000, 49))
    m.seek(5000)
    assert m.read(256) == data[5000:5256]
    assert m.modelled_us > first
