"""The hardware diagrams agree with the pin map, and the pin map keeps its own safety rules.

Every SVG under hardware/diagrams must parse. Each names its board in a `data-board` attribute on the
root element. On ESP32-DevKitC diagrams every "GPIO<n>" must be the GPIO of a signal in
hardware/pinmap.json; on the PoE board diagram it must be a pin that pinmap.json knows for that board.
Labels carrying `data-signal="<name>"` must show exactly that signal's GPIO (or expander pin). The
pin map itself: no GPIO (or expander pin) used twice per board, and the lock relay never on a
strapping pin or an input-only pin.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware"
DIAGRAMS = HARDWARE / "diagrams"
PINMAP = HARDWARE / "pinmap.json"

SVG_NS = "http://www.w3.org/2000/svg"
DEVKITC = "esp32-devkitc"
POE = "olimex-esp32-poe-iso"
EXPECTED = {
    "reader-block.svg",
    "mfrc522-esp32-devkitc.svg",
    "relay-and-locks.svg",
    "inputs.svg",
    "i2c-devkitc.svg",
    "olimex-poe-iso.svg",
}
STRAPPING = {0, 2, 5, 12, 15}
INPUT_ONLY = set(range(34, 40))
GPIO_RE = re.compile(r"\bGPIO\s?(\d+)")


def _pinmap() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PINMAP.read_text(encoding="utf-8"))
    return data


def _svgs() -> list[Path]:
    return sorted(DIAGRAMS.glob("*.svg"))


def _root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _text(el: ET.Element) -> str:
    return "".join(el.itertext())


def _gpios(text: str) -> set[int]:
    return {int(n) for n in GPIO_RE.findall(text)}


def _signal_gpios(board: dict[str, Any]) -> set[int]:
    return {s["gpio"] for s in board["signals"].values() if s.get("gpio") is not None}


def _ints(value: Any) -> set[int]:
    """Every integer in a pinmap sub-tree (only called on sub-trees whose integers are pin numbers)."""
    if isinstance(value, bool):
        return set()
    if isinstance(value, int):
        return {value}
    if isinstance(value, dict):
        out: set[int] = set()
        for v in value.values():
            out |= _ints(v)
        return out
    if isinstance(value, list):
        out = set()
        for v in value:
            out |= _ints(v)
        return out
    return set()


def _known_pins(board: dict[str, Any]) -> set[int]:
    """Pins the board entry talks about: signals, network, headers, spares, avoided pins, variants."""
    pins = _signal_gpios(board)
    network = {k: v for k, v in board.get("network", {}).items() if k != "phy_addr"}
    pins |= _ints(network)
    pins |= _ints(board.get("headers", {}))
    pins |= _ints(board.get("spare", []))
    pins |= {int(k) for k in board.get("do_not_use", {})}
    pins |= {int(k) for k in board.get("board_parts_on_our_pins", {})}
    for variant in board.get("variants", {}).values():
        pins |= _ints(variant.get("network", {}))
        pins |= _ints(variant.get("signals", {}))
        pins |= {int(k) for k in variant.get("do_not_use_add", {})}
    return pins


def _boards_with_variants() -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """(label, signals) for every board and every board variant, variant overrides applied."""
    out: list[tuple[str, dict[str, dict[str, Any]]]] = []
    for name, board in _pinmap()["boards"].items():
        signals: dict[str, dict[str, Any]] = board["signals"]
        out.append((name, signals))
        for vname, variant in board.get("variants", {}).items():
            merged = {k: dict(v) for k, v in signals.items()}
            for sig, override in variant.get("signals", {}).items():
                merged[sig].update(override)
            out.append((f"{name}+{vname}", merged))
    return out


BOARD_SIGNALS = _boards_with_variants()


def test_expected_diagrams_exist() -> None:
    present = {p.name for p in _svgs()}
    assert present >= EXPECTED, f"missing diagrams: {sorted(EXPECTED - present)}"


@pytest.mark.parametrize("path", _svgs(), ids=lambda p: p.name)
def test_svg_parses_and_names_its_board(path: Path) -> None:
    root = _root(path)
    assert root.tag == f"{{{SVG_NS}}}svg"
    assert root.get("viewBox"), "every diagram needs a viewBox so it scales"
    assert root.find(f"{{{SVG_NS}}}title") is not None
    assert root.get("data-board") in _pinmap()["boards"]


@pytest.mark.parametrize("path", _svgs(), ids=lambda p: p.name)
def test_every_gpio_mentioned_belongs_to_the_board(path: Path) -> None:
    root = _root(path)
    board_name = root.get("data-board")
    board = _pinmap()["boards"][board_name]
    mentioned = _gpios(_text(root))
    # DevKitC diagrams may only name signal pins; the PoE diagram also names the board's own pins.
    allowed = _signal_gpios(board) if board_name == DEVKITC else _known_pins(board)
    assert mentioned, "a wiring diagram should name its GPIOs"
    extra = sorted(mentioned - allowed)
    assert not extra, f"{path.name}: GPIO{extra} not in pinmap.json for {board_name}"


@pytest.mark.parametrize("path", _svgs(), ids=lambda p: p.name)
def test_signal_labels_match_pinmap(path: Path) -> None:
    root = _root(path)
    board_name = root.get("data-board")
    signals = _pinmap()["boards"][board_name]["signals"]
    labelled = [el for el in root.iter() if el.get("data-signal")]
    assert labelled, "label at least one signal with data-signal"
    for el in labelled:
        name = el.get("data-signal")
        assert name in signals, f"{path.name}: unknown signal {name!r}"
        sig = signals[name]
        text = _text(el)
        if sig.get("gpio") is not None:
            assert _gpios(text) == {sig["gpio"]}, f"{path.name}: {name} label {text!r} != GPIO{sig['gpio']}"
        else:
            exp = sig.get("expander")
            assert exp is not None, f"{path.name}: {name} is not wired on {board_name}"
            assert not _gpios(text), f"{path.name}: {name} is on the expander, label says {text!r}"
            assert f"GP{exp['port']}{exp['bit']}" in text, f"{path.name}: {name} label {text!r}"


def test_every_wired_signal_is_drawn() -> None:
    drawn: dict[str, set[str]] = {}
    for path in _svgs():
        root = _root(path)
        board_name = root.get("data-board") or ""
        names = drawn.setdefault(board_name, set())
        names |= {el.get("data-signal") or "" for el in root.iter() if el.get("data-signal")}
    for board_name, board in _pinmap()["boards"].items():
        wired = {
            name
            for name, sig in board["signals"].items()
            if sig.get("gpio") is not None or sig.get("expander") is not None
        }
        missing = wired - drawn.get(board_name, set())
        assert not missing, f"{board_name}: signals not labelled in any diagram: {sorted(missing)}"


@pytest.mark.parametrize(("label", "signals"), BOARD_SIGNALS, ids=[label for label, _ in BOARD_SIGNALS])
def test_pinmap_no_gpio_or_expander_pin_used_twice(label: str, signals: dict[str, dict[str, Any]]) -> None:
    seen: dict[Any, str] = {}
    for name, sig in signals.items():
        keys: list[Any] = []
        if sig.get("gpio") is not None:
            keys.append(sig["gpio"])
        exp = sig.get("expander")
        if exp is not None:
            keys.append((exp["chip"], exp["port"], exp["bit"]))
        for key in keys:
            assert key not in seen, f"{label}: {key} used by both {seen[key]} and {name}"
            seen[key] = name


@pytest.mark.parametrize(("label", "signals"), BOARD_SIGNALS, ids=[label for label, _ in BOARD_SIGNALS])
def test_pinmap_lock_relay_on_a_clean_output_pin(label: str, signals: dict[str, dict[str, Any]]) -> None:
    relay = signals["lock_relay"]
    gpio = relay["gpio"]
    assert isinstance(gpio, int), f"{label}: the relay must be on a native GPIO, never on an expander"
    assert gpio not in STRAPPING, f"{label}: lock_relay on strapping pin GPIO{gpio}"
    assert gpio not in INPUT_ONLY, f"{label}: lock_relay on input-only pin GPIO{gpio}"
    assert relay["dir"] == "out"
    assert relay["active"] == "high"
    assert relay["init"] == 0
    assert relay.get("boot_safe_required") is True
    assert str(relay["pull"]).startswith("ext-down"), f"{label}: lock_relay needs an external pull-down"


def test_readme_links_every_diagram() -> None:
    readme = (HARDWARE / "README.md").read_text(encoding="utf-8")
    for name in sorted(EXPECTED):
        assert f"diagrams/{name}" in readme, f"hardware/README.md does not link diagrams/{name}"
