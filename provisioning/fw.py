"""The reader firmware's portable modules (``firmware/lib``) and the RF simulator, on CPython.

The card layout, DESFire command layer and RF stack are written once, in the MicroPython subset,
and run on the issuing host unchanged (docs/card-layout.md: one implementation of the layout).
They carry no type hints, so they are handed to host code as ``Any``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FIRMWARE_LIB = FIRMWARE / "lib"


def _path() -> None:
    for extra in (FIRMWARE_LIB, FIRMWARE):
        if str(extra) not in sys.path:
            sys.path.append(str(extra))


def module(name: str) -> Any:
    """Import a firmware module (``card_layout``, ``desfire``, ``mfrc522``, ``sim`` …) by flat name."""
    _path()
    return importlib.import_module(name)
