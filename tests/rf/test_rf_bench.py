"""firmware/tools/bench_read.py: the tap-to-credential benchmark runs the whole read path against
the simulator under the MicroPython unix port and ends with one JSON line carrying the modelled
RF/SPI time, the projected CPU time and their breakdown."""

from __future__ import annotations

import json

import pytest
from support.micropython_runner import run_micropython

KEYS = {"modelled_rf_ms", "projected_cpu_ms", "total_ms", "breakdown", "cpu_us_unix", "esp32_factor"}
BREAKDOWN = {"spi_ms", "air_ms", "card_ms", "frames", "spi_calls"}


def _bench(*args: str) -> dict[str, object]:
    p = run_micropython(["firmware/tools/bench_read.py", "--rounds", "1", "--replays", "2", *args],
                        heap="8M")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    out: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.micropython
@pytest.mark.parametrize(("card", "bitrate"), [("desfire-ev3", "424"), ("desfire-ev3", "106"),
                                               ("classic-1k", "106"), ("ntag215", "106")])
def test_bench_runs_and_reports(card: str, bitrate: str) -> None:
    out = _bench("--card", card, "--bitrate", bitrate)
    assert set(out) >= KEYS
    bd = out["breakdown"]
    assert isinstance(bd, dict) and set(bd) >= BREAKDOWN
    assert out["card"] == card and out["credential_bytes"] == 400
    assert out["anti_clone"] is (card == "desfire-ev3")
    rf = float(str(out["modelled_rf_ms"]))
    cpu = float(str(out["projected_cpu_ms"]))
    assert rf > 1 and cpu > 0
    # work the driver ran while waiting for answers is credited where it hid behind the wait:
    # never more than that work itself, and the status polls it made unnecessary (one round: the
    # first tap, before the driver has learnt the answer delays; each poll is one SPI call of
    # 25 us + its bytes, and the 12 us margin of the look that found the answer in)
    hidden = float(str(out["overlap_hidden_ms"]))
    saved = int(str(bd["spi_calls"])) - int(str(out["timeline_spi_calls"]))
    assert saved >= 0
    assert -0.05 <= hidden <= float(str(out["overlap_cpu_ms"])) + 0.05 + saved * 0.045
    assert abs(float(str(out["total_ms"])) - (rf + cpu - hidden)) < 0.05
    # the same tap projected with CPU scaled to the calibration host (bare RSA 700 us), and tails
    bare = float(str(out["bare_rsa2048_sha256_us_unix"]))
    assert bare > 0 and float(str(out["host_normalised_total_ms"])) > rf
    worst, p99 = float(str(out["total_worst_ms"])), float(str(out["total_p99_ms"]))
    assert worst >= p99 >= float(str(out["total_ms"])) - 0.05
    if card == "desfire-ev3":
        assert out["negotiated_kbps"] == [int(bitrate), int(bitrate)]
        assert out["goal_ms"] == (60 if bitrate == "424" else 90)


@pytest.mark.micropython
def test_bench_usage_error() -> None:
    p = run_micropython(["firmware/tools/bench_read.py", "--card", "mifare-plus"])
    assert p.returncode == 2 and "usage" in p.stdout
