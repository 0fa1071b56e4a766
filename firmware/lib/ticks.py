# Monotonic milliseconds that are safe across wrap-around (time.ticks_ms wraps after ~12 days on
# an ESP32: always compare through ticks_diff), with a CPython fallback for host tests.
import time

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
except AttributeError:  # CPython
    def ticks_ms():
        return int(getattr(time, "monotonic")() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b


def elapsed_ms(since):
    return ticks_diff(ticks_ms(), since)
