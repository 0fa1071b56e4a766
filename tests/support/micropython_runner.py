"""The tests' handle on the MicroPython unix port: the same runner ``cbcc demo`` uses."""

from simulators.firmware_runner import (
    FIRMWARE,
    FIRMWARE_LIB,
    FIRMWARE_TOOLS,
    ROOT,
    micropython_binary,
    mpy_cross_binary,
    run_micropython,
    run_snippet,
)

__all__ = [
    "FIRMWARE",
    "FIRMWARE_LIB",
    "FIRMWARE_TOOLS",
    "ROOT",
    "micropython_binary",
    "mpy_cross_binary",
    "run_micropython",
    "run_snippet",
]
